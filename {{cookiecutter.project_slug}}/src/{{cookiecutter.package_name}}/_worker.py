"""One dedicated thread for all torch work."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class TorchWorker:
    """Runs every torch call (loading, generating) on one thread that it owns.

    Torch keeps an OpenMP thread team per calling thread: once ``generate`` has run on two
    different threads, both teams compete for the cores and every later call slows down.
    Funnelling all torch work through this single thread avoids that, and keeps the event
    loop free while the model works.
    """

    def __init__(self, name: str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    def submit(self, function: Callable[..., T], *args: object) -> Future[T]:
        """Queue ``function(*args)`` on the worker thread."""
        return self._executor.submit(function, *args)

    async def run(self, function: Callable[..., T], *args: object) -> T:
        """Run ``function(*args)`` on the worker thread and await its result."""
        return await asyncio.wrap_future(self.submit(function, *args))

    def shutdown(self) -> None:
        """Drop queued work, wait for the running call to end, and stop the thread."""
        self._executor.shutdown(wait=True, cancel_futures=True)
