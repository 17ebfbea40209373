"""create_stream(): real token streaming, exact usage, stop strings, early close, cancellation."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from autogen_core import EVENT_LOGGER_NAME, CancellationToken
from autogen_core.logging import LLMStreamEndEvent, LLMStreamStartEvent
from autogen_core.models import CreateResult, LLMMessage, UserMessage
from scripting import StepRecorder, scripted_args
from transformers import AutoTokenizer, LogitsProcessorList, PreTrainedTokenizerBase

from {{ cookiecutter.package_name }} import {{ cookiecutter.client_class_name }} as Client

HELLO = UserMessage(content="Hello! How are you today?", source="user")


@pytest.fixture(scope="module")
def tokenizer(tiny_model_path: Path) -> PreTrainedTokenizerBase:
    return AutoTokenizer.from_pretrained(tiny_model_path)


async def collect(
    client: Client, messages: list[LLMMessage], **kwargs: object
) -> tuple[list[str], CreateResult]:
    chunks: list[str] = []
    results: list[CreateResult] = []
    async for item in client.create_stream(messages, **kwargs):  # type: ignore[arg-type]
        if isinstance(item, CreateResult):
            results.append(item)
        else:
            assert not results, "a text chunk came after the CreateResult"
            chunks.append(item)
    assert len(results) == 1
    return chunks, results[0]


async def test_stream_equals_create_with_exact_usage(client: Client) -> None:
    created = await client.create([HELLO])
    chunks, result = await collect(client, [HELLO])
    assert len(chunks) > 1
    assert all(chunks)
    assert "".join(chunks) == result.content == created.content
    assert result.usage == created.usage
    assert result.usage.completion_tokens == 24
    assert result.finish_reason == "length"


async def test_beam_search_streams_its_answer_at_the_end(client: Client) -> None:
    beams = {"num_beams": 2, "max_new_tokens": 8}
    created = await client.create([HELLO], extra_create_args=beams)
    chunks, result = await collect(client, [HELLO], extra_create_args=beams)
    assert created.content
    assert "".join(chunks) == result.content == created.content
    assert result.usage == created.usage


async def test_chunks_arrive_while_the_model_is_still_generating(client: Client) -> None:
    recorder = StepRecorder()
    steps_at_first_chunk = None
    args = {"max_new_tokens": 64, "logits_processor": LogitsProcessorList([recorder])}
    async for item in client.create_stream([HELLO], extra_create_args=args):
        if isinstance(item, str) and steps_at_first_chunk is None:
            steps_at_first_chunk = recorder.steps
    assert steps_at_first_chunk is not None
    assert steps_at_first_chunk < recorder.steps == 64


async def test_multibyte_characters_are_never_split(
    client: Client, tokenizer: PreTrainedTokenizerBase
) -> None:
    text = "日本語 🙂 café 🚀"
    byte_tokens = [tokenizer.convert_tokens_to_string([t]) for t in tokenizer.tokenize(text)]
    assert any("\ufffd" in piece for piece in byte_tokens), "the test needs split characters"
    chunks, result = await collect(
        client, [HELLO], extra_create_args=scripted_args(tokenizer, *text)
    )
    assert not any("\ufffd" in chunk for chunk in chunks)
    assert "".join(chunks) == result.content == text


@pytest.mark.parametrize(
    "pieces",
    [
        ("Fine", " ST", "OP", " and more"),
        ("Fine", " S", "T", "O", "P", " and more"),
        ("Fine", " STOP and more"),
        ("Fine S", "TOP and more"),
    ],
)
async def test_stop_string_never_leaks_into_chunks(
    client: Client, tokenizer: PreTrainedTokenizerBase, pieces: tuple[str, ...]
) -> None:
    args = {**scripted_args(tokenizer, *pieces), "stop": ["STOP"]}
    chunks, result = await collect(client, [HELLO], extra_create_args=args)
    assert "".join(chunks) == result.content == "Fine "
    assert not any("S" in chunk for chunk in chunks)
    assert result.finish_reason == "stop"


async def test_text_that_only_starts_like_a_stop_string_is_released(
    client: Client, tokenizer: PreTrainedTokenizerBase
) -> None:
    args = {**scripted_args(tokenizer, "a ST", "ORM came"), "stop": ["STOP"]}
    chunks, result = await collect(client, [HELLO], extra_create_args=args)
    assert "".join(chunks) == result.content == "a STORM came"


async def test_reasoning_is_not_streamed(
    client: Client, tokenizer: PreTrainedTokenizerBase
) -> None:
    args = scripted_args(
        tokenizer, "<", "think", ">", "Plan it.", "</", "think>", "\n\n", "Done", "."
    )
    chunks, result = await collect(client, [HELLO], extra_create_args=args)
    assert "".join(chunks) == result.content == "Done."
    assert result.thought == "Plan it."
    assert not any("think" in chunk or "Plan" in chunk for chunk in chunks)


async def test_closing_the_stream_early_stops_the_model(client: Client) -> None:
    recorder = StepRecorder()
    stream = client.create_stream(
        [HELLO],
        extra_create_args={
            "max_new_tokens": 5000,
            "logits_processor": LogitsProcessorList([recorder]),
        },
    )
    async for item in stream:
        assert isinstance(item, str)
        break
    await stream.aclose()
    steps_at_close = recorder.steps
    result = await client.create([HELLO], extra_create_args={"max_new_tokens": 3})
    assert result.usage.completion_tokens == 3
    assert recorder.steps <= steps_at_close + 1 < 5000


async def test_break_without_aclose_also_stops_the_model(client: Client) -> None:
    recorder = StepRecorder()
    async for _ in client.create_stream(
        [HELLO],
        extra_create_args={
            "max_new_tokens": 5000,
            "logits_processor": LogitsProcessorList([recorder]),
        },
    ):
        break
    # The abandoned generator is finalized by the event loop, which stops the model.
    result = await client.create([HELLO], extra_create_args={"max_new_tokens": 3})
    assert result.usage.completion_tokens == 3
    assert recorder.steps < 5000


async def test_cancelling_the_token_mid_stream(client: Client) -> None:
    token = CancellationToken()
    recorder = StepRecorder()
    received: list[str] = []

    async def consume() -> None:
        async for item in client.create_stream(
            [HELLO],
            cancellation_token=token,
            extra_create_args={
                "max_new_tokens": 5000,
                "logits_processor": LogitsProcessorList([recorder]),
            },
        ):
            assert isinstance(item, str)
            received.append(item)
            if len(received) == 2:
                token.cancel()

    with pytest.raises(asyncio.CancelledError):
        await consume()
    assert len(received) == 2
    steps_after = recorder.steps
    _, result = await collect(client, [HELLO], extra_create_args={"max_new_tokens": 5})
    assert result.usage.completion_tokens == 5
    assert recorder.steps == steps_after < 5000


async def test_stream_events_are_logged(client: Client, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger=EVENT_LOGGER_NAME):
        _, result = await collect(client, [HELLO])
    starts = [r.msg for r in caplog.records if isinstance(r.msg, LLMStreamStartEvent)]
    ends = [r.msg for r in caplog.records if isinstance(r.msg, LLMStreamEndEvent)]
    assert len(starts) == len(ends) == 1
    assert ends[0].kwargs["completion_tokens"] == result.usage.completion_tokens
    assert ends[0].kwargs["response"]["content"] == result.content
