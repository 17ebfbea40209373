"""Images in user messages: prompts through the processor, pixels to the model, exact counts."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import shutil
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest
import torch
from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.messages import MultiModalMessage, TextMessage
from autogen_core import EVENT_LOGGER_NAME, CancellationToken, Image
from autogen_core.logging import LLMCallEvent
from autogen_core.models import (
    AssistantMessage,
    CreateResult,
    LLMMessage,
    SystemMessage,
    UserMessage,
)
from PIL import Image as PILImage
from scripting import StepRecorder, local_engine
from tiny_models import CHAT_TEMPLATES
from tiny_vision_models import IMAGE_TOKEN, TOKENS_PER_IMAGE, build_tiny_vision_model
from transformers import (
    AutoModelForImageTextToText,
    AutoProcessor,
    BatchFeature,
    CLIPImageProcessorPil,
    LogitsProcessor,
    LogitsProcessorList,
    ProcessorMixin,
)

from {{ cookiecutter.package_name }} import CapabilityError, ClientClosedError, UnreadableImageError
from {{ cookiecutter.package_name }} import {{ cookiecutter.client_class_name }} as Client

RED = Image.from_pil(PILImage.new("RGB", (20, 30), (255, 0, 0)))
BLUE = Image.from_pil(PILImage.new("RGB", (30, 20), (0, 0, 255)))
GRADIENT = Image.from_pil(PILImage.radial_gradient("L"))
NEW_TOKENS = 8


def image_part(image: Image) -> dict[str, Any]:
    return {"type": "image", "image": image.image}


def text_part(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


@pytest.fixture(scope="module")
def vision_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_vision_model(tmp_path_factory.mktemp("tiny-vision"))


@pytest.fixture(scope="module")
def processor(vision_model_path: Path) -> ProcessorMixin:
    loaded: ProcessorMixin = AutoProcessor.from_pretrained(vision_model_path)  # type: ignore[no-untyped-call]
    return loaded


@pytest.fixture(scope="module")
def model(vision_model_path: Path) -> Any:
    return AutoModelForImageTextToText.from_pretrained(vision_model_path)


@pytest.fixture(scope="module")
async def vision_client(vision_model_path: Path, model: Any) -> AsyncIterator[Client]:
    # After `model`: two `from_pretrained` running at once in two threads can leave the
    # output embeddings untied (random), so the reference loads before the client's worker.
    client = Client(model_name=str(vision_model_path), max_new_tokens=NEW_TOKENS, do_sample=False)
    yield client
    await client.close()


def processor_inputs(
    processor: ProcessorMixin, chat: list[dict[str, Any]], chat_template: str | None = None
) -> BatchFeature:
    """What the processor gives for ``chat`` without the client."""
    return cast(
        BatchFeature,
        processor.apply_chat_template(
            chat,
            chat_template=chat_template,
            add_generation_prompt=True,
            tokenize=True,
            return_dict=True,
            return_tensors="pt",
        ),
    )


def bare_answer(model: Any, processor: ProcessorMixin, chat: list[dict[str, Any]]) -> list[int]:
    """New token ids from a bare greedy ``generate`` on the processor's inputs."""
    inputs = processor_inputs(processor, chat)
    with torch.inference_mode():
        output = model.generate(**inputs, max_new_tokens=NEW_TOKENS, do_sample=False)
    new_tokens: list[int] = output[0, inputs["input_ids"].shape[1] :].tolist()
    return new_tokens


class PromptRecorder(LogitsProcessor):
    """Keeps the prompt token ids the model got (the sequence at the first decoding step)."""

    def __init__(self) -> None:
        self.prompt: list[int] | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.prompt is None:
            self.prompt = input_ids[0].tolist()
        return scores


ONE_IMAGE: list[LLMMessage] = [
    UserMessage(content=["What is in this picture?", RED], source="user")
]
ONE_IMAGE_CHAT: list[dict[str, Any]] = [
    {"role": "user", "content": [text_part("What is in this picture?"), image_part(RED)]}
]
SEVERAL_IMAGES: list[LLMMessage] = [
    UserMessage(content=["Compare", RED, "with", BLUE, GRADIENT], source="user")
]
SEVERAL_IMAGES_CHAT: list[dict[str, Any]] = [
    {
        "role": "user",
        "content": [
            text_part("Compare"),
            image_part(RED),
            text_part("with"),
            image_part(BLUE),
            image_part(GRADIENT),
        ],
    }
]
HISTORY: list[LLMMessage] = [
    SystemMessage(content="You are a helpful assistant."),
    UserMessage(content=[RED, "What colour is this?"], source="user"),
    AssistantMessage(content="Red.", source="assistant"),
    UserMessage(content=["And this one?", BLUE], source="user"),
]
HISTORY_CHAT: list[dict[str, Any]] = [
    {"role": "system", "content": [text_part("You are a helpful assistant.")]},
    {"role": "user", "content": [image_part(RED), text_part("What colour is this?")]},
    {"role": "assistant", "content": [text_part("Red.")]},
    {"role": "user", "content": [text_part("And this one?"), image_part(BLUE)]},
]
TEXT_ONLY: list[LLMMessage] = [UserMessage(content="Hello! How are you today?", source="user")]
TEXT_ONLY_CHAT: list[dict[str, Any]] = [
    {"role": "user", "content": [text_part("Hello! How are you today?")]}
]

