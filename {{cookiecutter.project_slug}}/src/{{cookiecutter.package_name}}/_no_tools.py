"""Tool calling stand-in: this client was generated with ``function_calling=no``.

It has the tool-calling module's interface, so the client reads the same either way: a
request with tools is refused with a clear error, one without goes on unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from autogen_core import FunctionCall
from autogen_core.tools import Tool, ToolSchema
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ._config import {{ cookiecutter.client_class_name }}Config as Config
from ._errors import CapabilityError
from ._generation import GenerationOutput
from ._text import ResponseParser

ToolChoice = Tool | Literal["auto", "required", "none"]


@dataclass
class ToolAnswer:
    """What a request's answer is when the model called tools (never, here)."""

    calls: list[FunctionCall]
    thought: str | None


@dataclass
class ToolRequest:
    """A request without tools."""

    tools: None = None
    hold_from: tuple[str, ...] = ()
    marker_token_ids: frozenset[int] = frozenset()


class ToolCalling:
    """Refuses tools: regenerate the project with ``function_calling=yes`` to use them."""

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        config: Config,
        model: Callable[[], PreTrainedModel],
    ) -> None:
        del tokenizer, config, model  # nothing to set up without tools

    def request(self, tools: Sequence[Tool | ToolSchema], tool_choice: ToolChoice) -> ToolRequest:
        """A request without tools; tools, or a choice that needs them, are refused.

        Raises:
            CapabilityError: tools were given, or ``tool_choice`` asks for a call.
        """
        if tools or tool_choice not in ("auto", "none"):
            raise CapabilityError(
                "This client does not support tools: it was generated with "
                "function_calling=no. Regenerate the project with function_calling=yes."
            )
        return ToolRequest()

    def prepare(
        self,
        request: ToolRequest,
        extra_arguments: dict[str, Any],
        *,
        prompt_ids: list[int],
        stop: list[str],
        starts_in_thought: bool,
    ) -> dict[str, Any]:
        """The ``generate`` arguments, unchanged."""
        return extra_arguments

    def answer(
        self, request: ToolRequest, output: GenerationOutput, parser: ResponseParser
    ) -> ToolAnswer | None:
        """No tool calls: the answer is text."""
        return None
