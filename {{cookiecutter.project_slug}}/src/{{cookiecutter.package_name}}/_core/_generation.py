"""What an engine is asked to generate and what it gives back: the types every engine shares."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from transformers import GenerationConfig

from ._config import GenerationSettings

SAMPLING_FIELDS = ("temperature", "top_p", "top_k", "do_sample", "repetition_penalty")
"""Settings fields that are ``generate`` arguments of the same name."""

CLIENT_CONTROLLED: dict[str, str] = {
    "streamer": "stream with create_stream",
    "stopping_criteria": "give stop strings with 'stop'",
    "stop_strings": "give stop strings with 'stop'",
    "max_length": "give the budget with 'max_new_tokens'",
    "num_return_sequences": "a request has one answer",
    "return_dict_in_generate": "the client returns a CreateResult",
    "output_scores": "the client returns no scores",
    "output_logits": "the client returns no logits",
    "output_attentions": "the client returns no attentions",
    "output_hidden_states": "the client returns no hidden states",
}
"""``generate`` arguments the client sets itself, or whose output it cannot return."""

_MOVED_TO_HUB = (
    "transformers moved it to a hub repository (custom_generate, run with trust_remote_code); "
    "the client does not download and run code"
)
UNSUPPORTED: dict[str, str] = {
    "penalty_alpha": f"contrastive search: {_MOVED_TO_HUB}",
    "dola_layers": f"DoLa decoding: {_MOVED_TO_HUB}",
    "num_beam_groups": f"group beam search: {_MOVED_TO_HUB}",
    "diversity_penalty": f"group beam search: {_MOVED_TO_HUB}",
    "constraints": f"constrained beam search: {_MOVED_TO_HUB}",
    "force_words_ids": f"constrained beam search: {_MOVED_TO_HUB}",
    "token_healing": "it rewrites the end of the prompt, which the client builds and counts",
    "cache_implementation": "the engine keeps the keys and values itself (batching, prefix reuse)",
    "cache_config": "the engine keeps the keys and values itself (batching, prefix reuse)",
    "max_cache_len": "the engine keeps the keys and values itself (batching, prefix reuse)",
    "continuous_batching_config": "the engine schedules requests itself",
}
"""``generate`` arguments the engine cannot honour exactly: refused, with the reason."""

PASSTHROUGH_ARGUMENTS = frozenset(
    name
    for name in GenerationConfig().to_dict()  # type: ignore[no-untyped-call]
    if not name.startswith("_")
    and name not in CLIENT_CONTROLLED
    and name not in UNSUPPORTED
    and name != "transformers_version"
) | {"logits_processor"}
"""Generation arguments that ``extra_create_args`` may pass on to the model's decoding."""


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


class AnswerCheck(Protocol):
    """What an answer must satisfy beyond its grammar (a JSON schema's keywords that the
    grammar only approximates, say): the client samples again while it does not."""

    @property
    def exact(self) -> bool:
        """Whether the grammar alone guarantees the check passes (streaming needs no hold)."""

    def errors(self, content: Any) -> list[str]:
        """What is wrong with a result's content (text or calls); empty when it is valid."""


class Constraint(Protocol):
    """A grammar that a request's answer must follow (tool calls, JSON output).

    A description only: each engine turns it into what it enforces. The local engine calls
    :meth:`start` on its own thread, at the request's first decoding step.
    """

    def start(self, vocab_size: int, stop_token_ids: Collection[int]) -> TokenConstraint:
        """A fresh grammar state for one request, over logits ``vocab_size`` wide.

        ``stop_token_ids`` end the request; the grammar allows them once it is complete.
        """

    def structured_outputs(self) -> dict[str, Any]:
        """The grammar as a vLLM server takes it (its ``structured_outputs`` request field)."""

    def server_reserve(self) -> int:
        """Tokens of the budget a server is not given: kept to complete its answer here."""

    def completion(
        self, token_ids: Sequence[int], stop_token_ids: Collection[int], left: int
    ) -> list[int] | None:
        """Tokens (a stop token last, at most ``left``) that complete an answer cut off after
        ``token_ids``, as the grammar's shortest way to finish; None when none fits."""


@dataclass
class GenerationRequest:
    """What one request asks of the model."""

    input_ids: list[int]
    max_new_tokens: int
    settings: GenerationSettings
    extra_arguments: dict[str, Any] = field(default_factory=dict)
    """More ``generate`` arguments (see :data:`PASSTHROUGH_ARGUMENTS`)."""
    model_inputs: dict[str, torch.Tensor] = field(default_factory=dict)
    """Inputs for the model besides the token ids, such as an image's ``pixel_values``."""
    constraint: Constraint | None = None
    """A grammar the answer must follow, or None."""


@dataclass
class GenerationOutput:
    """What the model produced for one request."""

    token_ids: list[int]
    ended_with_eos: bool
    cancelled: bool
    reused_prompt_tokens: int = 0
    """Leading prompt tokens whose keys and values were reused instead of processed again."""
    out_of_time: bool = False
    """The request's ``max_time`` ran out before its other ends."""
