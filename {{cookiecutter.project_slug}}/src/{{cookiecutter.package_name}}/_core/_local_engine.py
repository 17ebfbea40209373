"""The local engine: the model in this process, on one thread of its own."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Literal, TypeVar

from transformers import PreTrainedModel, PreTrainedTokenizerBase
from transformers.models.auto.auto_factory import _BaseAutoModelClass

from ._config import ModelConfig as Config
from ._engine import TokenCallback
from ._errors import ClientClosedError
from ._generation import GenerationOutput, GenerationRequest
from ._loading import load_model
from ._prefix_cache import PrefixCache
from ._scheduler import Scheduler
from ._worker import EngineThread

T = TypeVar("T")

_MB = 2**20


class LocalGeneration:
    """One request of the local engine: the channel between the engine thread and the caller.

    Tokens and the outcome travel to the caller's event loop with ``call_soon_threadsafe``,
    in order. If that loop is closed, or the caller's token callback fails, the request is
    cancelled: it ends alone, never disturbing the requests beside it.
    """

    def __init__(
        self,
        request: GenerationRequest,
        loop: asyncio.AbstractEventLoop,
        on_tokens: TokenCallback | None,
    ) -> None:
        self.request = request
        self._loop = loop
        self._on_tokens = on_tokens
        self._done: asyncio.Future[GenerationOutput] = loop.create_future()
        self._lock = threading.Lock()
        self._state: Literal["queued", "running", "done"] = "queued"
        self._cancelled = threading.Event()
        self._callback_error: Exception | None = None

    @property
    def cancelled(self) -> bool:
        """Whether the request was cancelled (by the caller, or because nobody listens)."""
        return self._cancelled.is_set()

    def cancel(self) -> None:
        """Stop the request: at once if it has not started, else at the engine's next step."""
        self._cancelled.set()
        with self._lock:
            if self._state != "queued":
                return
            self._state = "done"
        self._post(self._resolve, GenerationOutput([], False, True), None)

    async def result(self) -> GenerationOutput:
        """The output once the request ended (see ``_engine.Generation``)."""
        return await asyncio.shield(self._done)

    # -- Engine thread ------------------------------------------------------------------------

    def start(self) -> bool:
        """Mark the request started; False when it was cancelled while queued."""
        with self._lock:
            if self._state != "queued":
                return False
            self._state = "running"
            return True

    def deliver(self, token_ids: list[int]) -> None:
        """Hand new tokens to the caller's callback."""
        if self._on_tokens is not None:
            self._post(self._call_back, list(token_ids))

    def finish(self, output: GenerationOutput) -> None:
        """Hand over the output."""
        if self._end():
            self._post(self._resolve, output, None)

    def fail(self, error: BaseException) -> None:
        """Hand over the error the request failed with."""
        if self._end():
            self._post(self._resolve, None, error)

    def _end(self) -> bool:
        with self._lock:
            if self._state == "done":
                return False
            self._state = "done"
            return True

    def _post(self, function: Callable[..., None], *args: Any) -> None:
        try:
            self._loop.call_soon_threadsafe(function, *args)
        except RuntimeError:  # the caller's event loop is closed: nobody listens any more
            self._cancelled.set()

    # -- The caller's event loop --------------------------------------------------------------

    def _call_back(self, token_ids: list[int]) -> None:
        if self._callback_error is not None or self._on_tokens is None:
            return
        try:
            self._on_tokens(token_ids)
        except Exception as error:  # the caller's own callback: ends this request only
            self._callback_error = error
            self._cancelled.set()

    def _resolve(self, output: GenerationOutput | None, error: BaseException | None) -> None:
        if self._done.done():
            return
        error = self._callback_error or error
        if error is not None:
            self._done.set_exception(error)
            self._done.add_done_callback(_retrieved)  # the caller may have stopped waiting
        else:
            assert output is not None
            self._done.set_result(output)


def _retrieved(future: asyncio.Future[GenerationOutput]) -> None:
    future.exception()


class LocalEngine:
    """Runs the model in this process with continuous batching (``_scheduler``).

    The weights load on the engine thread in the background; requests submitted meanwhile
    wait for them, and fail with the loading error if loading fails.
    """

    def __init__(
        self,
        config: Config,
        model_class: type[_BaseAutoModelClass],
        tokenizer: PreTrainedTokenizerBase,
        name: str,
    ) -> None:
        self.prefix_cache = PrefixCache(config.prefix_cache_mb * _MB)
        stopping = threading.Event()
        self._scheduler = Scheduler(
            tokenizer,
            max_batch_size=config.max_batch_size,
            prefix_cache=self.prefix_cache,
            between_solo_steps=lambda: self._thread.run_calls(),
            closing=stopping,
        )
        self._thread = EngineThread(
            name,
            step=self._scheduler.step,
            busy=lambda: not self._scheduler.idle,
            on_stop=self._scheduler.fail_all,
            stopping=stopping,
        )
        self.model: Future[PreTrainedModel] = self._thread.call(self._load, config, model_class)
        """The loaded model (for benchmarks and tests; runs on the engine thread only)."""
        self._closed = False

    def _load(self, config: Config, model_class: type[_BaseAutoModelClass]) -> PreTrainedModel:
        try:
            model = load_model(config, model_class)
        except BaseException as error:
            self._scheduler.fail_all(error)
            raise
        self._scheduler.attach(model)
        return model

    def submit(self, request: GenerationRequest, on_tokens: TokenCallback | None) -> LocalGeneration:
        """Start ``request`` (see ``_engine.Engine``)."""
        job = LocalGeneration(request, asyncio.get_running_loop(), on_tokens)
        self._scheduler.submit(job)
        self._thread.wake()
        return job

    async def call(self, function: Callable[..., T], *args: object) -> T:
        """Run ``function(*args)`` on the engine thread, between two steps."""
        return await asyncio.wrap_future(self._thread.call(function, *args))

    def stop(self) -> None:
        """Ask the engine thread to stop after its current step (any thread; does not wait)."""
        self._closed = True
        self._thread.stop(ClientClosedError("The client was closed."))

    async def close(self) -> None:
        """Stop the engine thread and release the model (see ``_engine.Engine``)."""
        if self._closed:
            return
        self.stop()
        await asyncio.get_running_loop().run_in_executor(None, self._thread.join)
        self.model.cancel()
        released: Future[PreTrainedModel] = Future()
        released.set_exception(ClientClosedError("The client was closed."))
        self.model = released  # nothing here holds the model any more
        self._scheduler.detach()
        self.prefix_cache.clear()
