"""Benchmark the engine's scheduling against bare transformers, side by side in one process.

Run from the project root::

    python benchmarks/bench_engine.py                       # the offline mid-size model
    python benchmarks/bench_engine.py --model path/or/hub-id --json results.json
    python benchmarks/bench_engine.py --compare-transformers   # also transformers' own engine

Three workloads, each against a bare baseline on the same weights and the same thread:

- staggered arrivals: 8 requests of 64 tokens arriving 50 ms apart, from the first arrival to
  the last answer, against one static batched ``generate`` of all eight (target <= 1.25x);
- short behind long: a 4-token request arriving while a 256-token one generates, against the
  same short request alone (target <= 3x);
- agent conversation: 6 turns on a ~1000-token system prompt, the history growing, 32 new
  tokens a turn, against bare ``generate`` that keeps the previous turn's cache (the limit of
  prefix reuse, target <= 1.10x); ``generate`` processing every prompt again is shown for scale.

Every answer has exactly its number of tokens (``min_new_tokens``), greedy. Runs alternate
(each takes each position in turn) and a ratio is one of mean times over all repeats.
``--compare-transformers`` runs the same workloads through transformers'
``ContinuousBatchingManager`` (its own thread; prefix sharing on) in a separate process, against
the same baselines there.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, cast

import torch
from autogen_core.models import AssistantMessage, LLMMessage, SystemMessage, UserMessage
from transformers import DynamicCache, PreTrainedModel

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from _report import Target, print_targets
from scripting import local_engine
from tiny_models import build_tiny_model

from {{ cookiecutter.package_name }} import {{ cookiecutter.client_class_name }} as Client
from {{ cookiecutter.package_name }}._generation import SupportsGenerate

ARRIVALS = 8
ARRIVAL_GAP_S = 0.05
STAGGERED_TOKENS = 64
LONG_TOKENS = 256
SHORT_TOKENS = 4
TURNS = 6
TURN_TOKENS = 32
SYSTEM_TOKENS = 1000
SENTENCES = [
    "You are a meticulous assistant working inside an automated agent team.",
    "Always check the facts you are given and say when something is unknown.",
    "Prefer short answers, numbered steps, and plain words over jargon.",
    "When a tool can answer the question, call it instead of guessing.",
    "Weather questions go to get_weather; arithmetic goes to the calculator tool.",
    "Keep track of the user's goals across the conversation and refer back to them.",
]


def _exact(tokens: int) -> dict[str, int]:
    return {"max_new_tokens": tokens, "min_new_tokens": tokens}


async def _seconds(run: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await run()
    return time.perf_counter() - started


def _prompts(client: Client) -> list[list[LLMMessage]]:
    topics = ["a robot", "the sea", "a city", "music", "a garden", "trains", "the moon", "bread"]
    return [
        [UserMessage(content=f"Write a short story about {topic}.", source="user")]
        for topic in topics[:ARRIVALS]
    ]


def _system_prompt(client: Client) -> SystemMessage:
    text = ""
    while client.count_tokens([SystemMessage(content=text)]) < SYSTEM_TOKENS:
        text += " ".join(SENTENCES) + "\n"
    return SystemMessage(content=text)


def _ids(client: Client, messages: list[LLMMessage]) -> list[int]:
    renderer = client._renderer
    return renderer.encode(renderer.to_chat(messages)).input_ids


def _static_batch(model: PreTrainedModel, prompts: list[list[int]], pad_token_id: int) -> None:
    width = max(len(ids) for ids in prompts)
    input_ids = torch.full((len(prompts), width), pad_token_id, dtype=torch.long)
    mask = torch.zeros_like(input_ids)
    for row, ids in enumerate(prompts):
        input_ids[row, width - len(ids) :] = torch.tensor(ids)
        mask[row, width - len(ids) :] = 1
    with torch.inference_mode():
        cast(SupportsGenerate, model).generate(
            input_ids=input_ids.to(model.device),
            attention_mask=mask.to(model.device),
            do_sample=False,
            pad_token_id=pad_token_id,
            **_exact(STAGGERED_TOKENS),
        )


def _bare_turns(model: PreTrainedModel, turns: list[list[int]], *, reuse: bool) -> None:
    """Generate every turn; with ``reuse``, keep the cache of the previous turn (cropped to
    what the next prompt shares with it), the limit of what prefix reuse can save."""
    cache: DynamicCache | None = None
    processed: list[int] = []
    for ids in turns:
        arguments: dict[str, Any] = {}
        if reuse and cache is not None:
            shared = 0
            while shared < min(len(ids) - 1, len(processed)) and ids[shared] == processed[shared]:
                shared += 1
            cache.crop(shared - cache.get_seq_length())
            arguments["cache"] = cache
        elif reuse:
            cache = DynamicCache()
            arguments["cache"] = cache
        input_ids = torch.tensor([ids], device=model.device)
        with torch.inference_mode():
            output = cast(SupportsGenerate, model).generate(
                input_ids=input_ids,
                attention_mask=torch.ones_like(input_ids),
                do_sample=False,
                **_exact(TURN_TOKENS),
                **arguments,
            )
        processed = output[0, :-1].tolist()


class Workloads:
    """The three workloads on one client, and their bare baselines on its thread and weights."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.model: PreTrainedModel = local_engine(client).model.result()
        self.prompts = _prompts(client)
        self.system = _system_prompt(client)
        self.conversation: list[list[LLMMessage]] = []

    async def bare(self, function: Callable[..., object], *args: object) -> None:
        await self.client._engine.call(functools.partial(function, self.model, *args))

    async def prepare_conversation(self) -> None:
        """Run the conversation once: every timed run then sends exactly these prompts."""
        messages: list[LLMMessage] = [self.system]
        for turn in range(TURNS):
            messages = [*messages, UserMessage(content=f"Step {turn}: what now?", source="user")]
            self.conversation.append(messages)
            result = await self.client.create(messages, extra_create_args=_exact(TURN_TOKENS))
            messages = [*messages, AssistantMessage(content=str(result.content), source="agent")]

    # -- Staggered arrivals --------------------------------------------------------------------

    async def staggered(self) -> None:
        async def arrive(i: int) -> None:
            await asyncio.sleep(i * ARRIVAL_GAP_S)
            await self.client.create(self.prompts[i], extra_create_args=_exact(STAGGERED_TOKENS))

        await asyncio.gather(*(arrive(i) for i in range(ARRIVALS)))

    async def static_batch(self) -> None:
        prompts = [_ids(self.client, prompt) for prompt in self.prompts]
        pad = self.client._tokenizer.pad_token_id or 0
        await self.bare(_static_batch, prompts, pad)

    # -- Short behind long ---------------------------------------------------------------------

    async def short_alone(self) -> float:
        return await _seconds(
            lambda: self.client.create(self.prompts[1], extra_create_args=_exact(SHORT_TOKENS))
        )

    async def short_behind_long(self) -> float:
        stream = self.client.create_stream(self.prompts[0], extra_create_args=_exact(LONG_TOKENS))
        await anext(stream)  # the long request is generating
        rest = asyncio.ensure_future(_drain(stream))
        short = await self.short_alone()
        await rest
        return short

    # -- Agent conversation --------------------------------------------------------------------

    async def conversation_through_client(self) -> None:
        local_engine(self.client).prefix_cache.clear()  # nothing left from earlier runs
        for messages in self.conversation:
            await self.client.create(messages, extra_create_args=_exact(TURN_TOKENS))

    async def conversation_bare(self, *, reuse: bool) -> None:
        turns = [_ids(self.client, messages) for messages in self.conversation]
        await self.bare(functools.partial(_bare_turns, reuse=reuse), turns)


