"""The engine: continuous scheduling, isolation of requests, prefix reuse, prompt exit."""

from __future__ import annotations

import asyncio
import gc
import random
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from autogen_core import CancellationToken
from autogen_core.models import (
    AssistantMessage,
    CreateResult,
    LLMMessage,
    SystemMessage,
    UserMessage,
)
from mixing import PROMPTS, alone, assert_good, good_ones
from scripting import HELLO, StepRecorder, scripted_args, start_long_request
from tiny_models import build_tiny_gpt2
from transformers import AutoTokenizer, LogitsProcessorList, PreTrainedTokenizerBase

from {{ cookiecutter.package_name }} import ClientClosedError
from {{ cookiecutter.package_name }} import {{ cookiecutter.client_class_name }} as Client
from {{ cookiecutter.package_name }}._core._generation import GenerationOutput, GenerationRequest
from {{ cookiecutter.package_name }}._autogen._messages import to_chat_messages
from {{ cookiecutter.package_name }}._core._prefix_cache import PrefixCache

SYSTEM = SystemMessage(
    content="You are a careful assistant. Answer briefly. Use the tools when they help. " * 8
)


@pytest.fixture(scope="module")
def tokenizer(tiny_model_path: Path) -> PreTrainedTokenizerBase:
    return AutoTokenizer.from_pretrained(tiny_model_path)


# -- Continuous scheduling ---------------------------------------------------------------------


async def test_staggered_requests_equal_each_alone(
    client: Client, tiny_model_path: Path, tokenizer: PreTrainedTokenizerBase
) -> None:
    expected = list(alone(tiny_model_path, tokenizer))

    async def later(i: int) -> CreateResult:
        await asyncio.sleep(0.01 * i)  # each joins the running ones at a different step
        return await client.create(PROMPTS[i], extra_create_args={"max_new_tokens": 10 + 5 * i})

    results = await asyncio.gather(*(later(i) for i in range(len(PROMPTS))))
    for result, ids in zip(results, expected, strict=True):
        assert result.content == tokenizer.decode(ids, skip_special_tokens=True)
        assert result.usage.completion_tokens == len(ids)


async def test_a_short_request_does_not_wait_for_a_long_one(client: Client) -> None:
    long, recorder = await start_long_request(client)
    steps_before = recorder.steps
    short = await client.create([HELLO], extra_create_args={"max_new_tokens": 4})
    assert short.usage.completion_tokens == 4
    assert not long.done(), "the short request came back while the long one goes on"
    assert recorder.steps - steps_before <= 4 + 3  # its 4 steps, shared with the long one
    long.cancel()
    with pytest.raises(asyncio.CancelledError):
        await long


@pytest.mark.parametrize("how", ["token", "wait_for", "break"])
async def test_cancelling_beside_a_long_request_frees_the_caller_at_once(
    client: Client, how: str
) -> None:
    long, long_steps = await start_long_request(client)
    started = asyncio.Event()
    loop = asyncio.get_running_loop()
    mine = StepRecorder(lambda step: step == 2 and loop.call_soon_threadsafe(started.set))
    args = {"max_new_tokens": 5000, "logits_processor": LogitsProcessorList([mine])}
    token = CancellationToken()
    if how == "break":
        async for _ in client.create_stream([HELLO], extra_create_args=args):
            break
    else:
        task = asyncio.create_task(
            client.create([HELLO], cancellation_token=token, extra_create_args=args)
        )
        await started.wait()
        steps_at_cancel = long_steps.steps
        if how == "token":
            token.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        else:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(task, 0)
        assert long_steps.steps - steps_at_cancel <= 2, "freed within a step or two"
    steps_after = mine.steps
    await client.create([HELLO], extra_create_args={"max_new_tokens": 3})
    assert mine.steps <= steps_after + 2 < 5000, "the cancelled request stopped"
    assert not long.done()
    long.cancel()
    with pytest.raises(asyncio.CancelledError):
        await long


async def test_a_request_running_alone_does_not_block_the_others(client: Client) -> None:
    beams = asyncio.create_task(
        client.create([HELLO], extra_create_args={"num_beams": 2, "max_new_tokens": 400, "min_new_tokens": 400})
    )
    await asyncio.sleep(0.05)
    short = await client.create(PROMPTS[1], extra_create_args={"max_new_tokens": 4})
    assert short.usage.completion_tokens == 4
    assert not beams.done(), "the short request ran between the beam search's steps"
    beams.cancel()
    with pytest.raises(asyncio.CancelledError):
        await beams


