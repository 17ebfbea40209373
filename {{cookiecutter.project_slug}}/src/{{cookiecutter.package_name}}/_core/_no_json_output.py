"""JSON output stand-in: this client was generated with ``json_output=no``.

It has the JSON output module's interface, so the client reads the same either way:
``json_output`` is refused with a clear error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel
from transformers import PreTrainedTokenizerBase

from ._config import GenerationSettings
from ._defaults import Capabilities
from ._errors import CapabilityError
from ._generation import AnswerCheck, Constraint

JsonRequest = bool | type[BaseModel] | Mapping[str, Any]
"""What a request asks for (refused here)."""


class JsonOutput:
    """Refuses ``json_output``: regenerate the project with ``json_output=yes`` to use it."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        del tokenizer  # nothing to set up without JSON output

    def constrain(
        self,
        json_output: JsonRequest,
        settings: GenerationSettings,
        arguments: Mapping[str, Any],
        *,
        capabilities: Capabilities,
        tools: Sequence[object] = (),
        budget: int | None = None,
    ) -> tuple[GenerationSettings, Constraint, AnswerCheck]:
        """Raises ``CapabilityError``: this client has no JSON output."""
        raise CapabilityError(
            "This client was generated without JSON output (json_output=no): regenerate "
            "the project with json_output=yes to use json_output."
        )
