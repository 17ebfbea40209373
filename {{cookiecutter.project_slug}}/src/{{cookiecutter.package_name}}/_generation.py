"""Generation on the worker thread: one ``model.generate`` call per request."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import torch
from transformers import (
    GenerationConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    StoppingCriteria,
    StoppingCriteriaList,
)
from transformers.generation.streamers import BaseStreamer

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


@dataclass
class GenerationRequest:
    """What one request asks of the model."""

    input_ids: list[int]
    max_new_tokens: int
    settings: GenerationSettings
    extra_arguments: dict[str, Any] = field(default_factory=dict)
    cancel_event: threading.Event = field(default_factory=threading.Event)
    on_tokens: Callable[[list[int]], None] | None = None
    """Called on the worker thread with each step's new token ids (for streaming)."""
    model_inputs: dict[str, torch.Tensor] = field(default_factory=dict)
    """Inputs for ``generate`` besides the token ids, such as an image's ``pixel_values``."""


@dataclass
class GenerationOutput:
    """What the model produced for one request."""

    token_ids: list[int]
    ended_with_eos: bool
    cancelled: bool


class _StopOnEvent(StoppingCriteria):
    """Stops generation at the next decoding step once ``event`` is set."""

    def __init__(self, event: threading.Event) -> None:
        self._event = event

    def __call__(
        self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any
    ) -> torch.BoolTensor:
        stop = self._event.is_set()
        return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)  # type: ignore[return-value]


class _TokenCallbackStreamer(BaseStreamer):
    """Hands each step's new token ids to a callback; skips the prompt that comes first."""

    def __init__(self, callback: Callable[[list[int]], None]) -> None:
        self._callback = callback
        self._prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        self._callback(value.reshape(-1).tolist())

    def end(self) -> None:
        """Nothing to flush: the caller decodes."""


def eos_token_ids(model: PreTrainedModel, extra_arguments: dict[str, Any]) -> set[int]:
    """The token ids that end a sequence for this request."""
    eos = extra_arguments.get("eos_token_id", model.generation_config.eos_token_id)
    if eos is None:
        return set()
    return {int(eos)} if isinstance(eos, int) else {int(token) for token in eos}


def _on_model(model: PreTrainedModel, value: torch.Tensor) -> torch.Tensor:
    """A model input on the model's device; floating-point ones (pixels) in its dtype."""
    return value.to(model.device, model.dtype if value.is_floating_point() else value.dtype)


def generate_tokens(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, request: GenerationRequest
) -> GenerationOutput:
    """Run ``model.generate`` for one request. Call on the worker thread only."""
    if request.cancel_event.is_set():
        return GenerationOutput(token_ids=[], ended_with_eos=False, cancelled=True)
    settings = request.settings
    arguments: dict[str, Any] = {
        name: getattr(settings, name)
        for name in _SAMPLING_FIELDS
        if getattr(settings, name) is not None
    }
    if settings.stop:
        arguments["stop_strings"] = settings.stop
        arguments["tokenizer"] = tokenizer
    if request.on_tokens is not None:
        arguments["streamer"] = _TokenCallbackStreamer(request.on_tokens)
    arguments.update(request.extra_arguments)
    if settings.seed is not None:
        torch.manual_seed(settings.seed)
    input_ids = torch.tensor([request.input_ids], dtype=torch.long, device=model.device)
    arguments.update(
        {name: _on_model(model, value) for name, value in request.model_inputs.items()}
    )
    with torch.inference_mode():
        sequences = cast(SupportsGenerate, model).generate(
            input_ids=input_ids,
            attention_mask=torch.ones_like(input_ids),
            max_new_tokens=request.max_new_tokens,
            stopping_criteria=StoppingCriteriaList([_StopOnEvent(request.cancel_event)]),
            **arguments,
        )
    token_ids: list[int] = sequences[0, input_ids.shape[1] :].tolist()
    eos = eos_token_ids(model, request.extra_arguments)
    return GenerationOutput(
        token_ids=token_ids,
        ended_with_eos=bool(token_ids) and token_ids[-1] in eos,
        cancelled=request.cancel_event.is_set(),
    )
