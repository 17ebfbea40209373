"""JSON output stand-in: this client was generated with ``json_output=no``.

It has the JSON output module's interface, so the client reads the same either way:
``json_output`` is refused with a clear error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from autogen_core.models import ModelInfo
from pydantic import BaseModel
from transformers import PreTrainedTokenizerBase

from ._config import GenerationSettings
from ._errors import CapabilityError
from ._generation import AnswerCheck, Constraint


class JsonOutput:
    """Refuses ``json_output``: regenerate the project with ``json_output=yes`` to use it."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, model_info: ModelInfo) -> None:
        del tokenizer, model_info  # nothing to set up without JSON output

    def constrain(
        self,
        json_output: bool | type[BaseModel],
        settings: GenerationSettings,
        arguments: Mapping[str, Any],
        *,
        tools: Sequence[object] = (),
        budget: int | None = None,
    ) -> tuple[GenerationSettings, Constraint, AnswerCheck]:
        """Raises ``CapabilityError``: this client has no JSON output."""
        raise CapabilityError(
            "This client was generated without JSON output (json_output=no): regenerate "
            "the project with json_output=yes to use json_output."
        )
