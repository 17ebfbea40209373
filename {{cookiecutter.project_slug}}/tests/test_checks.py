"""Requests refused up front: text that is not valid Unicode, images the model_info refuses."""

from __future__ import annotations

from pathlib import Path

import pytest
from autogen_core import FunctionCall, Image
from autogen_core.models import (
    AssistantMessage,
    FunctionExecutionResult,
    FunctionExecutionResultMessage,
    LLMMessage,
    SystemMessage,
    UserMessage,
)
from PIL import Image as PILImage

from {{ cookiecutter.package_name }} import DEFAULT_MODEL_INFO, CapabilityError
from {{ cookiecutter.package_name }} import {{ cookiecutter.client_class_name }} as Client

LONE = "\ud800"
HELLO = UserMessage(content="Hello!", source="user")
BAD_MESSAGES: list[tuple[LLMMessage, str]] = [
    (UserMessage(content=f"a{LONE}b", source="user"), "UserMessage from 'user'"),
    (UserMessage(content=["fine", f"no{LONE}"], source="me"), "UserMessage from 'me'"),
    (SystemMessage(content=LONE), "SystemMessage"),
    (AssistantMessage(content="ok", thought=LONE, source="bot"), "AssistantMessage from 'bot'"),
    (
        AssistantMessage(
            content=[FunctionCall(id="1", name="f", arguments=f'["{LONE}"]')], source="bot"
        ),
        "AssistantMessage from 'bot'",
    ),
    (
        FunctionExecutionResultMessage(
            content=[FunctionExecutionResult(content=LONE, call_id="1", name="f")]
        ),
        "FunctionExecutionResultMessage",
    ),
]


@pytest.mark.parametrize(("message", "origin"), BAD_MESSAGES)
async def test_lone_surrogates_are_refused_naming_the_message(
    client: Client, message: LLMMessage, origin: str
) -> None:
    expected = rf"messages\[1\] \({origin}\) holds a lone surrogate \('\\ud800'"
    with pytest.raises(ValueError, match=expected):
        client.count_tokens([HELLO, message])
    with pytest.raises(ValueError, match=expected):
        await client.create([HELLO, message])


def _image() -> Image:
    return Image.from_pil(PILImage.new("RGB", (8, 8), "red"))


async def test_images_are_refused_when_model_info_says_no_vision(tiny_model_path: Path) -> None:
    info = {**DEFAULT_MODEL_INFO, "vision": False}
    client = Client(model_name=str(tiny_model_path), model_info=info)
    message = UserMessage(content=["What is this?", _image()], source="user")
    expected = r"messages\[0\] \(UserMessage from 'user'\) holds an image, but .* vision=False"
    try:
        with pytest.raises(CapabilityError, match=expected):
            client.count_tokens([message])
        with pytest.raises(CapabilityError, match=expected):
            await client.create([message])
    finally:
        await client.close()
