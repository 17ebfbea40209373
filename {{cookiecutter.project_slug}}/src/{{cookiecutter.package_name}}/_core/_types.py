"""What the core takes and gives, free of any agent framework.

A chat is a list of messages as chat templates take them (``{"role": ..., "content": ...}``,
assistant ``tool_calls``, ``tool`` results); tools are chat-template tool definitions; calls
come back as :class:`FunctionCall`. Each front (AutoGen, Agent Framework) converts its own
types to these and back.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

ChatMessage = dict[str, Any]
"""A message as chat templates expect it: ``{"role": ..., "content": ...}`` and friends. A
user message's content may be a list of parts: ``{"type": "text", "text": ...}`` and
``{"type": "image", "image": <PIL image>, "origin": <where it came from, for errors>}``."""

ChatTool = dict[str, Any]
"""A tool as chat templates take it: ``{"type": "function", "function": {"name": ...,
"description": ..., "parameters": <JSON schema>}}``."""


@dataclass(frozen=True)
class FunctionCall:
    """A call the model made: its id, the tool's name and the arguments as JSON text."""

    id: str
    arguments: str
    name: str


@dataclass(frozen=True)
class ForcedTool:
    """A ``tool_choice`` that forces one call to the tool of this name."""

    name: str


ToolChoice = Literal["auto", "required", "none"] | ForcedTool
"""``auto``: the model decides; ``required``: one call to any tool; ``none``: no tools."""

FinishReason = Literal["stop", "length", "function_calls"]


def template_arguments(arguments: str) -> Any:
    """A call's JSON arguments as chat templates take them: a dict (the text where it is
    not JSON, as given)."""
    try:
        return json.loads(arguments)
    except json.JSONDecodeError:
        return arguments


def image_origin(part: dict[str, Any]) -> str:
    """Where an image part came from, to end a sentence: "the image in messages[0]..."."""
    origin = str(part.get("origin") or "an image")
    return origin[:1].lower() + origin[1:]


def _texts(value: object) -> Iterator[str]:
    """Every string in ``value``: in dicts, lists, dataclasses and pydantic models."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _texts(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _texts(item)
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _texts(getattr(value, name))
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            yield from _texts(getattr(value, field.name))


def lone_surrogate(value: object) -> str | None:
    """Where a string in ``value`` holds a lone surrogate (half of a UTF-16 pair, such as
    ``"\\ud800"``, which no tokenizer can encode), or None."""
    for text in _texts(value):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as error:
            return f"{text[error.start]!r} at character {error.start}"
    return None


def surrogate_error(origin: str, where: str) -> ValueError:
    """The error for a lone surrogate at ``where`` in the message ``origin``."""
    return ValueError(
        f"{origin} holds a lone surrogate ({where}), which is not valid Unicode text: fix the "
        "text where it was made, for example decode its bytes with errors='replace'."
    )


def check_text(chat: Sequence[ChatMessage]) -> None:
    """Refuse a chat whose text no tokenizer can encode.

    Raises:
        ValueError: a string holds a lone surrogate; the error names the message.
    """
    for index, message in enumerate(chat):
        if (where := lone_surrogate(message)) is not None:
            raise surrogate_error(f"messages[{index}]", where)


def tool_name(tool: ChatTool) -> str:
    """The name of a chat-template tool definition."""
    name: str = tool["function"]["name"]
    return name
