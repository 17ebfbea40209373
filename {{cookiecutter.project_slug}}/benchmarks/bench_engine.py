"""Benchmark the engine's scheduling against bare transformers, side by side in one process.

Run from the project root::

    python benchmarks/bench_engine.py                       # the offline mid-size model
    python benchmarks/bench_engine.py --model path/or/hub-id --json results.json
    python benchmarks/bench_engine.py --real-size --workloads batching --new-tokens 32
    python benchmarks/bench_engine.py --compare-transformers   # also transformers' own engine

``--real-size`` builds, offline, a random-weight model with Qwen3-0.6B's architecture (hidden
1024, 28 layers, 16 heads, 8 key-value heads, a vocabulary of 151,936) and the tiny models'
tokenizer. ``--device cuda --dtype bfloat16`` runs the client (and so the baselines) on a GPU.

The workloads, each against a bare baseline on the same weights and the same thread
(``--workloads`` picks some: ``batching`` is the first three):

- a single request of 64 tokens against bare ``generate`` of the same prompt (target <= 1.05x);
- 8 requests of 64 tokens gathered at once against one static batched ``generate`` of all
  eight (target <= 1.15x);
- staggered arrivals: 8 requests of 64 tokens arriving 50 ms apart, from the first arrival to
  the last answer, against one static batched ``generate`` of all eight (target <= 1.25x);
- short behind long: a 4-token request arriving while a 256-token one generates, against the
  same short request alone (target <= 3x);
- agent conversation: 6 turns on a ~1000-token system prompt, the history growing, 32 new
  tokens a turn, against bare ``generate`` that keeps the previous turn's cache (the limit of
  prefix reuse, target <= 1.10x); ``generate`` processing every prompt again is shown for scale.

Every answer has exactly its number of tokens (``min_new_tokens``; 64 or ``--new-tokens``
for the first three workloads), greedy. Runs alternate
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
from transformers import AutoConfig, AutoModelForCausalLM, DynamicCache, PreTrainedModel

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from _report import Target, print_targets
from scripting import local_engine
from tiny_models import build_tiny_model, save_greedy, train_tokenizer

from {{ cookiecutter.package_name }} import {{ cookiecutter.client_class_name }} as Client
from {{ cookiecutter.package_name }}._core._generation import SupportsGenerate
from {{ cookiecutter.package_name }}._core._tiny_models import CHAT_TEMPLATE
from {{ cookiecutter.package_name }}._autogen._messages import to_chat_messages

ARRIVALS = 8
ARRIVAL_GAP_S = 0.05
STAGGERED_TOKENS = 64
"""New tokens of each request of the batching workloads (``--new-tokens``)."""
WORKLOADS = ("single", "gathered", "staggered", "short_behind_long", "conversation")
BATCHING = ("single", "gathered", "staggered")
QWEN3_06B = {
    "hidden_size": 1024,
    "intermediate_size": 3072,
    "num_hidden_layers": 28,
    "num_attention_heads": 16,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "vocab_size": 151_936,
    "max_position_embeddings": 40_960,
    "tie_word_embeddings": True,
}
"""Qwen3-0.6B's architecture (its ``config.json``)."""
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


def build_real_size(path: Path) -> Path:
    """A random-weight model with Qwen3-0.6B's architecture, with the tiny models' tokenizer
    (ids past its vocabulary decode to nothing; every answer has its exact length anyway)."""
    tokenizer = train_tokenizer(512)
    tokenizer.chat_template = CHAT_TEMPLATE
    config = AutoConfig.for_model(
        "qwen3",
        **QWEN3_06B,
        bos_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)  # type: ignore[no-untyped-call]
    return save_greedy(model, tokenizer, tokenizer, path)


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
    renderer = client._chat.model.renderer
    return renderer.encode(renderer.to_chat(to_chat_messages(messages))).input_ids


