"""Benchmark the client against bare ``model.generate`` on your model and hardware.

Run from the project root::

    python benchmarks/bench_client.py                     # offline tiny and mid-size models
    python benchmarks/bench_client.py --model Qwen/Qwen3-0.6B --new-tokens 64

For each model it prints a table and writes the numbers as JSON (``--json PATH``):
tokens per second of ``create()`` against bare ``generate`` (same prompt and settings), time to
first streamed chunk against a bare one-token ``generate``, stream against ``create()`` time,
aggregate throughput at 1, 2, 4 and 8 concurrent requests, the event loop's worst stall during
generation, and peak memory against loading the bare model.

Timings compare like with like: the bare ``generate`` calls run in the client's process, on
the client's own worker thread and weights, alternating with the client's calls (each takes
each position in turn), and each ratio is one of mean times over all repeats. Machine speed
drifts by several percent over a run (other tenants, frequency scaling); alternating cancels
that drift out, and the table shows the range of the per-pair ratios as a measure of noise.
Memory is measured in two fresh processes (bare model, client), each after loading and a
two-token warm-up.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

from autogen_core.models import CreateResult, UserMessage
from transformers import AutoTokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from _report import Target, print_targets
from reference import bare_generate, load_model, template_ids
from scripting import local_engine
from tiny_models import build_tiny_model

from {{ cookiecutter.package_name }} import {{ cookiecutter.client_class_name }} as Client
from {{ cookiecutter.package_name }}._core._generation import SupportsGenerate

PROMPT = "Write a short story about a robot who learns to paint."
CONCURRENCY = (1, 2, 4, 8)
CONCURRENCY_ROUNDS = 3
OFFLINE_MODELS = {  # name: (hidden size, layers)
    "tiny (hidden 64, 2 layers)": (64, 2),
    "mid-size (hidden 512, 8 layers)": (512, 8),
}


async def _seconds(run: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await run()
    return time.perf_counter() - started


def _peak_memory_mb() -> float:
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return peak_kb / 1024


def _bare_memory_part(model_path: str) -> dict[str, float]:
    """Peak memory of the bare model, loaded and warmed up (a fresh process)."""
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    prompt_ids = template_ids(tokenizer, [{"role": "user", "content": PROMPT}])
    with ThreadPoolExecutor(max_workers=1) as torch_thread:  # the client's discipline
        model = torch_thread.submit(load_model, Path(model_path)).result()
        torch_thread.submit(bare_generate, model, prompt_ids, max_new_tokens=2).result()
    return {"bare_loaded_peak_mb": _peak_memory_mb()}


class _StallMeter:
    """Measures how late the event loop runs 1 ms ticks: the worst and the 99th percentile.

    On a shared machine the worst is sometimes a hiccup of the host; the percentile shows
    whether the stalls are systematic.
    """

    def __init__(self) -> None:
        self.lateness_s: list[float] = []
        self._task: asyncio.Task[None] | None = None

    @property
    def worst_s(self) -> float:
        return max(self.lateness_s, default=0.0)

    @property
    def p99_s(self) -> float:
        ordered = sorted(self.lateness_s)
        return ordered[int(len(ordered) * 0.99)] if ordered else 0.0

    async def _tick(self) -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            self.lateness_s.append(max(0.0, now - last - 0.001))
            last = now

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._tick())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


async def _client_part(model_path: str, new_tokens: int, repeats: int) -> dict[str, Any]:
    client = Client(model_name=model_path, max_new_tokens=new_tokens, do_sample=False)
    messages = [UserMessage(content=PROMPT, source="user")]
    exact = {"min_new_tokens": new_tokens}  # exactly new_tokens: no early end of sequence
    await client.create(messages, extra_create_args={"max_new_tokens": 2})  # load, warm up
    loaded_mb = _peak_memory_mb()

    # Bare generate on the client's own worker thread and weights: the same thread and
    # model as create(), and no second copy of the model in memory.
    model = cast(SupportsGenerate, local_engine(client).model.result())
    prompt_ids = template_ids(client._chat.tokenizer, [{"role": "user", "content": PROMPT}])
    assert client.count_tokens(messages) == len(prompt_ids), "client and bare prompts differ"

    async def bare(tokens: int) -> None:
        settings = {"max_new_tokens": tokens, "min_new_tokens": tokens, "do_sample": False}
        await client._chat.model.engine.call(functools.partial(bare_generate, model, prompt_ids, **settings))

    async def create() -> None:
        result = await client.create(messages, extra_create_args=exact)
        assert result.usage.completion_tokens == new_tokens

    first_chunk = float("nan")

    async def stream() -> None:
        nonlocal first_chunk
        started = time.perf_counter()
        first_chunk = float("nan")
        async for item in client.create_stream(messages, extra_create_args=exact):
            if first_chunk != first_chunk and not isinstance(item, CreateResult):
                first_chunk = time.perf_counter() - started

    stall = _StallMeter()
    stall.start()
    timings: dict[str, list[float]] = {
        "bare": [], "create": [], "stream": [], "bare_one_token": [], "first_chunk": []
    }
    runs: list[tuple[str, Callable[[], Awaitable[object]]]] = [
        ("bare", lambda: bare(new_tokens)),
        ("create", create),
        ("stream", stream),
    ]
    for repeat in range(repeats):
        shift = repeat % len(runs)  # each run takes each position in turn
        for name, run in runs[shift:] + runs[:shift]:
            timings[name].append(await _seconds(run))
        timings["first_chunk"].append(first_chunk)
        timings["bare_one_token"].append(await _seconds(lambda: bare(1)))
    rates: dict[int, list[float]] = {concurrent: [] for concurrent in CONCURRENCY}
    for _ in range(CONCURRENCY_ROUNDS):  # rounds, so that each level sees the machine's drift
        for concurrent, measured in rates.items():
            prompts = [
                [UserMessage(content=f"{PROMPT} ({i})", source="user")] for i in range(concurrent)
            ]
            started = time.perf_counter()
            results = await asyncio.gather(
                *(client.create(prompt, extra_create_args=exact) for prompt in prompts)
            )
            elapsed = time.perf_counter() - started
            measured.append(sum(r.usage.completion_tokens for r in results) / elapsed)
    throughput = {concurrent: statistics.median(measured) for concurrent, measured in rates.items()}
    await stall.stop()
    await client.close()

    return {
        "prompt_tokens": len(prompt_ids),
        **{f"{name}_s": statistics.fmean(times) for name, times in timings.items()},
        "create_vs_bare_pairs": [
            bare / create for bare, create in zip(timings["bare"], timings["create"], strict=True)
        ],
        "throughput_tokens_per_s": throughput,
        "worst_stall_s": stall.worst_s,
        "p99_stall_s": stall.p99_s,
        "client_loaded_peak_mb": loaded_mb,
        "client_peak_mb": _peak_memory_mb(),
    }


def _in_subprocess(part: str, model_path: str, arguments: argparse.Namespace) -> Any:
    command = [
        sys.executable,
        __file__,
        "--part",
        part,
        "--model",
        model_path,
        "--new-tokens",
        str(arguments.new_tokens),
        "--repeats",
        str(arguments.repeats),
    ]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def _benchmark(name: str, model_path: str, arguments: argparse.Namespace) -> dict[str, Any]:
    n = arguments.new_tokens
    bare = _in_subprocess("bare", model_path, arguments)
    client = _in_subprocess("client", model_path, arguments)
    throughput = {int(k): v for k, v in client["throughput_tokens_per_s"].items()}
    return {
        "model": name,
        "new_tokens": n,
        "prompt_tokens": client["prompt_tokens"],
        "bare_generate_tokens_per_s": n / client["bare_s"],
        "create_tokens_per_s": n / client["create_s"],
        "create_vs_bare": client["bare_s"] / client["create_s"],
        "create_vs_bare_pairs": client["create_vs_bare_pairs"],
        "bare_one_token_s": client["bare_one_token_s"],
        "first_chunk_s": client["first_chunk_s"],
        "first_chunk_vs_one_token": client["first_chunk_s"] / client["bare_one_token_s"],
        "create_s": client["create_s"],
        "stream_s": client["stream_s"],
        "stream_vs_create": client["stream_s"] / client["create_s"],
        "throughput_tokens_per_s": throughput,
        "throughput_8_vs_1": throughput[8] / throughput[1],
        "worst_event_loop_stall_ms": client["worst_stall_s"] * 1000,
        "p99_event_loop_stall_ms": client["p99_stall_s"] * 1000,
        "bare_loaded_peak_mb": bare["bare_loaded_peak_mb"],
        "client_loaded_peak_mb": client["client_loaded_peak_mb"],
        "loaded_memory_vs_bare": client["client_loaded_peak_mb"] / bare["bare_loaded_peak_mb"],
        "client_peak_mb": client["client_peak_mb"],
    }


def _print_table(r: dict[str, Any]) -> None:
    print(
        f"\n{r['model']}: {r['prompt_tokens']} prompt tokens, {r['new_tokens']} new tokens, greedy"
    )
    pairs = r["create_vs_bare_pairs"]
    rows = [
        ("bare generate", f"{r['bare_generate_tokens_per_s']:.1f} tok/s", ""),
        (
            "client create()",
            f"{r['create_tokens_per_s']:.1f} tok/s",
            f"{r['create_vs_bare']:.3f}x bare "
            f"({len(pairs)} pairs {min(pairs):.2f}-{max(pairs):.2f})",
        ),
        ("bare generate, 1 token", f"{r['bare_one_token_s'] * 1000:.1f} ms", ""),
        (
            "first streamed chunk",
            f"{r['first_chunk_s'] * 1000:.1f} ms",
            f"{r['first_chunk_vs_one_token']:.2f}x 1 token",
        ),
        (
            "create_stream total",
            f"{r['stream_s']:.3f} s",
            f"{r['stream_vs_create']:.3f}x create",
        ),
    ]
    rows += [
        (
            f"{n} concurrent create()",
            f"{tps:.1f} tok/s",
            f"{tps / r['throughput_tokens_per_s'][1]:.2f}x one request",
        )
        for n, tps in r["throughput_tokens_per_s"].items()
    ]
    rows += [
        ("event loop worst stall", f"{r['worst_event_loop_stall_ms']:.1f} ms", ""),
        ("event loop stall, p99", f"{r['p99_event_loop_stall_ms']:.1f} ms", ""),
        (
            "peak memory, model loaded",
            f"{r['client_loaded_peak_mb']:.0f} MB",
            f"{r['loaded_memory_vs_bare']:.2f}x bare",
        ),
    ]
    for name, value, note in rows:
        print(f"  {name:<26} {value:>14}  {note}")


def _targets(r: dict[str, Any]) -> list[Target]:
    return [
        Target("create() vs bare generate", r["create_vs_bare"], ">=", 0.95),
        Target("first chunk vs 1-token generate", r["first_chunk_vs_one_token"], "<=", 1.5),
        Target("create_stream vs create()", r["stream_vs_create"], "<=", 1.05),
        Target("8 concurrent vs 1 request", r["throughput_8_vs_1"], ">=", 4),
        Target("event loop worst stall", r["worst_event_loop_stall_ms"], "<", 20, " ms"),
        Target("peak memory vs bare model", r["loaded_memory_vs_bare"], "<=", 1.1),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--model", help="model id or path (default: the offline models)")
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--part", choices=["bare", "client"], help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)

    if arguments.part == "bare":
        print(json.dumps(_bare_memory_part(arguments.model)))
        return 0
    if arguments.part == "client":
        numbers = asyncio.run(_client_part(arguments.model, arguments.new_tokens, arguments.repeats))
        print(json.dumps(numbers))
        return 0

    results = []
    with tempfile.TemporaryDirectory() as scratch:
        if arguments.model:
            models = {arguments.model: arguments.model}
        else:
            models = {
                name: str(build_tiny_model(Path(scratch) / str(i), hidden_size=size, num_layers=layers))
                for i, (name, (size, layers)) in enumerate(OFFLINE_MODELS.items())
            }
        for name, path in models.items():
            results.append(_benchmark(name, path, arguments))
            _print_table(results[-1])
            results[-1]["targets"] = print_targets(_targets(results[-1]))
    if arguments.json:
        arguments.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