CASES = {
    "one-image": (ONE_IMAGE, ONE_IMAGE_CHAT, 1),
    "several-images": (SEVERAL_IMAGES, SEVERAL_IMAGES_CHAT, 3),
    "images-in-history": (HISTORY, HISTORY_CHAT, 2),
    "text-only": (TEXT_ONLY, TEXT_ONLY_CHAT, 0),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
async def test_prompt_and_answer_match_the_processor_and_bare_generate(
    vision_client: Client,
    processor: ProcessorMixin,
    model: Any,
    case: tuple[list[LLMMessage], list[dict[str, Any]], int],
) -> None:
    messages, chat, image_count = case
    expected_prompt = processor_inputs(processor, chat)["input_ids"][0].tolist()
    expected_answer = bare_answer(model, processor, chat)
    recorder = PromptRecorder()

    result = await vision_client.create(
        messages, extra_create_args={"logits_processor": LogitsProcessorList([recorder])}
    )

    assert recorder.prompt == expected_prompt
    image_token_id = processor.tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    assert expected_prompt.count(image_token_id) == image_count * TOKENS_PER_IMAGE
    assert result.content == processor.tokenizer.decode(expected_answer, skip_special_tokens=True)
    assert result.usage.prompt_tokens == len(expected_prompt)
    assert result.usage.completion_tokens == len(expected_answer)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
async def test_count_tokens_counts_image_tokens_as_the_processor_expands_them(
    vision_client: Client,
    processor: ProcessorMixin,
    case: tuple[list[LLMMessage], list[dict[str, Any]], int],
) -> None:
    messages, chat, image_count = case
    count = vision_client.count_tokens(messages)
    assert count == len(processor_inputs(processor, chat)["input_ids"][0])
    result = await vision_client.create(messages, extra_create_args={"max_new_tokens": 1})
    assert result.usage.prompt_tokens == count
    without_images = [
        UserMessage(content=[p for p in m.content if isinstance(p, str)], source=m.source)
        if isinstance(m, UserMessage) and not isinstance(m.content, str)
        else m
        for m in messages
    ]
    assert count - vision_client.count_tokens(without_images) == image_count * TOKENS_PER_IMAGE
    assert vision_client.remaining_tokens(messages) == vision_client.context_window - count


async def test_the_model_sees_the_pixels(vision_client: Client) -> None:
    answers = {
        (
            await vision_client.create([UserMessage(content=["Describe", image], source="user")])
        ).content
        for image in (RED, BLUE, GRADIENT)
    }
    assert len(answers) == 3


async def test_streaming_with_an_image_yields_the_create_answer(vision_client: Client) -> None:
    expected = await vision_client.create(HISTORY)
    chunks: list[str] = []
    final: CreateResult | None = None
    async for item in vision_client.create_stream(HISTORY):
        if isinstance(item, CreateResult):
            final = item
        else:
            chunks.append(item)
    assert final is not None
    assert len(chunks) > 1
    assert "".join(chunks) == final.content == expected.content
    assert final.usage == expected.usage


async def test_images_are_processed_on_the_engine_thread(
    vision_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[str] = []
    original = CLIPImageProcessorPil.preprocess

    def recording(self: CLIPImageProcessorPil, *args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread().name)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(CLIPImageProcessorPil, "preprocess", recording)
    await vision_client.create(ONE_IMAGE)
    async for _ in vision_client.create_stream(ONE_IMAGE):
        pass
    assert len(threads) == 2
    assert all(name.startswith(type(vision_client).__name__) for name in threads), threads


async def test_cancelling_stops_generation_with_an_image(vision_client: Client) -> None:
    token = CancellationToken()
    recorder = StepRecorder(on_step=lambda step: token.cancel() if step == 2 else None)
    with pytest.raises(asyncio.CancelledError):
        await vision_client.create(
            ONE_IMAGE,
            cancellation_token=token,
            extra_create_args={
                "max_new_tokens": 200,
                "logits_processor": LogitsProcessorList([recorder]),
            },
        )
    assert recorder.steps <= 3


async def test_close_fails_image_requests_waiting_for_preprocessing_clearly(
    vision_model_path: Path,
) -> None:
    client = Client(model_name=str(vision_model_path), max_new_tokens=4)
    await asyncio.wrap_future(local_engine(client).model)
    release = threading.Event()
    busy = local_engine(client)._thread.call(release.wait, 60)  # the engine thread is busy
    waiting = [asyncio.create_task(client.create(ONE_IMAGE)) for _ in range(3)]
    await asyncio.sleep(0.05)  # their preprocessing is queued behind the busy call
    closing = asyncio.create_task(client.close())
    await asyncio.sleep(0.05)
    release.set()
    await closing
    assert busy.result() is True
    for task in waiting:
        with pytest.raises(ClientClosedError):
            await task


async def test_logged_messages_describe_images_without_pixels(
    vision_client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger=EVENT_LOGGER_NAME):
        await vision_client.create(ONE_IMAGE, extra_create_args={"max_new_tokens": 1})
    events = [r.msg for r in caplog.records if isinstance(r.msg, LLMCallEvent)]
    assert len(events) == 1
    logged = json.loads(str(events[0]))["messages"]
    assert logged == [
        {
            "role": "user",
            "content": [
                text_part("What is in this picture?"),
                {"type": "image", "width": 20, "height": 30},
            ],
        }
    ]


async def test_agent_passes_images_to_the_model(vision_client: Client) -> None:
    agent = AssistantAgent("looker", model_client=vision_client, system_message=None)
    result = await agent.run(task=MultiModalMessage(content=["Describe", GRADIENT], source="user"))
    direct = await vision_client.create(
        [UserMessage(content=["Describe", GRADIENT], source="user")]
    )
    answer = result.messages[-1]
    assert isinstance(answer, TextMessage)
    assert answer.content == direct.content


async def test_system_text_opens_the_user_turn_when_the_template_rejects_system(
    vision_model_path: Path, processor: ProcessorMixin
) -> None:
    template = (CHAT_TEMPLATES / "vision_rejects_system.jinja").read_text(encoding="utf-8")
    client = Client(model_name=str(vision_model_path), chat_template=template)
    messages = [SystemMessage(content="Be brief."), *ONE_IMAGE]
    merged = [{"role": "user", "content": [text_part("Be brief."), *ONE_IMAGE_CHAT[0]["content"]]}]
    expected = processor_inputs(processor, merged, chat_template=template)
    assert client.count_tokens(messages) == len(expected["input_ids"][0])
    await client.close()


def _truncated_png() -> PILImage.Image:
    data = io.BytesIO()
    PILImage.new("RGB", (64, 64), (1, 2, 3)).save(data, format="PNG")
    return PILImage.open(io.BytesIO(data.getvalue()[:60]))  # opens lazily: decoding fails later


def _with_pixels(pixels: object) -> Image:
    image = Image.from_pil(PILImage.new("RGB", (4, 4)))
    image.image = pixels  # type: ignore[assignment]
    return image


UNREADABLE = {
    "empty": (Image.from_pil(PILImage.new("RGB", (0, 0))), "is empty (0x0 pixels)"),
    "truncated": (_with_pixels(_truncated_png()), "cannot be read"),
    "not-an-image": (_with_pixels(b"not an image"), "holds no PIL image"),
}


@pytest.mark.parametrize("case", UNREADABLE.values(), ids=UNREADABLE.keys())
async def test_an_unreadable_image_is_an_error_naming_the_message(
    vision_client: Client, case: tuple[Image, str]
) -> None:
    image, problem = case
    messages: list[LLMMessage] = [
        *ONE_IMAGE,
        UserMessage(content=["Now this one:", RED, image], source="alice"),
    ]
    with pytest.raises(
        UnreadableImageError, match=r"messages\[1\]\.content\[2\] \(from 'alice'\)"
    ) as error:
        await vision_client.create(messages)
    assert problem in str(error.value)
    with pytest.raises(UnreadableImageError, match=r"messages\[1\]\.content\[2\]"):
        vision_client.count_tokens(messages)


async def test_an_image_the_processor_refuses_is_an_error_naming_the_message(
    vision_client: Client, processor: ProcessorMixin, monkeypatch: pytest.MonkeyPatch
) -> None:
    image_processor_class = type(processor.image_processor)
    preprocess = image_processor_class.preprocess

    def refuse_wide_images(self: Any, images: Any, *args: Any, **kwargs: Any) -> Any:
        flat = images if isinstance(images, list) else [images]
        while flat and isinstance(flat[0], list):
            flat = [image for group in flat for image in group]
        if any(image.width > 25 for image in flat):
            raise ValueError("images wider than 25 pixels are not supported")
        return preprocess(self, images, *args, **kwargs)

    monkeypatch.setattr(image_processor_class, "preprocess", refuse_wide_images)
    messages = [UserMessage(content=[RED, "and", BLUE], source="bob")]  # BLUE is 30 wide
    with pytest.raises(UnreadableImageError, match=r"messages\[0\]\.content\[2\] \(from 'bob'\)"):
        await vision_client.create(messages)


async def test_a_text_model_refuses_images_clearly(tiny_model_path: Path) -> None:
    client = Client(model_name=str(tiny_model_path), max_new_tokens=2)
    result = await client.create(TEXT_ONLY)
    assert result.usage.completion_tokens == 2
    with pytest.raises(CapabilityError, match=r"text model .* the image in messages\[0\]\.content\[1\] \(from 'user'\)"):
        await client.create(ONE_IMAGE)
    await client.close()


def test_a_vision_model_without_chat_template_is_a_clear_error(
    vision_model_path: Path, tmp_path: Path
) -> None:
    copy = Path(shutil.copytree(vision_model_path, tmp_path / "no-template"))
    (copy / "chat_template.jinja").unlink()
    with pytest.raises(ValueError, match="has no chat template: set chat_template"):
        Client(model_name=str(copy))