async def _drain(stream: Any) -> None:
    async for _ in stream:
        pass


async def _alternate(runs: dict[str, Callable[[], Awaitable[float]]], repeats: int) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    for repeat in range(repeats):
        shift = repeat % len(names)
        for name in names[shift:] + names[:shift]:
            times[name].append(await runs[name]())
    return {name: statistics.fmean(values) for name, values in times.items()}


async def _client_part(model_path: str, repeats: int) -> dict[str, Any]:
    client = Client(model_name=model_path, do_sample=False)
    try:
        await client.create([UserMessage(content="warm up", source="u")], extra_create_args=_exact(2))
        work = Workloads(client)
        await work.prepare_conversation()
        await work.static_batch()  # warm up the batched shapes
        timed = await _alternate(
            {
                "staggered_s": lambda: _seconds(work.staggered),
                "static_batch_s": lambda: _seconds(work.static_batch),
                "short_alone_s": work.short_alone,
                "short_behind_long_s": work.short_behind_long,
                "conversation_client_s": lambda: _seconds(work.conversation_through_client),
                "conversation_reuse_limit_s": lambda: _seconds(
                    functools.partial(work.conversation_bare, reuse=True)
                ),
                "conversation_no_reuse_s": lambda: _seconds(
                    functools.partial(work.conversation_bare, reuse=False)
                ),
            },
            repeats,
        )
        prompt_tokens = [client.count_tokens(messages) for messages in work.conversation]
    finally:
        await client.close()
    return {**timed, "conversation_prompt_tokens": prompt_tokens}


