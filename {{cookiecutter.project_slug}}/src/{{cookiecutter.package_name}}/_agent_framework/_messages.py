"""Agent Framework's messages, tools and tool choice to the core's, and answers back."""

from __future__ import annotations

import base64
import binascii
import io
import json
from collections.abc import Mapping, Sequence
from typing import Any

from agent_framework import Content, FunctionTool, Message, UsageDetails
from agent_framework.exceptions import ChatClientInvalidRequestException
from PIL import Image

from .._core._chat import Answer
from .._core._types import (
    ChatMessage,
    ChatTool,
    ForcedTool,
    ToolChoice,
    template_arguments,
    tool_name,
)

_IGNORED_CONTENT = frozenset({"usage", "error"})
"""Content that says something about an earlier answer, not to the model."""


def _image(content: Content, origin: str) -> Image.Image:
    """The PIL image of a ``data:image/...;base64,`` content item."""
    uri = content.uri or ""
    if not uri.startswith("data:") or "," not in uri:
        raise ChatClientInvalidRequestException(
            f"{origin} is a link ({uri[:60]!r}): a local model takes images as data "
            "(Content.from_data(image_bytes, 'image/png')), it downloads nothing."
        )
    header, payload = uri.split(",", 1)
    if not header.endswith(";base64"):
        raise ChatClientInvalidRequestException(f"{origin} is not base64 data.")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as error:
        raise ChatClientInvalidRequestException(f"{origin} holds invalid base64: {error}") from None
    try:
        return Image.open(io.BytesIO(data))
    except Exception as error:  # PIL raises several types on data it cannot read
        raise ChatClientInvalidRequestException(f"{origin} is no image PIL can read: {error}") from None


def _arguments(content: Content) -> Any:
    """A call's arguments as chat templates take them: a dict (else the text as given)."""
    arguments = content.arguments
    if isinstance(arguments, Mapping):
        return dict(arguments)
    return template_arguments(arguments or "{}")


def _result_text(content: Content) -> str:
    if content.items:
        return "\n".join(item.text or "" for item in content.items if item.type == "text")
    result = content.result
    if result is None:
        return content.exception or ""
    return result if isinstance(result, str) else json.dumps(result, ensure_ascii=False, default=str)


def to_chat_messages(messages: Sequence[Message]) -> list[ChatMessage]:
    """Agent Framework messages as the core's chat.

    Text and images keep their order (an image is a ``data:`` content item); reasoning goes
    to ``reasoning_content``; calls become the assistant turn's ``tool_calls``; each function
    result becomes one ``tool`` message, named after its call.

    Raises:
        ChatClientInvalidRequestException: content a local model cannot take (an image by
            link, hosted tools' content).
    """
    chat: list[ChatMessage] = []
    call_names: dict[str, str] = {}
    for index, message in enumerate(messages):
        parts: list[dict[str, Any]] = []
        reasoning: list[str] = []
        calls: list[dict[str, Any]] = []
        for position, content in enumerate(message.contents):
            origin = f"messages[{index}].contents[{position}]"
            kind = content.type
            if kind == "text":
                parts.append({"type": "text", "text": content.text or ""})
            elif kind == "text_reasoning":
                reasoning.append(content.text or "")
            elif kind in ("data", "uri") and content.has_top_level_media_type("image"):
                image = _image(content, f"The image in {origin}")
                parts.append({"type": "image", "image": image, "origin": f"The image in {origin}"})
            elif kind == "function_call":
                call_id = content.call_id or f"call_{index}_{position}"
                call_names[call_id] = content.name or ""
                calls.append(
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {"name": content.name, "arguments": _arguments(content)},
                    }
                )
            elif kind == "function_result":
                call_id = content.call_id or ""
                chat.append(
                    {
                        "role": "tool",
                        "content": _result_text(content),
                        "tool_call_id": call_id,
                        "name": call_names.get(call_id, ""),
                    }
                )
            elif kind not in _IGNORED_CONTENT:
                raise ChatClientInvalidRequestException(
                    f"{origin} is {kind!r} content, which a local model cannot take."
                )
        if not parts and not calls and not reasoning and message.role == "tool":
            continue  # its results are in the chat already
        if any(part["type"] == "image" for part in parts):
            text: str | list[dict[str, Any]] = parts
        else:
            text = "".join(part["text"] for part in parts)
        entry: ChatMessage = {"role": str(message.role), "content": text}
        if calls:
            entry["tool_calls"] = calls
        if reasoning:
            entry["reasoning_content"] = "".join(reasoning)
        chat.append(entry)
    return chat


def to_chat_tools(tools: Sequence[Any] | None) -> list[ChatTool]:
    """Function tools as chat templates take them; other tools are refused.

    Raises:
        ChatClientInvalidRequestException: a hosted tool (web search, code interpreter...),
            which only a service can run.
    """
    definitions: list[ChatTool] = []
    for tool in tools or ():
        if isinstance(tool, FunctionTool):
            definitions.append(tool.to_json_schema_spec())
        elif isinstance(tool, Mapping) and tool.get("type") == "function":
            definitions.append(dict(tool))
        else:
            raise ChatClientInvalidRequestException(
                f"{tool!r} is not a function tool: a local model runs function tools only."
            )
    return definitions


def to_tool_choice(
    tool_choice: Mapping[str, Any] | str | None, tools: list[ChatTool]
) -> tuple[ToolChoice, list[ChatTool]]:
    """Agent Framework's ``tool_choice`` for the core, and the tools it leaves (its
    ``allowed_tools``)."""
    if tool_choice is None:
        return "auto", tools
    mode = tool_choice if isinstance(tool_choice, str) else tool_choice.get("mode", "auto")
    if isinstance(tool_choice, Mapping) and "allowed_tools" in tool_choice:
        allowed = set(tool_choice["allowed_tools"])
        tools = [tool for tool in tools if tool_name(tool) in allowed]
    if (
        mode == "required"
        and isinstance(tool_choice, Mapping)
        and (name := tool_choice.get("required_function_name"))
    ):
        return ForcedTool(str(name)), tools
    if mode not in ("auto", "required", "none"):
        raise ChatClientInvalidRequestException(f"Invalid tool_choice: {tool_choice!r}")
    return mode, tools  # type: ignore[return-value]


def usage_details(answer: Answer) -> UsageDetails:
    """The answer's exact token counts."""
    return UsageDetails(
        input_token_count=answer.prompt_tokens,
        output_token_count=answer.completion_tokens,
        total_token_count=answer.prompt_tokens + answer.completion_tokens,
    )


def answer_contents(answer: Answer, *, streamed: bool) -> list[Content]:
    """The answer as content items: its reasoning, then its text (unless ``streamed``: the
    text came in chunks) or its calls."""
    contents: list[Content] = []
    if answer.thought:
        contents.append(Content.from_text_reasoning(text=answer.thought))
    if isinstance(answer.content, str):
        if answer.content and not streamed:
            contents.append(Content.from_text(answer.content))
    else:
        contents.extend(
            Content.from_function_call(call.id, call.name, arguments=call.arguments)
            for call in answer.content
        )
    return contents
