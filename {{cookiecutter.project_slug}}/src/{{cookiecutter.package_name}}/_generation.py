"""Generation on the worker thread: one ``model.generate`` call per request or batch."""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import torch
from transformers import (
    GenerationConfig,
    LogitsProcessor,
    LogitsProcessorList,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    StoppingCriteria,
    StoppingCriteriaList,
    StopStringCriteria,
)

from ._config import GenerationSettings

_SAMPLING_FIELDS = ("temperature", "top_p", "top_k", "do_sample", "repetition_penalty")
_CONTROLLED = {"streamer", "stopping_criteria", "stop_strings", "num_return_sequences"}
PASSTHROUGH_ARGUMENTS = frozenset(
    name
    for name in GenerationConfig().to_dict()  # type: ignore[no-untyped-call]
    if not name.startswith("_") and name not in _CONTROLLED and name != "transformers_version"
) | {"logits_processor"}
"""Generation arguments that ``extra_create_args`` may pass straight to ``generate``."""


class SupportsGenerate(Protocol):
    """A model with ``generate`` (transformers types it through a mixin mypy cannot bind)."""

    def generate(self, **kwargs: Any) -> torch.Tensor:
        """Generate token ids for ``input_ids``; returns prompt and new tokens."""


class TokenConstraint(Protocol):
    """One request's grammar state while it generates (engine thread only)."""

    def mask(self, logits: torch.Tensor) -> None:
        """Set the logits of the tokens the grammar forbids now to ``-inf``, in place.

        ``logits`` is this request's row: a 1-D float tensor as wide as the model's vocabulary.
        """

    def accept(self, token_id: int) -> None:
        """Advance the grammar past the token that was chosen."""


class Constraint(Protocol):
    """A grammar that a request's answer must follow (tool calls, JSON output).

    A description only: each engine turns it into what it enforces. The local engine calls
    :meth:`start` on its own thread, at the request's first decoding step.
    """

    def start(self, vocab_size: int, stop_token_ids: Collection[int]) -> TokenConstraint:
        """A fresh grammar state for one request, over logits ``vocab_size`` wide.

        ``stop_token_ids`` end the request; the grammar allows them once it is complete.
        """


@dataclass
class GenerationRequest:
    """What one request asks of the model."""

    input_ids: list[int]
    max_new_tokens: int
    settings: GenerationSettings
    extra_arguments: dict[str, Any] = field(default_factory=dict)
    cancel_event: threading.Event = field(default_factory=threading.Event)
    on_tokens: Callable[[list[int]], None] | None = None
    """Called on the worker thread with each new token id of this request (for streaming)."""
    model_inputs: dict[str, torch.Tensor] = field(default_factory=dict)
    """Inputs for ``generate`` besides the token ids, such as an image's ``pixel_values``."""
    constraint: Constraint | None = None
    """A grammar the answer must follow, or None."""


@dataclass
class GenerationOutput:
    """What the model produced for one request."""

    token_ids: list[int]
    ended_with_eos: bool
    cancelled: bool


class _Row:
    """Per-request state while a (possibly batched) generation runs."""

    def __init__(
        self, request: GenerationRequest, tokenizer: PreTrainedTokenizerBase, eos: set[int]
    ) -> None:
        self.request = request
        self.eos = eos
        self.token_ids: list[int] = []
        self.done = False
        self._stop_strings = (
            StopStringCriteria(tokenizer, request.settings.stop) if request.settings.stop else None
        )

    def step(self, sequence: torch.LongTensor, scores: torch.FloatTensor, *, record: bool) -> bool:
        """Take this step's token (the last of ``sequence``); return whether the row is done.

        A row is done at end of sequence, at its token budget, on a stop string or when
        cancelled. Once done it takes no more tokens (the batch pads it while others go on).
        """
        if not record:  # beam search: beams are reordered, so judge each sequence alone
            return self.request.cancel_event.is_set() or (
                self._stop_strings is not None
                and bool(self._stop_strings(sequence, scores).all())
            )
        if self.done:
            return True
        token = int(sequence[0, -1])
        self.token_ids.append(token)
        if self.request.on_tokens is not None:
            self.request.on_tokens([token])
        self.done = (
            self.request.cancel_event.is_set()
            or len(self.token_ids) >= self.request.max_new_tokens
            or (bool(self.token_ids) and self.token_ids[-1] in self.eos)
            or (
                self._stop_strings is not None
                and bool(self._stop_strings(sequence, scores).all())
            )
        )
        return self.done


class _RowStopping(StoppingCriteria):
    """Records each row's new token and ends each row on its own conditions.

    ``generate`` calls this once per decoding step, right after the new tokens are appended,
    so it is also where tokens are handed to streaming callbacks. With beam search (one
    request only) rows are beams that get reordered: tokens are read from the result instead.
    """

    def __init__(self, rows: list[_Row], *, record: bool) -> None:
        self._rows = rows
        self._record = record

    def __call__(
        self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any
    ) -> torch.BoolTensor:
        per_row = input_ids.shape[0] // len(self._rows)
        done = [
            self._rows[i // per_row].step(
                input_ids[i : i + 1],  # type: ignore[arg-type]
                scores,
                record=self._record,
            )
            for i in range(input_ids.shape[0])
        ]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)  # type: ignore[return-value]


