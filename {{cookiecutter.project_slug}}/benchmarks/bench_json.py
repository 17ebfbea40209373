"""Benchmark constrained JSON decoding: grammar compile time and tokens/s against plain text.

Run from the project root::

    python benchmarks/bench_json.py                       # offline mid-size model
    python benchmarks/bench_json.py --model Qwen/Qwen3-0.6B

It prints a table and writes the numbers as JSON (``--json PATH``). Both sides run through
the same client in back-to-back pairs; the ratio is the median of the pairs' ratios, which a
machine whose load drifts affects far less than the two medians. The constrained answer is a
list that must be longer than the token budget, so both sides generate exactly as many
tokens. The time the grammar spends masking and advancing, measured inside the constrained
requests, gives the cost of the constraint without any of that noise. Compile times depend
on the vocabulary: the offline model's is tiny (hundreds of tokens), a real model's is 30k
to 250k.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

from autogen_core.models import UserMessage
from pydantic import BaseModel, Field, RootModel

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from _report import Target, print_targets
from scripting import local_engine
from tiny_models import build_tiny_model

from {{ cookiecutter.package_name }} import {{ cookiecutter.client_class_name }} as Client
from {{ cookiecutter.package_name }}._core._constrained import Compilers, Grammar, GrammarState
from {{ cookiecutter.package_name }}._core._json_output import JsonOutput

PROMPT = "List the cities you know, with their population and a few tags, as JSON."


class City(BaseModel):
    name: str = Field(max_length=24)
    population: int = Field(ge=0)
    coastal: bool
    tags: list[Annotated[str, Field(max_length=12)]] = Field(max_length=4)


class Cities(RootModel[list[City]]):
    """More cities than any token budget holds: the answer always runs to the limit."""

    root: list[City] = Field(min_length=10_000)


async def _heartbeat_gap(work: Any) -> tuple[Any, float]:
    """Run ``work`` while a 1 ms heartbeat ticks on the loop; return its result and the
    longest gap between ticks (how long the event loop was blocked)."""
    gaps: list[float] = []
    done = asyncio.Event()

    async def beat() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticker = asyncio.create_task(beat())
    try:
        result = await work
    finally:
        done.set()
        await ticker
    return result, max(gaps, default=0.0)


_GRAMMAR_SECONDS = [0.0]


def _timed(method: Any) -> Any:
    """A grammar state's method, timed: its share of a request is the constraint's whole cost."""

    def timed(self: GrammarState, *args: Any) -> Any:
        started = time.perf_counter()
        result = method(self, *args)
        _GRAMMAR_SECONDS[0] += time.perf_counter() - started
        return result

    return timed


GrammarState.mask = _timed(GrammarState.mask)  # type: ignore[method-assign]
GrammarState.accept = _timed(GrammarState.accept)  # type: ignore[method-assign]


def _compile_numbers(client: Client, model_vocab_size: int) -> dict[str, float]:
    """Each step of preparing a grammar, timed on fresh caches: first use, then cached."""
    tokenizer = client._chat.tokenizer
    json_output = JsonOutput(tokenizer)
    compilers = Compilers(tokenizer)  # fresh: no vocabulary built, nothing compiled yet
    numbers: dict[str, float] = {}
    for name, answer in (("json_mode", True), ("cities", Cities)):
        started = time.perf_counter()
        schema = json.dumps(json_output.schema(answer, client.model_info).grammar_schema)
        numbers[f"{name}_schema_s"] = time.perf_counter() - started
        grammar = Grammar("json_schema", schema, tokenizer)
        started = time.perf_counter()
        compilers.compile(grammar, model_vocab_size)
        numbers[f"{name}_compile_first_s"] = time.perf_counter() - started
        started = time.perf_counter()
        compilers.compile(grammar, model_vocab_size)
        numbers[f"{name}_compile_cached_s"] = time.perf_counter() - started
    return numbers


async def _measure(model: str, new_tokens: int, repeats: int) -> dict[str, Any]:
    client = Client(model_name=model, max_new_tokens=new_tokens, do_sample=False)
    messages = [UserMessage(content=PROMPT, source="user")]
    loaded = await asyncio.wrap_future(local_engine(client).model)
    vocab_size = int(loaded.config.get_text_config().vocab_size)
    await client.create(messages, extra_create_args={"max_new_tokens": 2})  # warm-up
    first, loop_blocked = await _heartbeat_gap(
        client.create(messages, json_output=Cities, extra_create_args={"max_new_tokens": 2})
    )
    assert first.finish_reason == "length"
    _, loop_blocked_plain = await _heartbeat_gap(
        client.create(messages, extra_create_args={"max_new_tokens": 2})
    )
    plain_times: list[float] = []
    json_times: list[float] = []
    grammar_shares: list[float] = []
    for _ in range(repeats):
        started = time.perf_counter()
        plain = await client.create(messages, extra_create_args={"min_new_tokens": new_tokens})
        plain_times.append(time.perf_counter() - started)
        _GRAMMAR_SECONDS[0] = 0.0
        started = time.perf_counter()
        constrained = await client.create(messages, json_output=Cities)
        json_times.append(time.perf_counter() - started)
        grammar_shares.append(_GRAMMAR_SECONDS[0] / json_times[-1])
        assert plain.usage.completion_tokens == new_tokens
        assert constrained.usage.completion_tokens == new_tokens
        assert constrained.finish_reason == "length"
    numbers = {
        "grammar_share": statistics.median(grammar_shares),
        "vocab_size": vocab_size,
        "loop_blocked_first_request_s": loop_blocked,
        "loop_blocked_plain_request_s": loop_blocked_plain,
        **_compile_numbers(client, vocab_size),
        "plain_s": statistics.median(plain_times),
        "json_s": statistics.median(json_times),
        # Each pair ran back to back: its ratio is immune to the machine's load drifting.
        "json_vs_plain": statistics.median(
            p / j for p, j in zip(plain_times, json_times, strict=True)
        ),
    }
    await client.close()
    return numbers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--model", help="model id or path (default: offline mid-size model)")
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    n = arguments.new_tokens

    if arguments.measure:
        print(json.dumps(asyncio.run(_measure(arguments.model, n, arguments.repeats))))
        return 0
    with tempfile.TemporaryDirectory() as scratch:
        model_path = arguments.model or str(
            build_tiny_model(Path(scratch) / "mid", hidden_size=512, num_layers=8)
        )
        # A process of its own: building the model ran torch on this thread, and torch work
        # on a second thread (the client's worker) would then run slower for good.
        command = [
            sys.executable, __file__, "--measure", "--model", model_path,
            "--new-tokens", str(n), "--repeats", str(arguments.repeats),
        ]  # fmt: skip
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        measured = json.loads(output.strip().splitlines()[-1])

    results = {
        "model": arguments.model or "offline mid-size (hidden 512, 8 layers)",
        "new_tokens": n,
        **measured,
        "plain_tokens_per_s": n / measured["plain_s"],
        "json_tokens_per_s": n / measured["json_s"],
        "json_vs_plain_in_run": 1 - measured["grammar_share"],
    }
    ms = 1000.0
    rows = []
    for name, label in (("json_mode", "JSON mode"), ("cities", "Cities")):
        rows += [
            (f"{label}: check schema", f"{results[f'{name}_schema_s'] * ms:.2f} ms", "event loop"),
            (
                f"{label}: convert, compile",
                f"{results[f'{name}_compile_first_s'] * ms:.2f} ms",
                "worker, first use (the vocabulary built for the first)",
            ),
            (
                f"{label}: compile, cached",
                f"{results[f'{name}_compile_cached_s'] * ms:.3f} ms",
                "worker",
            ),
        ]
    rows += [
        (
            "loop blocked, 1st Cities request",
            f"{results['loop_blocked_first_request_s'] * ms:.1f} ms",
            "longest gap of a 1 ms heartbeat",
        ),
        (
            "loop blocked, plain request",
            f"{results['loop_blocked_plain_request_s'] * ms:.1f} ms",
            "the same, without JSON",
        ),
        ("plain create()", f"{results['plain_tokens_per_s']:.1f} tok/s", ""),
        (
            "structured create()",
            f"{results['json_tokens_per_s']:.1f} tok/s",
            f"{results['json_vs_plain']:.3f}x plain, median of pairs",
        ),
        (
            "grammar masking",
            f"{results['grammar_share'] * 100:.1f} %",
            f"of structured time: {results['json_vs_plain_in_run']:.3f}x plain, same run",
        ),
    ]
    print(f"{results['model']}: vocabulary {results['vocab_size']}, {n} new tokens, greedy")
    for name, value, note in rows:
        print(f"  {name:<32} {value:>14}  {note}")
    results["targets"] = print_targets(
        [Target("structured vs plain create()", results["json_vs_plain"], ">=", 0.9)]
    )
    if arguments.json:
        arguments.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
