"""Continuous batching on the engine thread: requests join and leave at every decoding step.

Why our own scheduler rather than transformers' ``ContinuousBatchingManager`` (measured side by
side by ``benchmarks/bench_engine.py --compare-transformers``): the manager serves neither
per-request logits processors (our grammars for tool calls and JSON) nor per-request
decoding settings beyond temperature and top-k/top-p, and it runs the model on a thread of its
own, so the requests it cannot serve would run torch on a second thread, two OpenMP thread
teams competing for the cores. On the 2-core CPU machines this project is measured on, its
single requests also ran slower than bare ``generate``. This scheduler is small instead: it
drives the model's ordinary forward pass with a ``DynamicCache`` per batch, each request
choosing its tokens with transformers' own processors (``_decoding``), and it keeps every
torch call on one thread.

Each step: take new requests (checked one by one: a bad one fails alone, before it starts),
start waiting ones while there is room, prefill one chunk of a starting prompt (taking any
prefix the prefix cache holds), then decode one token for every running request. A request
leaves the batch as soon as it is done, cancelled or failed, and its result goes out then.
Whatever a request's own code raises (its logits processors, its grammar), ``SystemExit``
included, ends that request only.
"""

from __future__ import annotations

import inspect
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import torch
from transformers import DynamicCache, PreTrainedModel, PreTrainedTokenizerBase

from ._decoding import TokenChooser
from ._errors import ClientClosedError, request_error
from ._generation import GenerationOutput, GenerationRequest
from ._kv_batch import KVBatch, batchable_layer_types, cache_layers, new_cache
from ._prefix_cache import PrefixCache
from ._solo import generate_alone

logger = logging.getLogger(__name__)

PREFILL_CHUNK_TOKENS = 512
"""Prompt tokens processed in one step while other requests decode: a long prompt delays
their next token by one chunk, not by the whole prompt."""

FinishReason = Literal["eos", "length", "stop", "time", "cancelled"]


class Job(Protocol):
    """A request handed to the scheduler, with the channel its results go out by."""

    request: GenerationRequest

    @property
    def cancelled(self) -> bool:
        """Whether the caller gave up on the request."""

    def start(self) -> bool:
        """Mark it started; False when it was cancelled (and answered) while waiting."""

    def deliver(self, token_ids: list[int]) -> None:
        """Hand over new tokens."""

    def finish(self, output: GenerationOutput) -> None:
        """Hand over the result."""

    def fail(self, error: BaseException) -> None:
        """Hand over an error."""


@dataclass
class _Row:
    """A request that is prefilling or decoding."""

    job: Job
    chooser: TokenChooser
    tokens: list[int] = field(default_factory=list)
    cache: DynamicCache | None = None
    """The row's own cache while its prompt is prefilled; None once it joined the batch."""
    processed: int = 0
    """Prompt tokens in the cache so far (reused from the prefix cache or prefilled)."""
    reused: int = 0

    @property
    def prompt(self) -> list[int]:
        return self.job.request.input_ids