def _transformers_part(model_path: str, repeats: int) -> dict[str, Any]:
    """The workloads through transformers' ContinuousBatchingManager, in this process."""
    from transformers import ContinuousBatchingConfig, GenerationConfig

    client = Client(model_name=model_path, do_sample=False)

    async def setup() -> Workloads:
        await client.create([UserMessage(content="warm up", source="u")], extra_create_args=_exact(2))
        work = Workloads(client)
        await work.prepare_conversation()
        return work

    work = asyncio.run(setup())
    prompts = [_ids(client, prompt) for prompt in work.prompts]
    turns = [_ids(client, messages) for messages in work.conversation]
    model = work.model
    asyncio.run(client.close())  # its engine thread is gone: only the manager's runs torch

    manager = cast(Any, model).init_continuous_batching(
        generation_config=GenerationConfig(  # type: ignore[no-untyped-call]
            do_sample=False, max_new_tokens=STAGGERED_TOKENS
        ),
        continuous_batching_config=ContinuousBatchingConfig(allow_block_sharing=True),
    )
    manager.start()

    def run(ids: list[int], tokens: int) -> None:
        request = manager.add_request(ids, max_new_tokens=tokens, eos_token_id=-1)
        while manager.get_result(request_id=request, timeout=60) is None:
            pass

    def staggered() -> float:
        started = time.perf_counter()
        threads = [threading.Thread(target=run, args=(ids, STAGGERED_TOKENS)) for ids in prompts]
        for thread in threads:
            thread.start()
            time.sleep(ARRIVAL_GAP_S)
        for thread in threads:
            thread.join()
        return time.perf_counter() - started

    def conversation() -> float:
        started = time.perf_counter()
        for ids in turns:
            run(ids, TURN_TOKENS)
        return time.perf_counter() - started

    def single() -> float:
        started = time.perf_counter()
        run(prompts[0], STAGGERED_TOKENS)
        return time.perf_counter() - started

    try:
        measured = {
            "cb_staggered_s": statistics.fmean(staggered() for _ in range(repeats)),
            "cb_conversation_s": statistics.fmean(conversation() for _ in range(repeats)),
            "cb_single_s": statistics.fmean(single() for _ in range(repeats)),
        }
    finally:
        manager.stop(block=True)

    def bare_single() -> float:
        started = time.perf_counter()
        _static_batch(model, prompts[:1], client._tokenizer.pad_token_id or 0)
        return time.perf_counter() - started

    measured["bare_static_batch_s"] = statistics.fmean(
        _timed(_static_batch, model, prompts, client._tokenizer.pad_token_id or 0)
        for _ in range(repeats)
    )
    measured["bare_single_s"] = statistics.fmean(bare_single() for _ in range(repeats))
    measured["bare_conversation_reuse_limit_s"] = statistics.fmean(
        _timed(_bare_turns, model, turns, reuse=True) for _ in range(repeats)
    )
    return measured