# -- Isolation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"num_beams": "abc"}, "num_beams"),
        ({"stop": ["\ud800"]}, "stop"),
        ({"num_beams": 2, "return_dict_in_generate": True}, "return_dict_in_generate"),
        ({"temperature": -1.0}, "temperature"),
        ({"top_k": "many"}, "top_k"),
    ],
)
async def test_a_bad_request_fails_alone_before_it_starts(
    client: Client,
    tiny_model_path: Path,
    tokenizer: PreTrainedTokenizerBase,
    bad: dict[str, Any],
    message: str,
) -> None:
    good = await good_ones(client)
    with pytest.raises(ValueError, match=message):
        await client.create([HELLO], extra_create_args=bad)
    await assert_good(good, tiny_model_path, tokenizer)


async def test_a_failing_processor_ends_its_own_request_only(
    client: Client, tiny_model_path: Path, tokenizer: PreTrainedTokenizerBase
) -> None:
    def explode(step: int) -> None:
        if step == 3:
            raise RuntimeError("this request's processor exploded")

    good = await good_ones(client)
    bad = StepRecorder(explode)
    with pytest.raises(RuntimeError, match="exploded"):
        await client.create(
            [HELLO], extra_create_args={"logits_processor": LogitsProcessorList([bad])}
        )
    await assert_good(good, tiny_model_path, tokenizer)


async def test_a_failing_token_callback_ends_its_own_request_only(
    client: Client, tiny_model_path: Path, tokenizer: PreTrainedTokenizerBase
) -> None:
    def explode(token_ids: list[int]) -> None:
        raise RuntimeError("callback exploded")

    good = await good_ones(client)
    request = GenerationRequest(
        input_ids=[*tokenizer.encode("Hello")], max_new_tokens=50, settings=client._chat.settings
    )
    generation = client._chat.model.engine.submit(request, explode)
    with pytest.raises(RuntimeError, match="callback exploded"):
        await generation.result()
    await assert_good(good, tiny_model_path, tokenizer)


async def test_prompt_lookup_requests_run_together_without_failing(client: Client) -> None:
    lookup = {"prompt_lookup_num_tokens": 3, "max_new_tokens": 8}
    results = await asyncio.gather(
        *(client.create(prompt, extra_create_args=lookup) for prompt in PROMPTS[:2])
    )
    assert all(result.usage.completion_tokens > 0 for result in results)


async def test_beam_search_with_return_dict_is_refused_clearly(client: Client) -> None:
    with pytest.raises(ValueError, match=r"return_dict_in_generate.*the client"):
        await client.create(
            [HELLO], extra_create_args={"num_beams": 2, "return_dict_in_generate": True}
        )


def stream_on_a_loop_that_closes(client: Client, first_chunk: threading.Event) -> None:
    """In another thread: start a stream, take one chunk, then close that loop for good."""
    loop = asyncio.new_event_loop()
    stream = client.create_stream([HELLO], extra_create_args={"max_new_tokens": 2000})

    async def one_chunk() -> None:
        async for _ in stream:
            first_chunk.set()
            return

    loop.run_until_complete(one_chunk())
    loop.close()  # the stream's generator is still held: nobody will close it


async def test_a_stream_whose_loop_closed_does_not_hurt_its_batch_mates(
    tiny_model_path: Path, tokenizer: PreTrainedTokenizerBase
) -> None:
    client = Client(model_name=str(tiny_model_path), do_sample=False)
    try:
        first_chunk = threading.Event()
        thread = threading.Thread(
            target=stream_on_a_loop_that_closes, args=(client, first_chunk), daemon=True
        )
        thread.start()
        await asyncio.to_thread(first_chunk.wait, 60)
        good = await good_ones(client)
        await assert_good(good, tiny_model_path, tokenizer)
        thread.join(60)
    finally:
        await client.close()


