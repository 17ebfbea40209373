"""Chats for multimodal chat templates: content as a list of text and image parts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PIL import Image as PILImage

from ._types import ChatMessage

ContentPart = dict[str, Any]
"""``{"type": "text", "text": ...}`` or ``{"type": "image", "image": <PIL image>, ...}``."""

_PART_ROLES = frozenset({"system", "user", "assistant"})


class UnreadableImageError(ValueError):
    """An image in the messages cannot be read, or the model's processor cannot take it."""


def _text(text: str) -> ContentPart:
    return {"type": "text", "text": text}


def readable_image(pixels: object, origin: str) -> PILImage.Image:
    """The RGB pixels of a PIL image; raises ``UnreadableImageError`` naming ``origin`` if none."""
    if not isinstance(pixels, PILImage.Image):
        raise UnreadableImageError(f"{origin} holds no PIL image (found {type(pixels).__name__}).")
    try:
        pixels.load()  # a lazily opened file is decoded here: corrupt or truncated data fails
        rgb = pixels if pixels.mode == "RGB" else pixels.convert("RGB")
    except Exception as error:  # PIL raises OSError, ValueError, SyntaxError, ... on bad data
        raise UnreadableImageError(f"{origin} cannot be read: {error}") from error
    if rgb.width == 0 or rgb.height == 0:
        raise UnreadableImageError(f"{origin} is empty ({rgb.width}x{rgb.height} pixels).")
    return rgb


def _checked(part: ContentPart) -> ContentPart:
    if part.get("type") != "image":
        return part
    origin = part.get("origin", "An image")
    return {**part, "image": readable_image(part.get("image"), origin), "origin": origin}


def _as_parts(entry: ChatMessage) -> ChatMessage:
    content = entry.get("content")
    if entry["role"] in _PART_ROLES and isinstance(content, str):
        return {**entry, "content": [_text(content)] if content else []}
    if isinstance(content, list):
        return {**entry, "content": [_checked(part) for part in content]}
    return entry


def to_vision_chat_messages(messages: Sequence[ChatMessage]) -> list[ChatMessage]:
    """The chat for a multimodal chat template.

    System, user and assistant content becomes a list of parts, as multimodal templates
    expect; a user message's text and images stay in their order, each image checked. Tool
    results keep their text content.

    Raises:
        UnreadableImageError: an image has no readable pixels; the error names its origin.
    """
    return [_as_parts(message) for message in messages]


def image_parts(chat: list[ChatMessage]) -> list[ContentPart]:
    """The image parts of ``chat``, in order."""
    return [
        part
        for message in chat
        if isinstance(message.get("content"), list)
        for part in message["content"]
        if part.get("type") == "image"
    ]


def merge_system_parts(chat: list[ChatMessage], *, keep_leading: bool) -> list[ChatMessage]:
    """For templates that refuse system messages: their parts open the next user turn (all of
    them, or all but a leading one)."""
    merged: list[ChatMessage] = []
    pending: list[ContentPart] = []
    for index, message in enumerate(chat):
        if message["role"] == "system" and not (keep_leading and index == 0):
            pending.extend(message["content"])
        elif message["role"] == "user" and pending:
            merged.append({**message, "content": [*pending, *message["content"]]})
            pending = []
        else:
            merged.append(message)
    if pending:
        merged.append({"role": "user", "content": pending})
    return merged


def _loggable_part(part: ContentPart) -> ContentPart:
    if part.get("type") != "image":
        return part
    image: PILImage.Image = part["image"]
    return {"type": "image", "width": image.width, "height": image.height}


def loggable_chat(chat: list[ChatMessage]) -> list[ChatMessage]:
    """``chat`` with each image described by its size instead of its pixels (JSON-safe)."""
    return [
        {**message, "content": [_loggable_part(part) for part in message["content"]]}
        if isinstance(message.get("content"), list)
        else message
        for message in chat
    ]
