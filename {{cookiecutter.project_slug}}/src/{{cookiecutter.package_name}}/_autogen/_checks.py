"""Messages refused before any work: text that is not valid Unicode, and images for a client
whose ``model_info`` says it has no vision."""

from __future__ import annotations

from collections.abc import Sequence

from autogen_core import Image
from autogen_core.models import LLMMessage, ModelInfo, UserMessage

from .._core._errors import CapabilityError
from .._core._types import lone_surrogate, surrogate_error


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
        if (where := lone_surrogate(message)) is not None:
            raise surrogate_error(_origin(index, message), where)
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
