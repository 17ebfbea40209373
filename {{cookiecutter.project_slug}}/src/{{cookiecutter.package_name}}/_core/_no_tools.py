"""Tool calling stand-in: this client was generated with ``function_calling=no``.

It has the tool-calling module's interface, so the client reads the same either way: a
request with tools is refused with a clear error, one without goes on unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ._config import GenerationSettings
from ._config import ModelConfig as Config
from ._errors import CapabilityError
from ._generation import AnswerCheck, Constraint, GenerationOutput
from ._prompt import ChatMessage, PromptRenderer
from ._text import ResponseParser
from ._types import ChatTool, FunctionCall, ToolChoice


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

    def __init__(self, renderer: PromptRenderer, config: Config) -> None:
        del renderer, config  # nothing to set up without tools

    def prompt(
        self, chat: list[ChatMessage], tools: list[dict[str, Any]] | None
    ) -> tuple[list[ChatMessage], list[dict[str, Any]] | None]:
        """``chat`` and ``tools`` unchanged."""
        return chat, tools

    def request(self, tools: Sequence[ChatTool], tool_choice: ToolChoice) -> ToolRequest:
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
        settings: GenerationSettings,
        *,
        prompt_ids: list[int],
        starts_in_thought: bool,
        max_new_tokens: int,
    ) -> tuple[GenerationSettings, Constraint | None, AnswerCheck | None]:
        """The settings, unchanged, no grammar and no check."""
        return settings, None, None

    def answer(
        self, request: ToolRequest, output: GenerationOutput, parser: ResponseParser
    ) -> ToolAnswer | None:
        """No tool calls: the answer is text."""
        return None