def _static_batch(
    model: PreTrainedModel, prompts: list[list[int]], pad_token_id: int, tokens: int
) -> None:
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
            **_exact(tokens),
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

    def __init__(self, client: Client, tokens: int = STAGGERED_TOKENS) -> None:
        self.client = client
        self.tokens = tokens
        self.model: PreTrainedModel = local_engine(client).model.result()
        self.prompts = _prompts(client)
        self.system = _system_prompt(client)
        self.conversation: list[list[LLMMessage]] = []

    async def bare(self, function: Callable[..., object], *args: object) -> None:
        await self.client._chat.model.engine.call(functools.partial(function, self.model, *args))

    async def prepare_conversation(self) -> None:
        """Run the conversation once: every timed run then sends exactly these prompts."""
        messages: list[LLMMessage] = [self.system]
        for turn in range(TURNS):
            messages = [*messages, UserMessage(content=f"Step {turn}: what now?", source="user")]
            self.conversation.append(messages)
            result = await self.client.create(messages, extra_create_args=_exact(TURN_TOKENS))
            messages = [*messages, AssistantMessage(content=str(result.content), source="agent")]

    # -- One request, gathered and staggered arrivals -------------------------------------------

    async def single(self) -> None:
        await self.client.create(self.prompts[0], extra_create_args=_exact(self.tokens))

    async def bare_single(self) -> None:
        await self.bare(_static_batch, [_ids(self.client, self.prompts[0])], 0, self.tokens)

    async def gathered(self) -> None:
        await asyncio.gather(
            *(
                self.client.create(prompt, extra_create_args=_exact(self.tokens))
                for prompt in self.prompts
            )
        )

    async def staggered(self) -> None:
        async def arrive(i: int) -> None:
            await asyncio.sleep(i * ARRIVAL_GAP_S)
            await self.client.create(self.prompts[i], extra_create_args=_exact(self.tokens))

        await asyncio.gather(*(arrive(i) for i in range(ARRIVALS)))

    async def static_batch(self) -> None:
        prompts = [_ids(self.client, prompt) for prompt in self.prompts]
        pad = self.client._chat.tokenizer.pad_token_id or 0
        await self.bare(_static_batch, prompts, pad, self.tokens)

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


def _runs(work: Workloads, workloads: list[str]) -> dict[str, Callable[[], Awaitable[float]]]:
    """The timed runs of ``workloads`` and of their baselines."""
    runs: dict[str, Callable[[], Awaitable[float]]] = {}
    if "single" in workloads:
        runs["single_s"] = lambda: _seconds(work.single)
        runs["bare_single_s"] = lambda: _seconds(work.bare_single)
    if "gathered" in workloads:
        runs["gathered_s"] = lambda: _seconds(work.gathered)
    if "staggered" in workloads:
        runs["staggered_s"] = lambda: _seconds(work.staggered)
    if "gathered" in workloads or "staggered" in workloads:
        runs["static_batch_s"] = lambda: _seconds(work.static_batch)
    if "short_behind_long" in workloads:
        runs["short_alone_s"] = work.short_alone
        runs["short_behind_long_s"] = work.short_behind_long
    if "conversation" in workloads:
        runs["conversation_client_s"] = lambda: _seconds(work.conversation_through_client)
        runs["conversation_reuse_limit_s"] = lambda: _seconds(
            functools.partial(work.conversation_bare, reuse=True)
        )
        runs["conversation_no_reuse_s"] = lambda: _seconds(
            functools.partial(work.conversation_bare, reuse=False)
        )
    return runs


