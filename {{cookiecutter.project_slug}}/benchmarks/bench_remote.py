"""Benchmark the client on a vLLM server against the server's own OpenAI API, same model.

Run from the project root::

    python benchmarks/bench_remote.py --vllm-python PATH/TO/VLLM/ENV/bin/python  # offline model
    python benchmarks/bench_remote.py --base-url http://HOST:8000/v1 --model Qwen/Qwen3-0.6B

Without ``--base-url`` it serves the offline tiny model on loopback with that vLLM (by default
``VLLM_TEST_PYTHON``'s, as the tests do). Against the same server it measures:

- validity over ``--seeds`` sampled answers of forced tool calls (``required`` and a named
  tool) and of structured output (JSON mode where structured output was answered no): this
  client, whose grammars the server enforces, against vLLM's own ``tool_choice`` and
  ``response_format`` on ``/v1/chat/completions``. An answer is valid when it has calls, each
  to the tool with arguments that validate (or JSON that validates); one that ran out of
  tokens is counted apart, as cut off.
- time to the first streamed chunk and tokens per second: this client against a bare stream
  of ``/v1/chat/completions`` (httpx, the least any OpenAI client does), greedy, in
  back-to-back pairs; each ratio is the median of the pairs' ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import httpx
from autogen_core import CancellationToken
from autogen_core.models import CreateResult, LLMMessage, UserMessage
from autogen_core.tools import BaseTool
from pydantic import BaseModel, ConfigDict, Field

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from _report import Target, print_targets
from tiny_models import build_tiny_model
from vllm_server import vllm_python, vllm_server

from {{ cookiecutter.package_name }} import {{ cookiecutter.client_class_name }} as Client

ASK = UserMessage(content="What is the weather in Paris this week?", source="user")
FORM = UserMessage(content="Give your verdict on the forecast, as JSON.", source="user")
STORY = UserMessage(content="Tell me a long story about the sea.", source="user")
SAMPLED = {"temperature": 1.0, "top_p": 1.0}  # and no top-k, on both sides
TARGET_TTFT = 1.25  # this client's first chunk, against the bare stream's
TARGET_RATE = 0.9  # this client's tokens per second, against the bare stream's


class WeatherArgs(BaseModel):
    """What ``get_weather`` takes; its JSON schema is the tool's parameters."""

    model_config = ConfigDict(extra="forbid", strict=True)
    city: Annotated[str, Field(max_length=24)]
    days: Annotated[int, Field(ge=1, le=7)]


class Forecast(BaseModel):
    text: str


class WeatherTool(BaseTool[WeatherArgs, Forecast]):
    def __init__(self) -> None:
        super().__init__(WeatherArgs, Forecast, "get_weather", "The weather for 1 to 7 days.")

    async def run(self, args: WeatherArgs, cancellation_token: CancellationToken) -> Forecast:
        return Forecast(text=f"Sunny in {args.city} for {args.days} days.")


class Verdict(BaseModel):
    """The structured answer."""

    model_config = ConfigDict(extra="forbid")
    label: Annotated[str, Field(max_length=16)]
    score: Annotated[int, Field(ge=0, le=10)]


WEATHER = WeatherTool()


def _calls_valid(calls: list[tuple[str, str]]) -> bool:
    """At least one call, each to ``get_weather`` with arguments that validate."""
    if not calls:
        return False
    try:
        for _, arguments in calls:
            WeatherArgs.model_validate_json(arguments)
    except ValueError:  # pydantic's ValidationError is one
        return False
    return all(name == WEATHER.name for name, _ in calls)


def _json_valid(text: str, structured: bool) -> bool:
    try:
        if structured:
            Verdict.model_validate_json(text)
            return True
        return isinstance(json.loads(text), dict)
    except ValueError:  # pydantic's ValidationError and json's JSONDecodeError both
        return False


class Tally:
    """Answers counted as valid, cut off (out of tokens) or invalid."""

    def __init__(self) -> None:
        self.counts = {"valid": 0, "cut_off": 0, "invalid": 0}

    def add(self, valid: bool, cut_off: bool) -> None:
        self.counts["cut_off" if cut_off else "valid" if valid else "invalid"] += 1