async def test_gpt2_long_and_short_prompts_together(tmp_path: Path) -> None:
    """Each row keeps its own positions: a long prompt's budget never spills onto another's."""
    path = build_tiny_gpt2(tmp_path / "gpt2", n_positions=2048)
    client = Client(model_name=str(path), do_sample=False, max_new_tokens=64)
    try:
        words = 500
        while client.count_tokens([UserMessage(content="a b " * words, source="u")]) < 2036:
            words += 1
        long = [UserMessage(content="a b " * words, source="u")]
        room = client.remaining_tokens(long)
        assert 0 < room < 64
        results = await asyncio.gather(client.create(long), client.create([HELLO]))
        assert results[0].usage.completion_tokens <= room
        assert results[1].usage.completion_tokens > 0
    finally:
        await client.close()


async def test_stop_strings_are_matched_in_the_answer_only(
    client: Client, tokenizer: PreTrainedTokenizerBase
) -> None:
    # The ChatML prompt ends with "\n"; an answer that starts with "-" must not stop there.
    prompt = client._chat.model.renderer.encode([{"role": "user", "content": "x"}]).input_ids
    assert str(tokenizer.decode(prompt)).endswith("\n")
    result = await client.create(
        [HELLO],
        extra_create_args={"stop": ["\n-"], **scripted_args(tokenizer, "- one", "\n", "- two")},
    )
    assert result.content == "- one"
    assert result.finish_reason == "stop"


# -- Prefix reuse ------------------------------------------------------------------------------


def conversation(turns: int) -> list[list[LLMMessage]]:
    """The prompts of an agent conversation, each the last one plus an answer and a question."""
    messages: list[LLMMessage] = [SYSTEM]
    prompts = []
    for turn in range(turns):
        messages = [*messages, UserMessage(content=f"Question {turn}: what next?", source="user")]
        prompts.append(messages)
        messages = [*messages, AssistantMessage(content=f"Answer {turn}.", source="assistant")]
    return prompts


async def test_prefix_reuse_gives_the_same_greedy_answers(
    tiny_model_path: Path, outputs: list[GenerationOutput]
) -> None:
    prompts = conversation(4)
    answers = {}
    for budget in (0, 64):
        client = Client(
            model_name=str(tiny_model_path),
            do_sample=False,
            max_new_tokens=12,
            prefix_cache_mb=budget,
        )
        try:
            answers[budget] = [(await client.create(prompt)).content for prompt in prompts]
            lengths = [client.count_tokens(prompt) for prompt in prompts]
        finally:
            await client.close()
    assert answers[64] == answers[0]
    without, with_reuse = outputs[:4], outputs[4:]
    assert [output.reused_prompt_tokens for output in without] == [0, 0, 0, 0]
    assert with_reuse[0].reused_prompt_tokens == 0
    for turn in range(1, 4):  # each turn reuses at least the previous turn's prompt
        assert with_reuse[turn].reused_prompt_tokens >= lengths[turn - 1] - 1


async def test_reused_prefix_is_not_processed_again(
    tiny_model_path: Path, outputs: list[GenerationOutput]
) -> None:
    client = Client(model_name=str(tiny_model_path), do_sample=False, max_new_tokens=4)
    try:
        first, second = conversation(2)
        await client.create(first)
        result = await client.create(second)
        # What the two prompts share is reused: only the answer and the question are processed.
        renderer = client._chat.model.renderer
        ids = [renderer.encode(to_chat_messages(m)).input_ids for m in (first, second)]
        shared = next(i for i, (a, b) in enumerate(zip(*ids, strict=False)) if a != b)
        assert shared >= len(ids[0]) - 2
        assert outputs[-1].reused_prompt_tokens == shared
        # Usage still counts the whole prompt: it is what the model attended to.
        assert result.usage.prompt_tokens == client.count_tokens(second)
    finally:
        await client.close()


def layers_of(tokens: int, layers: int = 2) -> list[tuple[torch.Tensor, torch.Tensor] | None]:
    """Keys and values of ``tokens`` tokens (1 head of 4 floats: 16 bytes a token a tensor)."""
    return [(torch.full((1, 1, tokens, 4), float(i)), torch.zeros((1, 1, tokens, 4))) for i in range(layers)]


def test_prefix_cache_finds_the_longest_shared_prefix() -> None:
    cache = PrefixCache(budget_bytes=10_000)
    cache.store([1, 2, 3, 4], layers_of(4))
    cache.store([1, 2, 9, 9, 9], layers_of(5))
    found, layers = cache.longest([1, 2, 3, 4, 5, 6])
    assert found == 4
    assert all(kv is not None and kv[0].shape[2] == 4 for kv in layers)
    assert cache.longest([1, 2, 9, 9])[0] == 3, "the last token is always processed again"
    assert cache.longest([7, 8])[0] == 0
    assert cache.longest([1])[0] == 0


