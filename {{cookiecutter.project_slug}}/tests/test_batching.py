"""Concurrent requests decode together, step by step, and each keeps its own results."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from autogen_core import CancellationToken
from autogen_core.models import CreateResult, UserMessage

from {{ cookiecutter.package_name }} import {{ cookiecutter.client_class_name }} as Client
from {{ cookiecutter.package_name }}._core._scheduler import Scheduler

PROMPTS = [
    [UserMessage(content=text, source="user")]
    for text in ("Hi", "Tell me about the weather in Paris.", "Numbers: 1 2 3", "café 日本語 🙂?")
]


@pytest.fixture
def batch_sizes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of requests decoding together at each decoding step."""
    sizes: list[int] = []
    original = Scheduler._decode

    def recording(self: Scheduler) -> None:
        if self._rows:
            sizes.append(len(self._rows))
        original(self)

    monkeypatch.setattr(Scheduler, "_decode", recording)
    return sizes


@pytest.fixture(scope="module")
async def sequential(tiny_model_path: Path) -> list[CreateResult]:
    """Each prompt answered alone by a client that never batches."""
    alone = Client(model_name=str(tiny_model_path), do_sample=False, max_batch_size=1)
    results = [
        await alone.create(prompt, extra_create_args={"max_new_tokens": 10 + 5 * i})
        for i, prompt in enumerate(PROMPTS)
    ]
    await alone.close()
    return results


async def test_greedy_batched_results_equal_unbatched(
    client: Client, sequential: list[CreateResult], batch_sizes: list[int]
) -> None:
    await client.create(PROMPTS[0], extra_create_args={"max_new_tokens": 1})  # model loaded
    batch_sizes.clear()
    results = await asyncio.gather(
        *(
            client.create(prompt, extra_create_args={"max_new_tokens": 10 + 5 * i})
            for i, prompt in enumerate(PROMPTS)
        )
    )
    assert max(batch_sizes) == len(PROMPTS), "requests gathered together decode together"
    for got, expected in zip(results, sequential, strict=True):
        assert got.content == expected.content
        assert got.usage == expected.usage
        assert got.finish_reason == expected.finish_reason == "length"


async def test_each_batched_stream_gets_its_own_tokens(
    client: Client, sequential: list[CreateResult], batch_sizes: list[int]
) -> None:
    async def stream(i: int) -> tuple[str, CreateResult]:
        chunks: list[str] = []
        async for item in client.create_stream(
            PROMPTS[i], extra_create_args={"max_new_tokens": 10 + 5 * i}
        ):
            if isinstance(item, CreateResult):
                return "".join(chunks), item
            chunks.append(item)
        raise AssertionError("no CreateResult")

    outcomes = await asyncio.gather(*(stream(i) for i in range(len(PROMPTS))))
    assert max(batch_sizes) > 1
    for (text, result), expected in zip(outcomes, sequential, strict=True):
        assert text == result.content == expected.content
        assert result.usage == expected.usage


async def test_stop_strings_apply_per_request_in_a_batch(
    client: Client, sequential: list[CreateResult], batch_sizes: list[int]
) -> None:
    stops = [str(expected.content)[3:6] for expected in sequential]
    assert all(stops)
    results = await asyncio.gather(
        *(
            client.create(prompt, extra_create_args={"max_new_tokens": 30, "stop": [stop]})
            for prompt, stop in zip(PROMPTS, stops, strict=True)
        )
    )
    assert max(batch_sizes) > 1
    for result, stop, expected in zip(results, stops, sequential, strict=True):
        assert result.finish_reason == "stop"
        assert result.content == str(expected.content)[: str(expected.content).index(stop)]


async def test_cancelling_one_request_leaves_the_others(
    client: Client, sequential: list[CreateResult], batch_sizes: list[int]
) -> None:
    token = CancellationToken()

    async def cancelled_stream() -> None:
        count = 0
        async for _ in client.create_stream(
            PROMPTS[0], cancellation_token=token, extra_create_args={"max_new_tokens": 500}
        ):
            count += 1
            if count == 2:
                token.cancel()

    others = [
        client.create(PROMPTS[i], extra_create_args={"max_new_tokens": 10 + 5 * i})
        for i in range(1, len(PROMPTS))
    ]
    outcomes = await asyncio.gather(cancelled_stream(), *others, return_exceptions=True)
    assert isinstance(outcomes[0], asyncio.CancelledError)
    assert max(batch_sizes) > 1
    for result, expected in zip(outcomes[1:], sequential[1:], strict=True):
        assert isinstance(result, CreateResult)
        assert result.content == expected.content
        assert result.usage == expected.usage


async def test_requests_with_different_settings_decode_together(
    client: Client, batch_sizes: list[int]
) -> None:
    settings: list[dict[str, Any]] = [
        {"max_new_tokens": 6, "min_new_tokens": 6},
        {"max_new_tokens": 6, "seed": 1, "do_sample": True, "temperature": 0.7},
        {"max_new_tokens": 6, "do_sample": True, "top_k": 5, "seed": 2},
        {"max_new_tokens": 6, "repetition_penalty": 1.3},
    ]
    alone = [
        await client.create(prompt, extra_create_args=args)
        for prompt, args in zip(PROMPTS, settings, strict=True)
    ]
    batch_sizes.clear()
    together = await asyncio.gather(
        *(
            client.create(prompt, extra_create_args=args)
            for prompt, args in zip(PROMPTS, settings, strict=True)
        )
    )
    assert max(batch_sizes) == len(PROMPTS)
    for got, expected in zip(together, alone, strict=True):
        assert got.content == expected.content  # seeded sampling too: each has its own generator
        assert got.usage == expected.usage
    assert together[0].usage.completion_tokens == 6