class Server:
    """vLLM's own OpenAI API, with the request fields that ask it for the same thing."""

    def __init__(self, http: httpx.AsyncClient, url: str, served: str, max_tokens: int) -> None:
        self.http, self.url, self.served, self.max_tokens = http, url, served, max_tokens

    def body(self, message: LLMMessage, **fields: Any) -> dict[str, Any]:
        chat = [{"role": "user", "content": message.content}]
        return {"model": self.served, "messages": chat, "max_tokens": self.max_tokens, **fields}

    async def answer(self, message: LLMMessage, **fields: Any) -> dict[str, Any]:
        response = await self.http.post(
            f"{self.url}/chat/completions", json=self.body(message, **fields)
        )
        if response.status_code >= 500:  # its own parser failed on the answer: not a valid one
            return {"message": {}, "finish_reason": "error"}
        if response.status_code != 200:
            raise RuntimeError(f"the server refused {fields}: {response.text}")
        choice: dict[str, Any] = response.json()["choices"][0]
        return choice

    async def stream(self, message: LLMMessage) -> tuple[float, float, int]:
        """A greedy streamed answer: seconds to the first text (or the end, without any), in
        all, and its tokens."""
        body = self.body(
            message, stream=True, temperature=0, stream_options={"include_usage": True}
        )
        started = time.perf_counter()
        first = 0.0
        tokens = 0
        async with self.http.stream("POST", f"{self.url}/chat/completions", json=body) as response:
            response.raise_for_status()
            async for line in response.aiter_lines():
                if not line.startswith("data: {"):
                    continue
                event = json.loads(line.removeprefix("data: "))
                if event["choices"] and event["choices"][0]["delta"].get("content") and not first:
                    first = time.perf_counter() - started
                if event.get("usage"):
                    tokens = event["usage"]["completion_tokens"]
        total = time.perf_counter() - started
        return first or total, total, tokens  # no text at all: the answer came at the end


def _checks(client: Client) -> list[tuple[str, LLMMessage, dict[str, Any], dict[str, Any]]]:
    """Each check the model's answers allow: name, message, this client's arguments, the
    server's request fields."""
    info = client.model_info
    tools = [{"type": "function", "function": dict(WEATHER.schema)}]
    checks: list[tuple[str, LLMMessage, dict[str, Any], dict[str, Any]]] = []
    if info["function_calling"]:
        named = {"type": "function", "function": {"name": WEATHER.name}}
        checks += [
            ("forced calls, required", ASK, {"tools": [WEATHER], "tool_choice": "required"},
             {"tools": tools, "tool_choice": "required"}),
            ("forced calls, named tool", ASK, {"tools": [WEATHER], "tool_choice": WEATHER},
             {"tools": tools, "tool_choice": named}),
        ]  # fmt: skip
    if info["json_output"] and info["structured_output"]:
        schema = {"name": "Verdict", "schema": Verdict.model_json_schema()}
        checks.append(
            ("structured output", FORM, {"json_output": Verdict},
             {"response_format": {"type": "json_schema", "json_schema": schema}}),
        )  # fmt: skip
    elif info["json_output"]:
        checks.append(
            ("JSON mode", FORM, {"json_output": True}, {"response_format": {"type": "json_object"}})
        )
    return checks


def _our_answer_valid(result: CreateResult, structured: bool, calls: bool) -> bool:
    if calls:
        found = result.content if isinstance(result.content, list) else []
        return _calls_valid([(call.name, call.arguments) for call in found])
    return isinstance(result.content, str) and _json_valid(result.content, structured)


def _server_answer_valid(choice: dict[str, Any], structured: bool, calls: bool) -> bool:
    message = choice["message"]
    if calls:
        found = message.get("tool_calls") or []
        return _calls_valid([(c["function"]["name"], c["function"]["arguments"]) for c in found])
    return _json_valid(message.get("content") or "", structured)


async def _validity(client: Client, server: Server, seeds: int) -> dict[str, Any]:
    structured = client.model_info["structured_output"]
    numbers: dict[str, Any] = {}
    for name, message, ours_arguments, server_fields in _checks(client):
        ours, theirs = Tally(), Tally()
        calls = "tools" in ours_arguments
        for seed in range(seeds):
            sampled = {"do_sample": True, **SAMPLED, "top_k": 0, "seed": seed}
            result = await client.create([message], **ours_arguments, extra_create_args=sampled)
            ours.add(_our_answer_valid(result, structured, calls), result.finish_reason == "length")
            choice = await server.answer(message, **SAMPLED, top_k=-1, seed=seed, **server_fields)
            theirs.add(
                _server_answer_valid(choice, structured, calls), choice["finish_reason"] == "length"
            )
        numbers[name] = {"ours": ours.counts, "vllm": theirs.counts}
    return numbers


async def _our_stream(client: Client, message: LLMMessage) -> tuple[float, float, int]:
    started = time.perf_counter()
    first = 0.0
    async for item in client.create_stream([message]):
        if isinstance(item, str) and item and not first:
            first = time.perf_counter() - started
        elif isinstance(item, CreateResult):
            total = time.perf_counter() - started
            return first or total, total, item.usage.completion_tokens
    raise AssertionError("the stream ended without a result")