class Scheduler:
    """Runs requests in continuous batches on the engine thread (see the module docstring)."""

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        *,
        max_batch_size: int,
        prefix_cache: PrefixCache,
        between_solo_steps: Callable[[], None],
        closing: threading.Event,
    ) -> None:
        self._tokenizer = tokenizer
        self._max_batch_size = max_batch_size
        self.prefix_cache = prefix_cache
        self._between_solo_steps = between_solo_steps
        self._lock = threading.Lock()
        self._incoming: list[Job] = []
        self._waiting: deque[_Row] = deque()
        self._solo: deque[_Row] = deque()
        self._prefilling: list[_Row] = []
        self._rows: list[_Row] = []
        self._model: PreTrainedModel | None = None
        self._layer_types: list[str] | None = None
        self._batch: KVBatch | None = None
        self._in_solo = False
        self._cache_argument = "cache"
        self._logits_to_keep = False
        self._refused: BaseException | None = None
        self._closing = closing
        """Set (from any thread) when the engine stops: a request running alone stops too."""

    # -- Any thread ---------------------------------------------------------------------------

    def submit(self, job: Job) -> None:
        """Queue ``job``; the engine thread takes it at its next step."""
        with self._lock:
            refused = self._refused
            if refused is None:
                self._incoming.append(job)
        if refused is not None:
            job.fail(refused)

    @property
    def idle(self) -> bool:
        """Whether there is nothing to run."""
        with self._lock:
            incoming = bool(self._incoming)
        return not (
            incoming or self._waiting or self._solo or self._prefilling or self._rows
        ) or self._model is None

    # -- Engine thread ------------------------------------------------------------------------

    def attach(self, model: PreTrainedModel) -> None:
        """Start serving with ``model`` (once it is loaded)."""
        self._model = model
        self._layer_types = batchable_layer_types(model.config)
        if self._layer_types is not None:
            self._batch = KVBatch(self._layer_types)
        parameters = inspect.signature(model.forward).parameters
        self._cache_argument = "cache" if "cache" in parameters else "past_key_values"
        self._logits_to_keep = "logits_to_keep" in parameters

    def detach(self) -> None:
        """Let go of the model and every key and value (the engine closed)."""
        self.fail_all(ClientClosedError("The client was closed."))
        self._model = None
        self._batch = None

    def fail_all(self, error: BaseException) -> None:
        """Answer every request and refuse later ones (the engine closed, or the model could
        not be loaded): waiting ones fail with ``error``; running ones end as cancelled when
        the engine closed (``ClientClosedError``), else fail with ``error``."""
        with self._lock:
            self._refused = error
            jobs, self._incoming = self._incoming, []
        waiting = [*jobs, *(row.job for row in [*self._waiting, *self._solo])]
        running = [*self._prefilling, *self._rows]
        self._waiting.clear()
        self._solo.clear()
        self._prefilling.clear()
        self._rows.clear()
        if self._batch is not None:
            self._batch.keep([])
        for job in waiting:
            job.fail(error)
        for row in running:
            if isinstance(error, ClientClosedError):
                self._finish(row, "cancelled")
            else:
                row.job.fail(error)

    @torch.inference_mode()
    def step(self) -> None:
        """One scheduling step (see the module docstring)."""
        self._take_incoming()
        if self._solo and not self._in_solo:
            self._run_solo(self._solo.popleft())
            return
        self._step_together()

    def _step_together(self) -> None:
        self._drop_cancelled()
        self._start_waiting()
        self._prefill()
        self._decode()

    def _take_incoming(self) -> None:
        assert self._model is not None
        with self._lock:
            jobs, self._incoming = self._incoming, []
        for job in jobs:
            if not job.start():
                continue  # cancelled while queued: already answered
            try:
                chooser = TokenChooser(self._model, self._tokenizer, job.request)
            except BaseException as error:  # this request's settings: it fails alone
                job.fail(ValueError(f"Invalid generation settings: {error}"))
                continue
            row = _Row(job, chooser)
            if chooser.runs_alone or self._batch is None:
                self._solo.append(row)
            else:
                self._waiting.append(row)

    def _drop_cancelled(self) -> None:
        for queue in (self._waiting, self._solo):
            for row in [row for row in queue if row.job.cancelled]:
                queue.remove(row)
                self._finish(row, "cancelled")
        for row in [row for row in self._prefilling if row.job.cancelled]:
            self._prefilling.remove(row)
            self._finish(row, "cancelled")
        self._leave([index for index, row in enumerate(self._rows) if row.job.cancelled], "cancelled")

    def _start_waiting(self) -> None:
        while self._waiting and len(self._rows) + len(self._prefilling) < self._max_batch_size:
            row = self._waiting.popleft()
            assert self._layer_types is not None
            reused, layers = self.prefix_cache.longest(row.prompt)
            row.cache = new_cache(self._layer_types, layers)
            row.processed = row.reused = reused
            row.chooser.start_clock()
            self._prefilling.append(row)

    def _forward(self, **inputs: Any) -> torch.Tensor:
        """The model's logits for the last position of each row (float32)."""
        assert self._model is not None
        if self._logits_to_keep:
            inputs["logits_to_keep"] = 1
        output = self._model(use_cache=True, **inputs)
        logits: torch.Tensor = output.logits[:, -1, :].float()
        return logits

    def _prefill(self) -> None:
        """Process one chunk of the first starting prompt (all of it when nothing decodes)."""
        if not self._prefilling:
            return
        row = self._prefilling[0]
        assert self._model is not None
        assert row.cache is not None
        end = len(row.prompt)
        if self._rows:
            end = min(end, row.processed + PREFILL_CHUNK_TOKENS)
        device = self._model.device
        chunk = torch.tensor([row.prompt[row.processed : end]], dtype=torch.long, device=device)
        try:
            logits = self._forward(
                input_ids=chunk,
                attention_mask=torch.ones((1, end), dtype=torch.long, device=device),
                position_ids=torch.arange(row.processed, end, device=device).unsqueeze(0),
                **{self._cache_argument: row.cache},
            )
        except BaseException as error:
            self._prefilling.remove(row)
            row.job.fail(request_error(error))
            return
        row.processed = end
        if end < len(row.prompt):
            return
        self._prefilling.remove(row)
        cache, row.cache = row.cache, None
        self.prefix_cache.store(row.prompt, cache_layers(cache))
        try:
            reason = self._choose(row, logits)
        except BaseException as error:  # this request's processor or grammar: it fails alone
            row.job.fail(request_error(error))
            return
        if reason is not None:
            self._finish(row, reason)
            return
        assert self._batch is not None
        self._batch.add(cache, len(row.prompt))
        self._rows.append(row)

    def _decode(self) -> None:
        """One token for every running row."""
        if not self._rows:
            return
        assert self._model is not None
        assert self._batch is not None
        device = self._model.device
        positions = [len(row.prompt) + len(row.tokens) - 1 for row in self._rows]
        mask = self._batch.grow()
        try:
            logits = self._forward(
                input_ids=torch.tensor([[row.tokens[-1]] for row in self._rows], device=device),
                attention_mask=mask,
                position_ids=torch.tensor(positions, device=device).unsqueeze(1),
                **{self._cache_argument: self._batch.cache},
            )
        except BaseException as error:  # the model failed for the whole batch: fail it, go on
            self._batch.shrink()
            logger.exception("A decoding step failed for %d requests", len(self._rows))
            rows, self._rows = self._rows, []
            self._batch.keep([])
            for row in rows:
                row.job.fail(request_error(error))
            return
        leaving: dict[int, FinishReason | Exception] = {}
        for index, row in enumerate(self._rows):
            try:
                reason = self._choose(row, logits[index : index + 1])
            except BaseException as error:  # this request's processor or grammar: it fails alone
                leaving[index] = request_error(error)
                continue
            if reason is not None:
                leaving[index] = reason
        self._leave(list(leaving), leaving)

    def _choose(self, row: _Row, logits: torch.Tensor) -> FinishReason | None:
        """Take the row's next token, hand it over, and say whether the row is done."""
        if row.job.cancelled:
            return "cancelled"
        token = row.chooser.choose(logits)
        row.tokens.append(token)
        row.job.deliver([token])
        if token in row.chooser.eos:
            return "eos"
        if row.chooser.hit_stop_string(logits):
            return "stop"
        if len(row.tokens) >= row.job.request.max_new_tokens:
            return "length"
        if row.chooser.out_of_time():
            return "time"
        return None

    def _leave(
        self, indices: list[int], outcome: FinishReason | dict[int, FinishReason | Exception]
    ) -> None:
        """Remove the rows at ``indices`` from the batch and answer them."""
        if not indices:
            return
        assert self._batch is not None
        gone = set(indices)
        for index in indices:
            row = self._rows[index]
            result = outcome if isinstance(outcome, str) else outcome[index]
            if isinstance(result, Exception):
                row.job.fail(result)
                continue
            processed = row.prompt + row.tokens[:-1]
            self.prefix_cache.store(processed, self._batch.row_layers(index))
            self._finish(row, result)
        kept = [index for index in range(len(self._rows)) if index not in gone]
        self._rows = [self._rows[index] for index in kept]
        self._batch.keep(kept)

    def _finish(self, row: _Row, reason: FinishReason) -> None:
        row.job.finish(
            GenerationOutput(
                token_ids=row.tokens,
                ended_with_eos=reason == "eos",
                cancelled=reason == "cancelled",
                reused_prompt_tokens=row.reused,
                out_of_time=reason == "time",
            )
        )

    def _run_solo(self, row: _Row) -> None:
        """Run a request alone with ``generate``, stepping the others between its steps."""
        assert self._model is not None
        interrupted = False

        def on_tokens(tokens: list[int]) -> bool:
            nonlocal interrupted
            if tokens:
                row.tokens.extend(tokens)
                row.job.deliver(tokens)
            interrupted = row.job.cancelled or self._closing.is_set()
            return not interrupted

        def between_steps() -> None:
            try:
                self._between_solo_steps()
                self._take_incoming()
                self._step_together()
            except BaseException:  # never into the solo request's generate
                logger.exception("A step beside a request running alone failed")

        self._in_solo = True
        row.chooser.start_clock()
        try:
            tokens = generate_alone(
                self._model, self._tokenizer, row.job.request, row.chooser.eos, on_tokens, between_steps
            )
        except BaseException as error:  # this request's settings or processors: it fails alone
            row.job.fail(request_error(error))
            return
        finally:
            self._in_solo = False
        if len(tokens) > len(row.tokens):  # beam search: the tokens are known at the end
            row.tokens = tokens
            row.job.deliver(tokens)
        self._finish(row, self._solo_reason(row, cancelled=interrupted or row.job.cancelled))

    def _solo_reason(self, row: _Row, *, cancelled: bool) -> FinishReason:
        """Why a request that ran alone ended."""
        if cancelled:
            return "cancelled"
        if row.tokens and row.tokens[-1] in row.chooser.eos:
            return "eos"
        if len(row.tokens) >= row.job.request.max_new_tokens:
            return "length"
        if row.chooser.out_of_time():
            return "time"
        return "stop"
