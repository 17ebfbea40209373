"""AutoGen's messages and tools to the core's chats and tool definitions, and calls back."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from autogen_core import FunctionCall, Image
from autogen_core.models import (
    AssistantMessage,
    FunctionExecutionResultMessage,
    LLMMessage,
    SystemMessage,
    UserMessage,
)
from autogen_core.tools import Tool, ToolSchema

from .._core._types import ChatMessage, ChatTool, ForcedTool, ToolChoice, template_arguments
from .._core._types import FunctionCall as CoreCall


def _user_content(index: int, message: UserMessage) -> str | list[dict[str, Any]]:
    if isinstance(message.content, str):
        return message.content
    parts: list[dict[str, Any]] = []
    for position, part in enumerate(message.content):
        if isinstance(part, Image):
            origin = f"The image in messages[{index}].content[{position}] (from {message.source!r})"
            parts.append({"type": "image", "image": part.image, "origin": origin})
        else:
            parts.append({"type": "text", "text": part})
    return parts


def to_chat_messages(messages: Sequence[LLMMessage]) -> list[ChatMessage]:
    """AutoGen messages as the core's chat: the dicts that ``apply_chat_template`` renders.

    A user message with images gets a list of text and image parts, each image named by
    where it is (for errors); tool results become one ``tool`` message each.
    """
    chat: list[ChatMessage] = []
    for index, message in enumerate(messages):
        if isinstance(message, SystemMessage):
            chat.append({"role": "system", "content": message.content})
        elif isinstance(message, UserMessage):
            chat.append({"role": "user", "content": _user_content(index, message)})
        elif isinstance(message, AssistantMessage):
            entry: ChatMessage = {"role": "assistant"}
            if isinstance(message.content, str):
                entry["content"] = message.content
            else:
                entry["content"] = ""
                entry["tool_calls"] = [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {
                            "name": call.name,
                            "arguments": template_arguments(call.arguments),
                        },
                    }
                    for call in message.content
                ]
            if message.thought:
                entry["reasoning_content"] = message.thought
            chat.append(entry)
        elif isinstance(message, FunctionExecutionResultMessage):
            chat.extend(
                {
                    "role": "tool",
                    "content": result.content,
                    "tool_call_id": result.call_id,
                    "name": result.name,
                }
                for result in message.content
            )
        else:  # pragma: no cover - LLMMessage is a closed union
            raise TypeError(f"Unsupported message type: {type(message).__name__}")
    return chat


def to_chat_tools(tools: Sequence[Tool | ToolSchema]) -> list[ChatTool]:
    """Tools as chat templates take them: ``{"type": "function", "function": schema}``."""
    definitions: list[ChatTool] = []
    for tool in tools:
        schema: dict[str, Any] = dict(tool if isinstance(tool, dict) else tool.schema)
        schema.setdefault("parameters", {"type": "object", "properties": {}})
        definitions.append({"type": "function", "function": schema})
    return definitions


def to_tool_choice(tool_choice: Tool | str) -> ToolChoice:
    """AutoGen's ``tool_choice`` for the core: a ``Tool`` forces a call to it."""
    if isinstance(tool_choice, str):
        if tool_choice not in ("auto", "required", "none"):
            raise ValueError(
                f"tool_choice must be 'auto', 'required', 'none' or a Tool, not {tool_choice!r}"
            )
        return tool_choice  # type: ignore[return-value]
    return ForcedTool(tool_choice.name)


def to_function_calls(calls: Sequence[CoreCall]) -> list[FunctionCall]:
    """The core's calls as AutoGen's."""
    return [FunctionCall(id=call.id, arguments=call.arguments, name=call.name) for call in calls]