def _timed(function: Callable[..., object], *args: Any, **kwargs: Any) -> float:
    started = time.perf_counter()
    function(*args, **kwargs)
    return time.perf_counter() - started


def _in_subprocess(part: str, model_path: str, repeats: int) -> Any:
    command = [sys.executable, __file__, "--part", part, "--model", model_path, "--repeats", str(repeats)]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def _report(name: str, r: dict[str, Any]) -> dict[str, Any]:
    turns = r["conversation_prompt_tokens"]
    result = {
        "model": name,
        **r,
        "staggered_vs_static_batch": r["staggered_s"] / r["static_batch_s"],
        "short_behind_long_vs_alone": r["short_behind_long_s"] / r["short_alone_s"],
        "conversation_vs_reuse_limit": r["conversation_client_s"] / r["conversation_reuse_limit_s"],
        "conversation_no_reuse_vs_reuse_limit": (
            r["conversation_no_reuse_s"] / r["conversation_reuse_limit_s"]
        ),
    }
    print(f"\n{name}")
    rows = [
        (f"{ARRIVALS} staggered arrivals", r["staggered_s"], f"static batch {r['static_batch_s']:.3f} s"),
        ("short behind long", r["short_behind_long_s"], f"alone {r['short_alone_s']:.3f} s"),
        (
            f"conversation ({turns[0]}-{turns[-1]} tokens)",
            r["conversation_client_s"],
            f"reuse limit {r['conversation_reuse_limit_s']:.3f} s, "
            f"no reuse {r['conversation_no_reuse_s']:.3f} s",
        ),
    ]
    for label, seconds, baseline in rows:
        print(f"  {label:<34} {seconds:8.3f} s   ({baseline})")
    targets = [
        Target("staggered arrivals vs static batch", result["staggered_vs_static_batch"], "<=", 1.25),
        Target("short behind long vs alone", result["short_behind_long_vs_alone"], "<=", 3),
        Target("conversation vs prefix-reuse limit", result["conversation_vs_reuse_limit"], "<=", 1.10),
    ]
    if "cb" in r:
        cb = r["cb"]
        result["transformers_cb"] = {
            "staggered_vs_static_batch": cb["cb_staggered_s"] / cb["bare_static_batch_s"],
            "single_vs_bare": cb["bare_single_s"] / cb["cb_single_s"],
            "conversation_vs_reuse_limit": (
                cb["cb_conversation_s"] / cb["bare_conversation_reuse_limit_s"]
            ),
        }
        print("  transformers ContinuousBatchingManager, same workloads (its own process):")
        for key, value in result["transformers_cb"].items():
            print(f"    {key:<32} {value:.3f}x")
    result["targets"] = print_targets(targets)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--model", help="model id or path (default: the offline mid-size model)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--compare-transformers", action="store_true")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--part", choices=["client", "transformers"], help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)

    if arguments.part == "client":
        print(json.dumps(asyncio.run(_client_part(arguments.model, arguments.repeats))))
        return 0
    if arguments.part == "transformers":
        print(json.dumps(_transformers_part(arguments.model, arguments.repeats)))
        return 0

    with tempfile.TemporaryDirectory() as scratch:
        if arguments.model:
            name, path = arguments.model, arguments.model
        else:
            name = "mid-size (hidden 512, 8 layers)"
            path = str(build_tiny_model(Path(scratch) / "mid", hidden_size=512, num_layers=8))
        measured = _in_subprocess("client", path, arguments.repeats)
        if arguments.compare_transformers:
            measured["cb"] = _in_subprocess("transformers", path, arguments.repeats)
        result = _report(name, measured)
    if arguments.json:
        arguments.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