async def _speed(client: Client, server: Server, repeats: int) -> dict[str, float]:
    """Back-to-back pairs (their order alternates): ratios of first chunk and of tokens/s."""
    await _our_stream(client, STORY)  # warm-up for both: the server's prefix cache too
    await server.stream(STORY)
    pairs: list[tuple[tuple[float, float, int], tuple[float, float, int]]] = []
    for repeat in range(repeats):
        if repeat % 2:
            bare = await server.stream(STORY)
            ours = await _our_stream(client, STORY)
        else:
            ours = await _our_stream(client, STORY)
            bare = await server.stream(STORY)
        pairs.append((ours, bare))
    return {
        "first_chunk_ours_s": statistics.median(ours[0] for ours, _ in pairs),
        "first_chunk_bare_s": statistics.median(bare[0] for _, bare in pairs),
        "tokens_per_s_ours": statistics.median(ours[2] / ours[1] for ours, _ in pairs),
        "tokens_per_s_bare": statistics.median(bare[2] / bare[1] for _, bare in pairs),
        "first_chunk_vs_bare": statistics.median(ours[0] / bare[0] for ours, bare in pairs),
        "tokens_per_s_vs_bare": statistics.median(
            (ours[2] / ours[1]) / (bare[2] / bare[1]) for ours, bare in pairs
        ),
    }


async def _measure(
    url: str, model: str, served: str, arguments: argparse.Namespace
) -> dict[str, Any]:
    client = Client(
        model_name=model,
        base_url=url,
        served_model_name=served,
        max_new_tokens=arguments.max_new_tokens,
        do_sample=False,
    )
    try:
        async with httpx.AsyncClient(timeout=600) as http:
            server = Server(http, url, served, arguments.max_new_tokens)
            return {
                "validity": await _validity(client, server, arguments.seeds),
                **await _speed(client, server, arguments.repeats),
            }
    finally:
        await client.close()


@contextmanager
def _served(arguments: argparse.Namespace) -> Iterator[tuple[str, str]]:
    """The server's URL and the model (local tokenizer) to use: given, or started here."""
    if arguments.base_url:
        if not arguments.model:
            raise SystemExit("--base-url needs --model (the model the server serves)")
        yield arguments.base_url, arguments.model
        return
    python = arguments.vllm_python or vllm_python()
    if not python:
        raise SystemExit("give --base-url, or --vllm-python (or VLLM_TEST_PYTHON) to start one")
    with tempfile.TemporaryDirectory() as scratch:
        model = (
            Path(arguments.model) if arguments.model else build_tiny_model(Path(scratch) / "tiny")
        )
        parser = ("--enable-auto-tool-choice", "--tool-call-parser", arguments.tool_call_parser)
        with vllm_server(python, model, Path(scratch) / "vllm.log", *parser) as url:
            yield url, str(model)


def _targets(numbers: dict[str, Any], seeds: int) -> list[Target]:
    targets = [
        Target(
            f"{name} by this client, valid or cut off",
            seeds - counts["ours"]["invalid"],
            ">=",
            seeds,
            "",
        )
        for name, counts in numbers["validity"].items()
    ]
    return [
        *targets,
        Target("first chunk vs bare stream", numbers["first_chunk_vs_bare"], "<=", TARGET_TTFT),
        Target("tokens/s vs bare stream", numbers["tokens_per_s_vs_bare"], ">=", TARGET_RATE),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--base-url", help="a running vLLM server's API (http://HOST:PORT/v1)")
    parser.add_argument("--model", help="the served model (directory or hub id); default: offline")
    parser.add_argument("--served-model-name", help="its name on the server (default: --model)")
    parser.add_argument("--vllm-python", help="a Python with vLLM, to start a server here")
    parser.add_argument(
        "--tool-call-parser",
        default="hermes",
        help="the parser of the server started here (vLLM's own tool_choice needs one)",
    )
    parser.add_argument("--seeds", type=int, default=20, help="sampled answers of each kind")
    parser.add_argument("--repeats", type=int, default=6, help="streamed pairs")
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--json", type=Path, help="write the numbers here")
    arguments = parser.parse_args(argv)
    with _served(arguments) as (url, model):
        served = arguments.served_model_name or model
        numbers = asyncio.run(_measure(url, model, served, arguments))
    limit = arguments.max_new_tokens
    print(f"{Path(model).name} on {url}, {arguments.seeds} seeds, {limit} tokens at most:")
    print(f"  {'':26} {'this client':>24}   {'vLLM own API':>24}")
    for name, counts in numbers["validity"].items():
        ours, theirs = (
            f"{c['valid']} valid, {c['cut_off']} cut off, {c['invalid']} invalid"
            for c in (counts["ours"], counts["vllm"])
        )
        print(f"  {name:26} {ours:>24}   {theirs:>24}")
    print(
        f"  {'first chunk':26} {numbers['first_chunk_ours_s'] * 1000:>21.1f} ms   "
        f"{numbers['first_chunk_bare_s'] * 1000:>21.1f} ms (bare stream)"
    )
    print(
        f"  {'tokens/s':26} {numbers['tokens_per_s_ours']:>24.1f}   "
        f"{numbers['tokens_per_s_bare']:>24.1f} (bare stream)"
    )
    numbers["targets"] = print_targets(_targets(numbers, arguments.seeds))
    if arguments.json:
        arguments.json.write_text(json.dumps(numbers, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
