"""Results are the same on both engines: the model in this process, and a vLLM server.

Each test runs once per engine (``engine_client``); the server's runs are skipped where there
is no vLLM (see ``vllm_server.py``).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from autogen_core import CancellationToken
from autogen_core.models import CreateResult, UserMessage
from reference import bare_generate, load_model, template_ids
from transformers import AutoTokenizer, PreTrainedTokenizerBase
from vllm_server import running_requests

from {{ cookiecutter.package_name }} import CapabilityError
from {{ cookiecutter.package_name }} import {{ cookiecutter.client_class_name }} as Client
from {{ cookiecutter.package_name }}._core._remote_engine import ServerError

HELLO = UserMessage(content="Hello! How are you today?", source="user")
PROMPTS = [
    [UserMessage(content=text, source="user")]
    for text in ("Hi", "Tell me about the weather in Paris.", "Numbers: 1 2 3", "café 日本語 🙂?")
]


@pytest.fixture(scope="module")
def tokenizer(tiny_model_path: Path) -> PreTrainedTokenizerBase:
    return AutoTokenizer.from_pretrained(tiny_model_path)


@pytest.fixture(scope="module")
def reference(tiny_model_path: Path, tokenizer: PreTrainedTokenizerBase) -> list[list[int]]:
    """Bare greedy ``generate``: 24 new tokens for HELLO, then 10 + 5 i for each of PROMPTS."""
    model = load_model(tiny_model_path)
    answers = []
    for i, messages in enumerate([[HELLO], *PROMPTS]):
        ids = template_ids(tokenizer, [{"role": "user", "content": messages[0].content}])
        answers.append(bare_generate(model, ids, max_new_tokens=24 if i == 0 else 5 + 5 * i))
    return answers


def on_server(client: Client) -> bool:
    return client._config.base_url is not None


async def settled(client: Client) -> None:
    """Wait until the server runs no request (an aborted one may linger for a moment); the
    batch a request shares changes its numerics, and so a sampled answer."""
    if on_server(client):
        for _ in range(100):
            if running_requests(str(client._config.base_url)) == 0:
                return
            await asyncio.sleep(0.1)
        raise AssertionError("the server still runs requests")


async def test_create_matches_bare_generate(
    engine_client: Client, tokenizer: PreTrainedTokenizerBase, reference: list[list[int]]
) -> None:
    result = await engine_client.create([HELLO])
    assert result.content == tokenizer.decode(reference[0], skip_special_tokens=True)
    assert result.usage.prompt_tokens == engine_client.count_tokens([HELLO])
    assert result.usage.completion_tokens == 24
    assert result.finish_reason == "length"


async def test_stream_equals_create(engine_client: Client) -> None:
    created = await engine_client.create([HELLO])
    chunks: list[str] = []
    async for item in engine_client.create_stream([HELLO]):
        if isinstance(item, CreateResult):
            assert "".join(chunks) == item.content == created.content
            assert item.usage == created.usage
        else:
            chunks.append(item)
    assert len(chunks) > 1


async def test_an_end_token_gives_stop_and_is_counted(
    engine_client: Client, reference: list[list[int]]
) -> None:
    end = reference[0][5]  # the sixth token of the greedy answer ends it
    result = await engine_client.create([HELLO], extra_create_args={"eos_token_id": end})
    assert result.finish_reason == "stop"
    assert result.usage.completion_tokens == reference[0].index(end) + 1


async def test_stop_strings_cut_the_answer(
    engine_client: Client, tokenizer: PreTrainedTokenizerBase, reference: list[list[int]]
) -> None:
    full = str(tokenizer.decode(reference[0], skip_special_tokens=True))
    # Three characters that stand in the answer as they are, not made up of broken bytes.
    stop = next(full[i : i + 3] for i in range(4, len(full)) if "\ufffd" not in full[i : i + 3])
    result = await engine_client.create([HELLO], extra_create_args={"stop": [stop]})
    assert result.content == full[: full.index(stop)]
    assert result.finish_reason == "stop"
    assert result.usage.completion_tokens < 24


async def test_concurrent_requests_each_get_their_own_answer(
    engine_client: Client, tokenizer: PreTrainedTokenizerBase, reference: list[list[int]]
) -> None:
    results = await asyncio.gather(
        *(
            engine_client.create(prompt, extra_create_args={"max_new_tokens": 10 + 5 * i})
            for i, prompt in enumerate(PROMPTS)
        )
    )
    for result, ids in zip(results, reference[1:], strict=True):
        assert result.usage.completion_tokens == len(ids)
        assert result.finish_reason == "length"
        if not on_server(engine_client):  # vLLM batches its own way: the last decimals differ
            assert result.content == tokenizer.decode(ids, skip_special_tokens=True)


async def test_seeded_sampling_repeats(engine_client: Client) -> None:
    sampling = {"do_sample": True, "temperature": 0.9, "seed": 5}
    answers = []
    for seed in (5, 5, 6):
        await settled(engine_client)
        answers.append(await engine_client.create([HELLO], extra_create_args={**sampling, "seed": seed}))
    first, second, other = answers
    assert first.content == second.content
    assert other.content != first.content


async def test_cancelling_stops_the_generation(engine_client: Client) -> None:
    token = CancellationToken()
    before = engine_client.total_usage()

    async def cancel_after_three_chunks() -> None:
        chunks = 0
        async for _ in engine_client.create_stream(
            [HELLO], cancellation_token=token, extra_create_args={"max_new_tokens": 1800}
        ):
            chunks += 1
            if chunks == 3:
                token.cancel()

    with pytest.raises(asyncio.CancelledError):
        await cancel_after_three_chunks()
    generated = engine_client.total_usage().completion_tokens - before.completion_tokens
    assert 3 <= generated < 1800
    await settled(engine_client)  # the server aborted it


async def test_breaking_out_of_a_stream_stops_the_generation(engine_client: Client) -> None:
    async for _ in engine_client.create_stream([HELLO], extra_create_args={"max_new_tokens": 1800}):
        break
    result = await engine_client.create([HELLO], extra_create_args={"max_new_tokens": 2})
    assert result.usage.completion_tokens == 2
    await settled(engine_client)  # the server aborted it


# -- The server's own errors -------------------------------------------------------------------


def server_client(tiny_model_path: Path, base_url: str, **fields: object) -> Client:
    return Client(model_name=str(tiny_model_path), base_url=base_url, **fields)


async def test_an_unreachable_server_is_a_clear_error(tiny_model_path: Path) -> None:
    client = server_client(
        tiny_model_path, "http://127.0.0.1:9/v1", max_retries=1, connect_timeout=1.0
    )
    with pytest.raises(ServerError, match=r"127\.0\.0\.1:9/v1.*cannot be reached"):
        await client.create([HELLO])
    await client.close()


async def test_a_model_the_server_does_not_serve_is_a_clear_error(
    tiny_model_path: Path, vllm_url: str
) -> None:
    client = server_client(tiny_model_path, vllm_url, served_model_name="no-such-model")
    with pytest.raises(ServerError, match=r"no-such-model.*not served"):
        await client.create([HELLO])
    await client.close()


async def test_a_prompt_longer_than_the_server_takes_is_a_clear_error(
    tiny_model_path: Path, vllm_url: str
) -> None:
    client = server_client(tiny_model_path, vllm_url, context_window=8192)
    long = [UserMessage(content="a b " * 1500, source="user")]
    with pytest.raises(ServerError, match=r"does not fit.*context_window"):
        await client.create(long)
    await client.close()


async def test_what_a_server_cannot_do_is_refused_before_it_starts(
    tiny_model_path: Path,
) -> None:
    client = server_client(tiny_model_path, "http://127.0.0.1:9/v1")
    with pytest.raises(CapabilityError, match="num_beams"):
        await client.create([HELLO], extra_create_args={"num_beams": 2})
    await client.close()


def test_server_config_round_trips_without_the_key(
    tiny_model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_VLLM_KEY", "secret-key")
    client = server_client(
        tiny_model_path,
        "http://127.0.0.1:9/v1",
        api_key_env="MY_VLLM_KEY",
        served_model_name="tiny",
        max_retries=5,
    )
    dumped = client.dump_component()
    assert "secret-key" not in dumped.model_dump_json()
    loaded = Client.load_component(dumped)
    assert loaded._config == client._config
    assert os.environ["MY_VLLM_KEY"] == "secret-key"


def test_local_fields_are_refused_with_a_server(tiny_model_path: Path) -> None:
    with pytest.raises(ValueError, match="device do not apply to a vLLM server"):
        server_client(tiny_model_path, "http://127.0.0.1:9/v1", device="cpu")
    with pytest.raises(ValueError, match="max_retries do not apply to the local model"):
        Client(model_name=str(tiny_model_path), max_retries=2)