def test_prefix_cache_keeps_within_its_budget_evicting_the_least_recently_used() -> None:
    per_token = 2 * 2 * 16  # 2 layers, keys and values, 16 bytes each
    cache = PrefixCache(budget_bytes=25 * per_token)
    cache.store([1] * 10, layers_of(10))
    cache.store([2] * 10, layers_of(10))
    cache.longest([1] * 10 + [0])  # [1...] is now the most recently used
    cache.store([3] * 10, layers_of(10))  # does not fit beside both: [2...] goes
    assert cache.nbytes <= cache.budget_bytes
    assert cache.longest([1] * 10 + [0])[0] == 10
    assert cache.longest([2] * 10 + [0])[0] == 0
    assert cache.longest([3] * 10 + [0])[0] == 10
    cache.store([4] * 30, layers_of(30))  # alone larger than the budget: not kept
    assert cache.longest([4] * 30 + [0])[0] == 0
    assert cache.nbytes <= cache.budget_bytes


def test_prefix_cache_keeps_one_entry_for_a_growing_conversation() -> None:
    cache = PrefixCache(budget_bytes=10_000)
    cache.store([1, 2, 3], layers_of(3))
    cache.store([1, 2, 3, 4, 5], layers_of(5))  # holds the first: it goes
    cache.store([1, 2], layers_of(2))  # already held
    assert len(cache) == 1
    assert cache.nbytes == 5 * 2 * 2 * 16


# -- Every future resolves ---------------------------------------------------------------------


KINDS = (
    "good", "stream", "token", "wait_for", "bad", "beams", "explode",
    "lookup", "exit", "timed", "contrastive",
)


class RandomMix:
    """Random requests of every kind against one client; each says how it ended."""

    def __init__(self, client: Client, rng: random.Random, expected: list[str]) -> None:
        self.client = client
        self.rng = rng
        self.expected = expected
        self.closed = False

    async def close_later(self) -> None:
        await asyncio.sleep(0.3 + self.rng.random())
        self.closed = True
        await self.client.close()

    async def request(self, i: int) -> str:
        await asyncio.sleep(self.rng.random() * 0.2)
        kind = self.rng.choice(KINDS)
        try:
            return await self._run(kind, i % len(PROMPTS))
        except (asyncio.CancelledError, TimeoutError):
            assert kind in ("token", "wait_for") or self.closed
            return "cancelled"
        except ClientClosedError:
            assert self.closed
            return "closed"
        except ValueError:
            assert kind in ("bad", "contrastive")
            return "refused"
        except RuntimeError:
            assert kind in ("explode", "exit")
            return "failed"

    async def _run(self, kind: str, p: int) -> str:
        client, args = self.client, {"max_new_tokens": 10 + 5 * p}
        if kind == "good":
            result = await client.create(PROMPTS[p], extra_create_args=args)
            assert result.content == self.expected[p]
        elif kind == "stream":
            text = ""
            async for item in client.create_stream(PROMPTS[p], extra_create_args=args):
                if isinstance(item, str):
                    text += item
                    if self.rng.random() < 0.3:
                        return "broke off"
            assert text == self.expected[p]
        elif kind in ("token", "wait_for"):
            token = CancellationToken()
            task = asyncio.create_task(
                client.create(
                    PROMPTS[p], cancellation_token=token, extra_create_args={"max_new_tokens": 300}
                )
            )
            await asyncio.sleep(self.rng.random() * 0.05)
            if kind == "token":
                token.cancel()
                await task
            else:
                await asyncio.wait_for(task, 0)
        elif kind == "bad":
            await client.create(PROMPTS[p], extra_create_args={"num_beams": "abc"})
        elif kind == "beams":
            await client.create(PROMPTS[p], extra_create_args={"num_beams": 2, "max_new_tokens": 6})
        elif kind == "lookup":
            result = await client.create(
                PROMPTS[p], extra_create_args={**args, "prompt_lookup_num_tokens": 2}
            )
            assert result.content == self.expected[p]
        elif kind == "exit":
            processor = StepRecorder(exit_at_step_3)
            await client.create(
                PROMPTS[p], extra_create_args={"logits_processor": LogitsProcessorList([processor])}
            )
        elif kind == "timed":
            slow = LogitsProcessorList([StepRecorder(lambda _: time.sleep(0.005))])
            result = await client.create(
                PROMPTS[p],
                extra_create_args={"max_time": 0.01, "max_new_tokens": 300, "logits_processor": slow},
            )
            assert result.usage.completion_tokens < 300  # 300 steps take 1.5 s at least
        elif kind == "contrastive":
            await client.create(PROMPTS[p], extra_create_args={"penalty_alpha": 0.5, "top_k": 4})
        else:
            processor = StepRecorder(explode_at_step_3)
            await client.create(
                PROMPTS[p], extra_create_args={"logits_processor": LogitsProcessorList([processor])}
            )
        return kind