class _ConstrainedLogits(LogitsProcessor):
    """Applies a request's :class:`Constraint` inside ``generate`` (one request per call)."""

    def __init__(self, constraint: Constraint, stop_token_ids: set[int], prompt_length: int) -> None:
        self._constraint = constraint
        self._stop_token_ids = stop_token_ids
        self._prompt_length = prompt_length
        self._state: TokenConstraint | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self._state is None:
            self._state = self._constraint.start(scores.shape[-1], self._stop_token_ids)
        elif input_ids.shape[-1] > self._prompt_length:
            self._state.accept(int(input_ids[0, -1]))
        self._state.mask(scores[0])
        return scores


def eos_token_ids(model: PreTrainedModel, extra_arguments: dict[str, Any]) -> set[int]:
    """The token ids that end a sequence for this request."""
    eos = extra_arguments.get("eos_token_id", model.generation_config.eos_token_id)
    if eos is None:
        return set()
    return {int(eos)} if isinstance(eos, int) else {int(token) for token in eos}


def batch_key(request: GenerationRequest) -> tuple[object, ...] | None:
    """Requests with equal keys can share one batched ``generate``; None: run it alone.

    Sampling settings and plain extra arguments (``min_new_tokens``, ...) must match. Logits
    processors, beam search, extra model inputs (images) and seeds make a request run alone.
    """
    extra = request.extra_arguments
    if (
        request.model_inputs
        or request.constraint is not None
        or request.settings.seed is not None
        or "logits_processor" in extra
        or int(extra.get("num_beams", 1)) > 1
    ):
        return None
    key = (*(getattr(request.settings, name) for name in _SAMPLING_FIELDS), *sorted(extra.items()))
    try:
        hash(key)
    except TypeError:  # a list or dict argument: compare by identity, run alone
        return None
    return key


def _left_padded(
    requests: list[GenerationRequest], pad_token_id: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(request.input_ids) for request in requests)
    input_ids = torch.full((len(requests), width), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(requests), width), dtype=torch.long)
    for row, request in enumerate(requests):
        length = len(request.input_ids)
        input_ids[row, width - length :] = torch.tensor(request.input_ids, dtype=torch.long)
        attention_mask[row, width - length :] = 1
    return input_ids.to(device), attention_mask.to(device)


def generate_batch(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    requests: list[GenerationRequest],
) -> list[GenerationOutput]:
    """Run one ``model.generate`` for ``requests`` (one, or several with equal batch keys).

    Each request keeps its own token budget, stop strings, streaming and cancellation: a row
    that is done stops receiving tokens while the others go on. Call on the worker thread only.
    """
    first = requests[0]
    eos = eos_token_ids(model, first.extra_arguments)
    rows = [_Row(request, tokenizer, eos) for request in requests]
    live = [row for row in rows if not row.request.cancel_event.is_set()]
    if live:
        _run(model, [row.request for row in live], live, eos)
    return [
        GenerationOutput(
            token_ids=row.token_ids,
            ended_with_eos=bool(row.token_ids) and row.token_ids[-1] in eos,
            cancelled=row.request.cancel_event.is_set(),
        )
        for row in rows
    ]


def _run(
    model: PreTrainedModel, requests: list[GenerationRequest], rows: list[_Row], eos: set[int]
) -> None:
    first = requests[0]
    arguments: dict[str, Any] = {
        name: getattr(first.settings, name)
        for name in _SAMPLING_FIELDS
        if getattr(first.settings, name) is not None
    }
    arguments.update(first.extra_arguments)
    arguments.update({name: _on_model(model, value) for name, value in first.model_inputs.items()})
    pad_token_id = arguments.pop("pad_token_id", model.generation_config.pad_token_id)
    if pad_token_id is None:
        pad_token_id = min(eos) if eos else 0
    input_ids, attention_mask = _left_padded(requests, pad_token_id, model.device)
    if first.settings.seed is not None:
        torch.manual_seed(first.settings.seed)
    if first.constraint is not None:  # runs alone (see batch_key)
        grammar = _ConstrainedLogits(first.constraint, eos, input_ids.shape[1])
        given = arguments.pop("logits_processor", None) or []
        given = [given] if isinstance(given, LogitsProcessor) else list(given)
        arguments["logits_processor"] = LogitsProcessorList([*given, grammar])
    beam_search = int(arguments.get("num_beams", 1)) > 1
    with torch.inference_mode():
        sequences = cast(SupportsGenerate, model).generate(
            input_ids=input_ids,
            attention_mask=attention_mask,
            max_new_tokens=max(request.max_new_tokens for request in requests),
            stopping_criteria=StoppingCriteriaList([_RowStopping(rows, record=not beam_search)]),
            pad_token_id=pad_token_id,
            **arguments,
        )
    if beam_search:  # one row: read the best sequence
        new_tokens: list[int] = sequences[0, input_ids.shape[1] :].tolist()
        rows[0].token_ids = new_tokens[: _end_of(new_tokens, eos)]


def _end_of(token_ids: list[int], eos: set[int]) -> int:
    """Length up to and including the first end-of-sequence token."""
    for index, token in enumerate(token_ids):
        if token in eos:
            return index + 1
    return len(token_ids)


def _on_model(model: PreTrainedModel, value: torch.Tensor) -> torch.Tensor:
    """A model input on the model's device; floating-point ones (pixels) in its dtype."""
    return value.to(model.device, model.dtype if value.is_floating_point() else value.dtype)
