"""Benchmark the client against bare ``model.generate``: throughput and streaming latency.

Run from the project root::

    python benchmarks/bench_client.py                      # offline mid-size model
    python benchmarks/bench_client.py --model Qwen/Qwen3-0.6B --new-tokens 64

It prints a table and writes the numbers as JSON (``--json PATH``). Bare ``generate`` runs on
a dedicated thread too, so both sides follow the same thread discipline.
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from autogen_core.models import CreateResult, UserMessage
from transformers import AutoTokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from reference import bare_generate, load_model, template_ids
from tiny_models import build_tiny_model

from {{ cookiecutter.package_name }} import {{ cookiecutter.client_class_name }} as Client

PROMPT = "Write a short story about a robot who learns to paint."


def _median_time(repeats: int, run: Any) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def _client_numbers(
    model: str, new_tokens: int, repeats: int, settings: dict[str, Any]
) -> dict[str, float]:
    client = Client(model_name=model, max_new_tokens=new_tokens, do_sample=False)
    messages = [UserMessage(content=PROMPT, source="user")]
    await client.create(messages, extra_create_args={"max_new_tokens": 2})  # warm-up
    create_times, stream_times, first_chunk_times = [], [], []
    for _ in range(repeats):
        started = time.perf_counter()
        result = await client.create(messages, extra_create_args=settings)
        create_times.append(time.perf_counter() - started)
        assert result.usage.completion_tokens == new_tokens
        started = time.perf_counter()
        first = None
        async for item in client.create_stream(messages, extra_create_args=settings):
            if first is None and not isinstance(item, CreateResult):
                first = time.perf_counter() - started
        stream_times.append(time.perf_counter() - started)
        first_chunk_times.append(first if first is not None else float("nan"))
    await client.close()
    return {
        "create_s": statistics.median(create_times),
        "stream_s": statistics.median(stream_times),
        "first_chunk_s": statistics.median(first_chunk_times),
    }


def _bare_numbers(model_path: str, new_tokens: int, repeats: int) -> dict[str, float]:
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    prompt_ids = template_ids(tokenizer, [{"role": "user", "content": PROMPT}])
    with ThreadPoolExecutor(max_workers=1) as torch_thread:  # the client's discipline
        model = torch_thread.submit(load_model, Path(model_path)).result()

        def bare(tokens: int) -> None:
            settings = {"max_new_tokens": tokens, "min_new_tokens": tokens, "do_sample": False}
            torch_thread.submit(bare_generate, model, prompt_ids, **settings).result()

        bare(2)  # warm-up
        return {
            "prompt_tokens": len(prompt_ids),
            "bare_s": _median_time(repeats, lambda: bare(new_tokens)),
            "bare_one_token_s": _median_time(repeats, lambda: bare(1)),
        }


def _measure_in_subprocess(part: str, model_path: str, arguments: argparse.Namespace) -> Any:
    """Each side runs in a process of its own, so neither inherits the other's torch threads."""
    command = [
        sys.executable, __file__, "--part", part, "--model", model_path,
        "--new-tokens", str(arguments.new_tokens), "--repeats", str(arguments.repeats),
    ]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="model id or path (default: offline mid-size model)")
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--part", choices=["bare", "client"], help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    n = arguments.new_tokens

    if arguments.part == "bare":
        print(json.dumps(_bare_numbers(arguments.model, n, arguments.repeats)))
        return 0
    if arguments.part == "client":
        settings = {"min_new_tokens": n}  # exactly n tokens: no early end of sequence
        print(json.dumps(asyncio.run(_client_numbers(arguments.model, n, arguments.repeats, settings))))
        return 0

    with tempfile.TemporaryDirectory() as scratch:
        model_path = arguments.model or str(
            build_tiny_model(Path(scratch) / "mid", hidden_size=512, num_layers=8)
        )
        bare = _measure_in_subprocess("bare", model_path, arguments)
        client = _measure_in_subprocess("client", model_path, arguments)

    one_token_s = bare["bare_one_token_s"]
    results = {
        "model": arguments.model or "offline mid-size (hidden 512, 8 layers)",
        "new_tokens": n,
        "prompt_tokens": bare["prompt_tokens"],
        "bare_generate_tokens_per_s": n / bare["bare_s"],
        "create_tokens_per_s": n / client["create_s"],
        "create_vs_bare": bare["bare_s"] / client["create_s"],
        "bare_one_token_s": one_token_s,
        "first_chunk_s": client["first_chunk_s"],
        "first_chunk_vs_one_token": client["first_chunk_s"] / one_token_s,
        "stream_s": client["stream_s"],
        "create_s": client["create_s"],
        "stream_vs_create": client["stream_s"] / client["create_s"],
    }
    rows = [
        ("bare generate", f"{results['bare_generate_tokens_per_s']:.1f} tok/s", ""),
        (
            "client create()",
            f"{results['create_tokens_per_s']:.1f} tok/s",
            f"{results['create_vs_bare']:.3f}x bare (target >= 0.95)",
        ),
        ("bare generate, 1 token", f"{one_token_s * 1000:.1f} ms", ""),
        (
            "create_stream first chunk",
            f"{client['first_chunk_s'] * 1000:.1f} ms",
            f"{results['first_chunk_vs_one_token']:.2f}x one token (target <= 1.5)",
        ),
        (
            "create_stream total",
            f"{client['stream_s']:.3f} s",
            f"{results['stream_vs_create']:.3f}x create (target <= 1.05)",
        ),
    ]
    print(f"{results['model']}: {results['prompt_tokens']} prompt tokens, {n} new tokens, greedy")
    for name, value, note in rows:
        print(f"  {name:<28} {value:>14}  {note}")
    if arguments.json:
        arguments.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