def explode_at_step_3(step: int) -> None:
    if step == 3:
        raise RuntimeError("boom")


def exit_at_step_3(step: int) -> None:
    if step == 3:
        raise SystemExit("leaving")


@pytest.mark.parametrize("seed", [0, 1, 2])
async def test_random_mix_of_requests_cancellations_and_close_all_resolve(
    tiny_model_path: Path, tokenizer: PreTrainedTokenizerBase, seed: int
) -> None:
    expected = [
        str(tokenizer.decode(ids, skip_special_tokens=True))
        for ids in alone(tiny_model_path, tokenizer)
    ]
    rng = random.Random(seed)
    client = Client(
        model_name=str(tiny_model_path), do_sample=False, max_batch_size=rng.choice([1, 3, 8])
    )
    mix = RandomMix(client, rng, expected)
    closer = asyncio.ensure_future(mix.close_later()) if seed == 2 else None
    outcomes = await asyncio.wait_for(asyncio.gather(*(mix.request(i) for i in range(24))), 300)
    assert len(outcomes) == 24
    assert set(outcomes) - {"cancelled", "closed", "refused", "failed", "broke off", *KINDS} == set()
    if closer is not None:
        await closer
    await client.close()


async def test_a_client_dropped_without_close_stops_its_thread(tiny_model_path: Path) -> None:
    before = set(threading.enumerate())
    # A prefix cache size no other test uses: a model of its own, not one shared with them.
    client = Client(model_name=str(tiny_model_path), max_new_tokens=2, prefix_cache_mb=3)
    await client.create([HELLO])
    threads = set(threading.enumerate()) - before
    assert threads
    del client
    gc.collect()
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads)


# -- Exit --------------------------------------------------------------------------------------

EXIT_SCRIPT = """
import asyncio, sys, threading, pathlib
from transformers import LogitsProcessor
from autogen_core.models import UserMessage
from {{ cookiecutter.package_name }} import {{ cookiecutter.client_class_name }} as Client

model, steps_file, from_thread = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3] == "yes"
alone = dict(num_beams=2) if sys.argv[4] == "alone" else {}


class Count(LogitsProcessor):
    steps = 0

    def __call__(self, ids, scores):
        self.steps += 1
        steps_file.write_text(str(self.steps))
        if self.steps == 3:
            started.set()
        return scores


started = threading.Event()
client = Client(model_name=model, do_sample=False)


async def request():
    await client.create(
        [UserMessage(content="Hi", source="u")],
        extra_create_args=dict(max_new_tokens=100000, logits_processor=[Count()], **alone),
    )


async def main():
    asyncio.get_running_loop().create_task(request())
    await asyncio.to_thread(started.wait)


if from_thread:
    threading.Thread(target=asyncio.run, args=(request(),), daemon=True).start()
    started.wait()
else:
    asyncio.run(main())
print("leaving", flush=True)
"""


@pytest.mark.parametrize("how", ["batched", "alone"])
@pytest.mark.parametrize("from_thread", [False, True], ids=["main-thread", "daemon-thread"])
def test_a_process_with_requests_in_flight_exits_promptly(
    tiny_model_path: Path, tmp_path: Path, from_thread: bool, how: str
) -> None:
    steps_file = tmp_path / "steps"
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            EXIT_SCRIPT,
            str(tiny_model_path),
            str(steps_file),
            "yes" if from_thread else "no",
            how,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr  # not killed at the end (SIGABRT)
    assert "leaving" in completed.stdout
    steps = int(steps_file.read_text())
    assert steps < 2000, f"the model went on for {steps} steps after the script ended"
