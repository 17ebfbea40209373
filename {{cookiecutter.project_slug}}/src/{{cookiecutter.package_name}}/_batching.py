"""Batching of concurrent requests on the worker thread."""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from concurrent.futures import Future

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from . import _generation
from ._generation import GenerationOutput, GenerationRequest, batch_key
from ._worker import TorchWorker

_Pending = tuple[GenerationRequest, "Future[GenerationOutput]"]


class RequestBatcher:
    """Queues requests for the worker thread and runs compatible ones as one batch.

    Requests submitted in the same event-loop iteration (``asyncio.gather`` of several
    calls) or while the model is busy wait in a queue; when the worker is free it takes them
    all, groups those whose sampling settings match (at most ``max_batch_size`` a batch) and
    runs each group as one left-padded ``generate``. A request with a seed or extra model
    inputs runs alone.
    """

    def __init__(
        self,
        worker: TorchWorker,
        model: Future[PreTrainedModel],
        tokenizer: PreTrainedTokenizerBase,
        max_batch_size: int,
    ) -> None:
        self._worker = worker
        self._model = model
        self._tokenizer = tokenizer
        self._max_batch_size = max_batch_size
        self._lock = threading.Lock()
        self._pending: list[_Pending] = []
        self._running: list[GenerationRequest] = []
        self._drain_scheduled = False
        self._closed_by: Exception | None = None

    def submit(self, request: GenerationRequest) -> Future[GenerationOutput]:
        """Queue ``request`` (on the event loop); cancelling the future before it starts drops it.

        The worker is woken at the end of this loop iteration, so that requests submitted
        together start together instead of the first one running alone.
        """
        future: Future[GenerationOutput] = Future()
        with self._lock:
            if self._closed_by is not None:
                future.set_exception(self._closed_by)
                return future
            self._pending.append((request, future))
            if self._drain_scheduled:
                return future
            self._drain_scheduled = True
        asyncio.get_running_loop().call_soon(self._wake_worker)
        return future

    def close(self, error: Exception) -> None:
        """Fail every queued request, and every later one, with ``error``; stop the running ones."""
        with self._lock:
            self._closed_by = error
            pending, self._pending = self._pending, []
            for request in self._running:
                request.cancel_event.set()
        for _, future in pending:
            if future.set_running_or_notify_cancel():
                future.set_exception(error)

    def _wake_worker(self) -> None:
        with self._lock:
            self._drain_scheduled = False
            if not self._pending:  # closed, or already taken by a running drain
                return
        self._worker.submit(self._drain)

    def _drain(self) -> None:
        """Run everything queued so far, group by group (worker thread).

        A request counts as started only when its own group starts, so until then cancelling
        its future drops it, and closing the batcher fails it.
        """
        with self._lock:
            pending, self._pending = self._pending, []
        for group in self._groups(pending):
            started = [(r, f) for r, f in group if f.set_running_or_notify_cancel()]
            with self._lock:
                closed_by = self._closed_by
                self._running = [request for request, _ in started]
            if closed_by is not None:
                for _, future in started:
                    future.set_exception(closed_by)
                continue
            if started:
                self._run(started)
        with self._lock:
            self._running = []

    def _run(self, group: list[_Pending]) -> None:
        try:
            outputs = _generation.generate_batch(
                self._model.result(), self._tokenizer, [request for request, _ in group]
            )
        except BaseException as error:  # handed to every caller waiting on this batch
            for _, future in group:
                future.set_exception(error)
            return
        for (_, future), output in zip(group, outputs, strict=True):
            future.set_result(output)

    def _groups(self, pending: list[_Pending]) -> list[list[_Pending]]:
        by_key: dict[object, list[_Pending]] = defaultdict(list)
        groups: list[list[_Pending]] = []
        for item in pending:
            key = batch_key(item[0])
            if key is None:
                groups.append([item])
            else:
                by_key[key].append(item)
        for items in by_key.values():
            size = self._max_batch_size
            groups.extend(items[i : i + size] for i in range(0, len(items), size))
        return groups
