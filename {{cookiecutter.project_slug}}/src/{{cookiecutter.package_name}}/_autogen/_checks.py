"""Messages refused before any work: text that is not valid Unicode, and images for a client
whose ``model_info`` says it has no vision."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence

from autogen_core import Image
from autogen_core.models import LLMMessage, ModelInfo, UserMessage
from pydantic import BaseModel

from .._core._errors import CapabilityError


def _texts(value: object) -> Iterator[str]:
    """Every string in a message's fields (images left out)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _texts(getattr(value, name))
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            yield from _texts(getattr(value, field.name))
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _texts(item)


def _origin(index: int, message: LLMMessage) -> str:
    source = getattr(message, "source", None)
    return f"messages[{index}] ({type(message).__name__}" + (
        f" from {source!r})" if source else ")"
    )


def check_messages(messages: Sequence[LLMMessage], model_info: ModelInfo) -> None:
    """Refuse messages the model cannot take, naming the message.

    Raises:
        ValueError: a string holds a lone surrogate (half of a UTF-16 pair, such as
            ``"\\ud800"``), which no tokenizer can encode.
        CapabilityError: a user message holds an image and ``model_info`` says no vision.
    """
    for index, message in enumerate(messages):
        for text in _texts(message):
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as error:
                raise ValueError(
                    f"{_origin(index, message)} holds a lone surrogate "
                    f"({text[error.start]!r} at character {error.start}), which is not valid "
                    "Unicode text: fix the text where it was made, for example decode its bytes "
                    "with errors='replace'."
                ) from None
        if (
            isinstance(message, UserMessage)
            and not isinstance(message.content, str)
            and any(isinstance(part, Image) for part in message.content)
            and not model_info["vision"]
        ):
            raise CapabilityError(
                f"{_origin(index, message)} holds an image, but this client's model_info says "
                "vision=False: send text only, or set model_info with vision=True for a "
                "vision model."
            )