async def _client_part(
    model_path: str, repeats: int, workloads: list[str], tokens: int, device: dict[str, str]
) -> dict[str, Any]:
    client = Client(model_name=model_path, do_sample=False, **device)
    try:
        await client.create([UserMessage(content="warm up", source="u")], extra_create_args=_exact(2))
        work = Workloads(client, tokens)
        if "conversation" in workloads:
            await work.prepare_conversation()
        await work.static_batch()  # warm up the batched shapes
        timed = await _alternate(_runs(work, workloads), repeats)
        prompt_tokens = [client.count_tokens(messages) for messages in work.conversation]
    finally:
        await client.close()
    return {**timed, "conversation_prompt_tokens": prompt_tokens, "new_tokens": tokens}


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
        _static_batch(model, prompts[:1], client._chat.tokenizer.pad_token_id or 0, STAGGERED_TOKENS)
        return time.perf_counter() - started

    measured["bare_static_batch_s"] = statistics.fmean(
        _timed(_static_batch, model, prompts, client._chat.tokenizer.pad_token_id or 0, STAGGERED_TOKENS)
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


def _in_subprocess(part: str, model_path: str, options: list[str]) -> Any:
    command = [sys.executable, __file__, "--part", part, "--model", model_path, *options]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def _ratio(r: dict[str, Any], result: dict[str, Any], name: str, time_s: str, baseline_s: str) -> None:
    if time_s in r and baseline_s in r:
        result[name] = r[time_s] / r[baseline_s]


def _report(name: str, r: dict[str, Any]) -> dict[str, Any]:
    result = {"model": name, **r}
    _ratio(r, result, "single_vs_bare", "single_s", "bare_single_s")
    _ratio(r, result, "gathered_vs_static_batch", "gathered_s", "static_batch_s")
    _ratio(r, result, "staggered_vs_static_batch", "staggered_s", "static_batch_s")
    _ratio(r, result, "short_behind_long_vs_alone", "short_behind_long_s", "short_alone_s")
    _ratio(r, result, "conversation_vs_reuse_limit", "conversation_client_s", "conversation_reuse_limit_s")
    _ratio(
        r, result, "conversation_no_reuse_vs_reuse_limit",
        "conversation_no_reuse_s", "conversation_reuse_limit_s",
    )
    tokens = r["new_tokens"]
    print(f"\n{name}")
    rows: list[tuple[str, str, str]] = [
        (f"single request, {tokens} tokens", "single_s", "bare_single_s"),
        (f"{ARRIVALS} gathered, {tokens} tokens", "gathered_s", "static_batch_s"),
        (f"{ARRIVALS} staggered arrivals", "staggered_s", "static_batch_s"),
        ("short behind long", "short_behind_long_s", "short_alone_s"),
        ("conversation", "conversation_client_s", "conversation_reuse_limit_s"),
    ]
    for label, time_s, baseline_s in rows:
        if time_s in r:
            print(
                f"  {label:<34} {r[time_s]:8.3f} s   ({baseline_s.removesuffix('_s')} "
                f"{r[baseline_s]:.3f} s: {r[time_s] / r[baseline_s]:.3f}x)"
            )
    if "conversation_no_reuse_s" in r:
        turns = r["conversation_prompt_tokens"]
        no_reuse = r["conversation_no_reuse_s"]
        print(f"  conversation prompts {turns[0]}-{turns[-1]} tokens; no reuse {no_reuse:.3f} s")
    bounds = [
        ("single request vs bare generate", "single_vs_bare", 1.05),
        ("gathered vs static batch", "gathered_vs_static_batch", 1.15),
        ("staggered arrivals vs static batch", "staggered_vs_static_batch", 1.25),
        ("short behind long vs alone", "short_behind_long_vs_alone", 3),
        ("conversation vs prefix-reuse limit", "conversation_vs_reuse_limit", 1.10),
    ]
    targets = [Target(label, result[key], "<=", bound) for label, key, bound in bounds if key in result]
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


def _workloads(text: str) -> list[str]:
    names = [name for part in text.split(",") for name in (BATCHING if part == "batching" else [part])]
    unknown = sorted(set(names) - set(WORKLOADS))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown workloads {unknown}: choose from {WORKLOADS}, batching")
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--model", help="model id or path (default: the offline mid-size model)")
    parser.add_argument("--real-size", action="store_true", help="a random Qwen3-0.6B-sized model")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workloads", type=_workloads, default=list(WORKLOADS))
    parser.add_argument("--new-tokens", type=int, default=STAGGERED_TOKENS)
    parser.add_argument("--device", help="torch device for the client, such as cuda")
    parser.add_argument("--dtype", help="model dtype for the client, such as bfloat16")
    parser.add_argument("--compare-transformers", action="store_true")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--part", choices=["client", "transformers"], help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    device = {
        key: value for key, value in (("device", arguments.device), ("dtype", arguments.dtype)) if value
    }

    if arguments.part == "client":
        measured = _client_part(
            arguments.model, arguments.repeats, arguments.workloads, arguments.new_tokens, device
        )
        print(json.dumps(asyncio.run(measured)))
        return 0
    if arguments.part == "transformers":
        print(json.dumps(_transformers_part(arguments.model, arguments.repeats)))
        return 0

    options = [
        "--repeats", str(arguments.repeats),
        "--workloads", ",".join(arguments.workloads),
        "--new-tokens", str(arguments.new_tokens),
        *(option for key, value in device.items() for option in (f"--{key}", value)),
    ]
    with tempfile.TemporaryDirectory() as scratch:
        if arguments.model:
            name, path = arguments.model, arguments.model
        elif arguments.real_size:
            name = "random Qwen3-0.6B architecture (hidden 1024, 28 layers)"
            path = str(build_real_size(Path(scratch) / "real-size"))
        else:
            name = "mid-size (hidden 512, 8 layers)"
            path = str(build_tiny_model(Path(scratch) / "mid", hidden_size=512, num_layers=8))
        measured = _in_subprocess("client", path, options)
        if arguments.compare_transformers:
            measured["cb"] = _in_subprocess("transformers", path, ["--repeats", str(arguments.repeats)])
        result = _report(name, measured)
    if arguments.json:
        arguments.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
