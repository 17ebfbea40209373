"""Requests that run alone, through ``model.generate`` itself.

Beam search, assisted decoding and contrastive search are decoding strategies, not per-token
choices, and prompts with images carry model inputs (``pixel_values``, ...) that only the
model's own ``generate`` knows how to feed; models without a per-token cache (linear
attention, state-space layers) cannot share steps either. Such a request runs alone, with
stopping criteria that keep its budget, stop strings and cancellation, and that run one step
of the other requests between two of its own: nobody waits for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import torch
from transformers import (
    LogitsProcessor,
    LogitsProcessorList,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    StoppingCriteria,
    StoppingCriteriaList,
    StopStringCriteria,
)

from ._decoding import ConstrainedLogits, generate_arguments
from ._generation import GenerationRequest, SupportsGenerate


class _SoloStopping(StoppingCriteria):
    """Ends the request on its own conditions, and runs ``between_steps`` after each step.

    With beam search the rows are beams, judged one by one (they get reordered, so tokens are
    read from the result). Otherwise the one row's new tokens (several in one step with
    assisted decoding) are recorded one by one, up to the first that ends the request, and
    handed over.
    """

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        request: GenerationRequest,
        eos: frozenset[int],
        on_tokens: Callable[[list[int]], bool],
        between_steps: Callable[[], None],
        *,
        beams: bool,
    ) -> None:
        self._prompt_length = len(request.input_ids)
        self._stop = (
            StopStringCriteria(tokenizer, request.settings.stop) if request.settings.stop else None
        )
        self._eos = eos
        self._on_tokens = on_tokens
        self._between_steps = between_steps
        self._beams = beams
        self._max_new_tokens = request.max_new_tokens
        self.token_ids: list[int] = []

    def __call__(
        self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any
    ) -> torch.BoolTensor:
        self._between_steps()
        if self._beams:
            generated = input_ids[:, self._prompt_length :]
            stopped = (
                self._stop(generated, scores)
                if self._stop is not None
                else torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
            )
            return cast(torch.BoolTensor, stopped | (not self._on_tokens([])))
        start = len(self.token_ids)
        done = False
        for token in input_ids[0, self._prompt_length + start :].tolist():
            self.token_ids.append(token)
            if self._ends(input_ids, scores):
                done = True
                break
        carry_on = self._on_tokens(self.token_ids[start:])
        return cast(torch.BoolTensor, torch.tensor([done or not carry_on], device=input_ids.device))

    def _ends(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> bool:
        """Whether the last recorded token ends the request."""
        if self.token_ids[-1] in self._eos or len(self.token_ids) >= self._max_new_tokens:
            return True
        if self._stop is None:
            return False
        generated = input_ids[:, self._prompt_length : self._prompt_length + len(self.token_ids)]
        return bool(self._stop(cast(torch.LongTensor, generated), scores).any())


def _on_model(model: PreTrainedModel, value: torch.Tensor) -> torch.Tensor:
    """A model input on the model's device; floating-point ones (pixels) in its dtype."""
    return value.to(model.device, model.dtype if value.is_floating_point() else value.dtype)


def _end_of(token_ids: list[int], eos: frozenset[int]) -> int:
    """Length up to and including the first end-of-sequence token."""
    for index, token in enumerate(token_ids):
        if token in eos:
            return index + 1
    return len(token_ids)


def generate_alone(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    request: GenerationRequest,
    eos: frozenset[int],
    on_tokens: Callable[[list[int]], bool],
    between_steps: Callable[[], None],
) -> list[int]:
    """Run ``request`` with ``model.generate``; return its new token ids.

    ``on_tokens`` gets the new tokens of each step as they come (none with beam search, whose
    tokens are known only at the end) and returns False to stop the request (cancelled).
    """
    arguments = generate_arguments(request)
    given = arguments.pop("logits_processor", None) or []
    processors: list[LogitsProcessor] = [given] if isinstance(given, LogitsProcessor) else list(given)
    if request.constraint is not None:
        processors.append(ConstrainedLogits(request.constraint, set(eos), len(request.input_ids)))
    arguments.update({name: _on_model(model, value) for name, value in request.model_inputs.items()})
    if request.settings.seed is not None:
        torch.manual_seed(request.settings.seed)
    beams = int(arguments.get("num_beams", 1)) > 1
    stopping = _SoloStopping(tokenizer, request, eos, on_tokens, between_steps, beams=beams)
    input_ids = torch.tensor([request.input_ids], dtype=torch.long, device=model.device)
    pad_token_id = arguments.pop("pad_token_id", model.generation_config.pad_token_id)
    if pad_token_id is None:
        pad_token_id = min(eos) if eos else 0
    with torch.inference_mode():
        sequences = cast(SupportsGenerate, model).generate(
            input_ids=input_ids,
            attention_mask=torch.ones_like(input_ids),
            stopping_criteria=StoppingCriteriaList([stopping]),
            logits_processor=LogitsProcessorList(processors),
            pad_token_id=pad_token_id,
            **arguments,
        )
    if not beams:
        return stopping.token_ids
    new_tokens: list[int] = sequences[0, input_ids.shape[1] :].tolist()
    return new_tokens[: _end_of(new_tokens, eos)]
