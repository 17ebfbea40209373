"""Benchmark tool calling: grammar compile time, and forced calls against free generation.

Run from the project root::

    python benchmarks/bench_tools.py                       # offline mid-size model
    python benchmarks/bench_tools.py --model Qwen/Qwen3-0.6B --repeats 5

It prints a table and writes the numbers as JSON (``--json PATH``). Compile times are taken on
a fresh grammar cache (first: with the tokenizer info; second: another grammar on a warm
compiler; cached: the same grammar again). Throughput is tokens per second of ``create``: a
call forced with ``tool_choice="required"`` (xgrammar masks every step) against unconstrained
sampling (``tool_choice="auto"``) of the same number of tokens on the same prompt and tools.
``mask_step_ms`` is the median time the grammar's logits processor takes per decoding step.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from autogen_core.models import UserMessage
from autogen_core.tools import ParametersSchema, ToolSchema
from transformers import AutoTokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from _report import Target, print_targets
from tiny_models import build_tiny_model

from {{ cookiecutter.package_name }} import {{ cookiecutter.client_class_name }} as Client
from {{ cookiecutter.package_name }}._prompt import to_chat_tools
from {{ cookiecutter.package_name }}._tool_grammar import (
    GrammarCache,
    ToolCallLogitsProcessor,
    call_structural_tag,
)
from {{ cookiecutter.package_name }}._tool_parsers import FORMATS

TASK = UserMessage(content="What is the weather in Paris and Tokyo this week?", source="user")
TOOLS: list[ToolSchema] = [
    ToolSchema(
        name="get_weather",
        description="Weather forecast for a city.",
        parameters=ParametersSchema(
            type="object",
            properties={
                "city": {"type": "string", "maxLength": 24},
                "days": {"type": "integer", "minimum": 1, "maximum": 14},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            required=["city", "days", "unit"],
        ),
    ),
    ToolSchema(
        name="search_flights",
        description="Search flights between two airports.",
        parameters=ParametersSchema(
            type="object",
            properties={
                "origin": {"type": "string", "pattern": "^[A-Z]{3}$"},
                "destination": {"type": "string", "pattern": "^[A-Z]{3}$"},
                "passengers": {"type": "integer", "minimum": 1, "maximum": 9},
                "cabin": {"type": "string", "enum": ["economy", "business", "first"]},
            },
            required=["origin", "destination", "passengers"],
        ),
    ),
]


def _compile_times(model: str) -> dict[str, float]:
    """Seconds to compile the tools' grammar on a fresh cache, another one, and a cached one."""
    tokenizer = AutoTokenizer.from_pretrained(model)
    vocab = len(tokenizer)
    stop = (int(tokenizer.eos_token_id),)
    definitions = to_chat_tools(TOOLS) or []
    both, one = (
        call_structural_tag(
            tokenizer, FORMATS["hermes"], tools, starts_in_thought=False
        ).model_dump_json()
        for tools in (definitions, definitions[:1])
    )
    cache = GrammarCache(tokenizer)
    times = {}
    for name, grammar in (("compile_first_s", both), ("compile_other_s", one)):
        started = time.perf_counter()
        cache.compile(grammar, vocab, stop)
        times[name] = time.perf_counter() - started
    cached = []
    for _ in range(100):
        started = time.perf_counter()
        cache.compile(both, vocab, stop)
        cached.append(time.perf_counter() - started)
    times["compile_cached_s"] = statistics.median(cached)
    return times


def _time_mask_steps() -> list[float]:
    """Record how long each call of the tool-call logits processor takes (benchmark only)."""
    steps: list[float] = []
    original = ToolCallLogitsProcessor.__call__

    def timed(self: ToolCallLogitsProcessor, input_ids: Any, scores: Any) -> Any:
        started = time.perf_counter()
        masked = original(self, input_ids, scores)
        steps.append(time.perf_counter() - started)
        return masked

    setattr(ToolCallLogitsProcessor, "__call__", timed)  # noqa: B010
    return steps


async def _throughput(model: str, repeats: int, max_new_tokens: int) -> dict[str, float]:
    """Median tokens per second of forced calls and of free sampling of as many tokens."""
    client = Client(model_name=model, max_new_tokens=max_new_tokens, do_sample=True)
    await client.create([TASK], extra_create_args={"max_new_tokens": 2})  # load and warm up
    mask_steps = _time_mask_steps()
    forced_rates, free_rates, lengths, cut_off = [], [], [], 0
    try:
        for seed in range(repeats):
            started = time.perf_counter()
            result = await client.create(
                [TASK], tools=TOOLS, tool_choice="required", extra_create_args={"seed": seed}
            )
            elapsed = time.perf_counter() - started
            cut_off += result.finish_reason == "length"  # the call did not fit: still timed
            tokens = result.usage.completion_tokens
            forced_rates.append(tokens / elapsed)
            lengths.append(tokens)
            free: dict[str, Any] = {
                "seed": seed,
                "max_new_tokens": tokens,
                "min_new_tokens": tokens,
            }
            started = time.perf_counter()
            result = await client.create([TASK], tools=TOOLS, extra_create_args=free)
            free_rates.append(result.usage.completion_tokens / (time.perf_counter() - started))
    finally:
        await client.close()
    return {
        "forced_tokens_per_s": statistics.median(forced_rates),
        "free_tokens_per_s": statistics.median(free_rates),
        "forced_call_tokens": statistics.median(lengths),
        "forced_calls_cut_off": cut_off,
        # The first step compiles the grammar.
        "mask_step_ms": statistics.median(mask_steps[1:] or mask_steps) * 1000,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="model id or path (default: an offline mid-size model)")
    parser.add_argument("--repeats", type=int, default=8, help="forced calls (one per seed)")
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--json", type=Path, help="write the numbers here")
    arguments = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        model = arguments.model or str(
            build_tiny_model(Path(scratch) / "mid", hidden_size=512, num_layers=8)
        )
        numbers: dict[str, Any] = {"model": arguments.model or "offline 512x8 Qwen2"}
        numbers.update(_compile_times(model))
        numbers.update(asyncio.run(_throughput(model, arguments.repeats, arguments.max_new_tokens)))
    numbers["forced_vs_free"] = numbers["forced_tokens_per_s"] / numbers["free_tokens_per_s"]
    for key, value in numbers.items():
        if key.endswith("_s") and not key.endswith("per_s"):
            print(f"{key.removesuffix('_s'):24} {value * 1000:.3f} ms")
        else:
            print(f"{key:24} {value:.2f}" if isinstance(value, float) else f"{key:24} {value}")
    if numbers["forced_calls_cut_off"]:
        print(f"({numbers['forced_calls_cut_off']} forced calls ran out of --max-new-tokens)")
    numbers["targets"] = print_targets(
        [Target("forced call vs free generation", numbers["forced_vs_free"], ">=", 0.8)]
    )
    if arguments.json:
        arguments.json.write_text(json.dumps(numbers, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
