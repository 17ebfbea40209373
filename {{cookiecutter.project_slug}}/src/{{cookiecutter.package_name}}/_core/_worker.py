"""One dedicated thread for all torch work: loading, preprocessing and generating."""

from __future__ import annotations

import atexit
import logging
import threading
import weakref
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from ._errors import ClientClosedError

T = TypeVar("T")
logger = logging.getLogger(__name__)

EXIT_WAIT_SECONDS = 10.0
"""At interpreter exit, how long to wait for a thread to finish the step it is in."""

_Call = tuple[Callable[..., Any], tuple[object, ...], "Future[Any]"]


class EngineThread:
    """Runs every torch call of one client on a thread that it owns.

    Torch keeps an OpenMP thread team per calling thread: once the model has run on two
    different threads, both teams compete for the cores and every later call slows down.
    This thread runs queued one-off calls (loading the model, preprocessing images) and, while
    ``busy()`` says there is work, ``step()`` (one scheduling step of generation).

    It is a daemon thread, stopped at interpreter exit within a step, so a script that ends
    with requests in flight exits promptly. ``stopping`` is set as soon as a stop is asked for,
    so that a step that runs long (a request running alone) can end early.
    """

    def __init__(
        self,
        name: str,
        step: Callable[[], None],
        busy: Callable[[], bool],
        on_stop: Callable[[BaseException], None],
        stopping: threading.Event,
    ) -> None:
        self.stopping = stopping
        self._step = step
        self._busy = busy
        self._on_stop = on_stop
        self._condition = threading.Condition()
        self._calls: deque[_Call] = deque()
        self._stopping: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        _LIVE.add(self)
        self._thread.start()

    def call(self, function: Callable[..., T], *args: object) -> Future[T]:
        """Queue ``function(*args)`` for the thread; cancelling the future before it runs
        drops it."""
        future: Future[T] = Future()
        with self._condition:
            if self._stopping is not None:
                future.set_exception(self._stopping)
                return future
            self._calls.append((function, args, future))
            self._condition.notify()
        return future

    def wake(self) -> None:
        """Tell the thread that ``busy()`` may have become true."""
        with self._condition:
            self._condition.notify()

    def stop(self, error: BaseException) -> None:
        """Stop after the current step; queued calls fail with ``error``, and ``on_stop(error)``
        answers the rest."""
        self.stopping.set()
        with self._condition:
            if self._stopping is None:
                self._stopping = error
            self._condition.notify()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the thread to end."""
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def run_calls(self) -> None:
        """Run the queued one-off calls (on this thread, between steps)."""
        while True:
            with self._condition:
                if not self._calls or self._stopping is not None:
                    return
                function, args, future = self._calls.popleft()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(function(*args))
            except BaseException as error:  # handed to whoever waits for the call
                future.set_exception(error)

    def _run(self) -> None:
        error: BaseException = ClientClosedError("The engine thread stopped.")
        try:
            while True:
                with self._condition:
                    while not self._calls and self._stopping is None and not self._busy():
                        self._condition.wait()
                    if self._stopping is not None:
                        error = self._stopping
                        break
                self.run_calls()
                with self._condition:
                    stopping = self._stopping is not None
                if not stopping and self._busy():
                    self._step()
        except BaseException as fatal:  # a bug: answer everyone rather than leave them waiting
            logger.exception("The engine thread failed")
            error = fatal
        finally:
            with self._condition:
                self._stopping = self._stopping or error
                calls, self._calls = self._calls, deque()
            for _, _, future in calls:
                if future.set_running_or_notify_cancel():
                    future.set_exception(error)
            self._on_stop(error)


_LIVE: weakref.WeakSet[EngineThread] = weakref.WeakSet()


@atexit.register
def _stop_at_exit() -> None:
    threads = list(_LIVE)
    for thread in threads:
        thread.stop(ClientClosedError("The Python interpreter is exiting."))
    for thread in threads:
        thread.join(EXIT_WAIT_SECONDS)
