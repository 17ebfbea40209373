"""Benchmark tool calling per model: forced calls, the model's own calls read back, grammar costs.

Run from the project root::

    python benchmarks/bench_tools.py                                  # offline tiny models
    python benchmarks/bench_tools.py --model path/to/model --model other/model --json out.json

For each model (``--model``, repeatable; a directory or hub id) it prints the call syntax learnt
from the chat template, then each measurement with its target and PASS or MISS:

- forced calls: ``tool_choice="required"`` (two tools) and a named tool (``get_weather(city:
  str)``, an unbounded string, as in the README), one sampled request per seed at the default
  ``max_new_tokens``; a call is valid when it is exactly one call to an allowed tool whose
  arguments validate against its schema;
- the model's own calls, one and two, as its chat template writes them, read back through
  ``create`` (two: n/a when the template writes one call per answer);
- compiling the forced-call grammar on the model's vocabulary: first (fresh caches, the
  vocabulary built too) and cached, in milliseconds;
- masking: the median time per generated token that the grammar takes (mask and advance).
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
from typing import Annotated, Any, Literal, cast

from autogen_core.models import UserMessage
from autogen_core.tools import FunctionTool, ToolSchema
from transformers import AutoConfig, AutoTokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from _report import Target, print_targets
from scripting import scripted_args
from tiny_models import build_tiny_model
from tool_templates import TEMPLATES, render_answer

from {{ cookiecutter.package_name }} import InvalidAnswerError
from {{ cookiecutter.package_name }} import {{ cookiecutter.client_class_name }} as Client
from {{ cookiecutter.package_name }}._core._config import GenerationSettings
from {{ cookiecutter.package_name }}._core._constrained import Compilers, GrammarState
from {{ cookiecutter.package_name }}._autogen._messages import to_chat_tools

TASK = UserMessage(content="What is the weather in Paris, and the time in Tokyo?", source="user")
OFFLINE_TEMPLATES = ("hermes", "gemma4", "qwen3_coder")
"""Test templates that the offline run builds tiny models for (without ``--model``)."""

TARGET_COMPILE_FIRST_MS = 3000.0
TARGET_COMPILE_CACHED_MS = 1.0
TARGET_MASK_MS = 1.0


def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}."


def local_time(zone: Annotated[Literal["UTC", "CET", "JST"], "time zone"]) -> str:
    """The local time in a time zone."""
    return f"12:00 {zone}"


WEATHER = FunctionTool(get_weather, description="The weather in a city.")
TIME = FunctionTool(local_time, description="The local time in a time zone.")
TOOLS = [WEATHER, TIME]
MCP_FETCH = cast(
    ToolSchema,
    {
        "name": "fetch",
        "description": "Fetches a URL (a tool as MCP servers describe them).",
        "parameters": {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "url": {"type": "string", "format": "uri", "description": "URL to fetch"},
                "max_length": {
                    "type": ["integer", "null"],
                    "default": 5000,
                    "exclusiveMinimum": 0,
                    "exclusiveMaximum": 1000000,
                },
                "headers": {"$ref": "#/$defs/headers"},
                "raw": {"type": "boolean", "default": False, "examples": [True]},
            },
            "required": ["url"],
            "$defs": {"headers": {"type": "object", "additionalProperties": {"type": "string"}}},
        },
    },
)
"""An MCP-style tool: ``$schema``, ``additionalProperties: false``, a format, defaults,
examples, a nullable type and ``$defs``."""
SAMPLING = {"do_sample": True, "temperature": 1.0, "top_p": 1.0, "top_k": 0}

_MASK_SECONDS: list[float] = []
_mask = GrammarState.mask
_accept = GrammarState.accept


def _timed_mask(self: GrammarState, logits: Any) -> None:
    started = time.perf_counter()
    _mask(self, logits)
    _MASK_SECONDS.append(time.perf_counter() - started)


def _timed_accept(self: GrammarState, token_id: int) -> None:
    started = time.perf_counter()
    _accept(self, token_id)
    _MASK_SECONDS[-1] += time.perf_counter() - started


GrammarState.mask = _timed_mask  # type: ignore[method-assign]
GrammarState.accept = _timed_accept  # type: ignore[method-assign]


def _schema(tool: FunctionTool | ToolSchema) -> dict[str, Any]:
    schema = tool.schema if isinstance(tool, FunctionTool) else tool
    return dict(schema.get("parameters") or {})


def _valid(result: Any, allowed: list[FunctionTool | ToolSchema]) -> bool:
    """Exactly one call, to an allowed tool, with arguments that validate against its schema
    (``jsonschema``, formats checked)."""
    import jsonschema

    if result.finish_reason != "function_calls" or len(result.content) != 1:
        return False
    (call,) = result.content
    schemas = {_schema_name(tool): _schema(tool) for tool in allowed}
    if call.name not in schemas:
        return False
    schema = schemas[call.name]
    validator = jsonschema.validators.validator_for(schema)
    checker = validator(schema, format_checker=validator.FORMAT_CHECKER)
    return bool(checker.is_valid(json.loads(call.arguments)))


def _schema_name(tool: FunctionTool | ToolSchema) -> str:
    return tool.name if isinstance(tool, FunctionTool) else tool["name"]


async def _forced(client: Client, seeds: int) -> dict[str, Any]:
    """Valid calls over ``seeds`` sampled requests, for ``required`` and for a named tool."""
    numbers: dict[str, Any] = {}
    kinds: list[tuple[str, Any, list[FunctionTool | ToolSchema]]] = [
        ("required", "required", [*TOOLS]),
        ("named", WEATHER, [WEATHER]),
        ("mcp", "required", [MCP_FETCH]),
    ]
    for label, choice, allowed in kinds:
        valid, tokens, reasons = 0, [], []
        for seed in range(seeds):
            try:
                result = await client.create(
                    [TASK],
                    tools=allowed,
                    tool_choice=choice,
                    extra_create_args={"seed": seed, **SAMPLING},
                )
            except InvalidAnswerError:  # no valid call in the tries allowed: counted invalid
                reasons.append("invalid")
                continue
            valid += _valid(result, allowed)
            tokens.append(result.usage.completion_tokens)
            reasons.append(result.finish_reason)
        numbers[f"{label}_valid"] = valid
        numbers[f"{label}_tokens_median"] = statistics.median(tokens) if tokens else 0
        numbers[f"{label}_finish_reasons"] = sorted(set(reasons))
        numbers[f"{label}_length"] = reasons.count("length")
    return numbers


async def _read_back(client: Client, model: str) -> dict[str, str]:
    """Whether the model's own calls, as its chat template writes them, come back as calls."""
    tokenizer = AutoTokenizer.from_pretrained(model)
    calls = [("get_weather", {"city": "Paris"}), ("local_time", {"zone": "JST"})]
    outcome: dict[str, str] = {}
    for label, wanted in (("read_one", calls[:1]), ("read_two", calls)):
        try:
            answer = render_answer(tokenizer, wanted)
        except Exception:  # the template refuses several calls in one answer (Llama 3.1)
            outcome[label] = "n/a"
            continue
        arguments = {**scripted_args(tokenizer, answer), "max_new_tokens": 512}
        result = await client.create([TASK], tools=TOOLS, extra_create_args=arguments)
        read = [(c.name, json.loads(c.arguments)) for c in result.content] if isinstance(
            result.content, list
        ) else []
        outcome[label] = "PASS" if read == wanted else "MISS"
    return outcome


def _compile_times(client: Client, vocab_size: int) -> dict[str, float]:
    """Milliseconds to compile the forced-call grammar on fresh caches, then cached."""
    tool_calling = client._chat.model.tool_calling
    request = tool_calling.request(to_chat_tools(TOOLS), "required")
    _, grammar, _check = tool_calling.prepare(
        request, GenerationSettings(), prompt_ids=[], starts_in_thought=False, max_new_tokens=512
    )
    assert grammar is not None
    compilers = Compilers(client._chat.tokenizer)
    started = time.perf_counter()
    compilers.compile(grammar, vocab_size)
    first = time.perf_counter() - started
    cached = []
    for _ in range(50):
        started = time.perf_counter()
        compilers.compile(grammar, vocab_size)
        cached.append(time.perf_counter() - started)
    return {"compile_first_ms": first * 1000, "compile_cached_ms": statistics.median(cached) * 1000}


async def _measure(model: str, seeds: int, max_new_tokens: int) -> dict[str, Any]:
    config = AutoConfig.from_pretrained(model)
    vocab_size = int(config.get_text_config().vocab_size)
    client = Client(model_name=model, max_new_tokens=max_new_tokens)
    call_format = client._chat.model.tool_calling.format
    numbers: dict[str, Any] = {
        "model": model,
        "vocab_size": vocab_size,
        "calls_open": call_format.calls_open + call_format.call_open,
        "arguments": call_format.arguments,
        "parallel": call_format.separator is not None,
        "template_renders_tools": client._chat.model.tool_calling.template.renders_tools,
    }
    try:
        numbers.update(_compile_times(client, vocab_size))
        numbers.update(await _read_back(client, model))
        _MASK_SECONDS.clear()
        numbers.update(await _forced(client, seeds))
        numbers["mask_ms_per_token"] = statistics.median(_MASK_SECONDS) * 1000
    finally:
        await client.close()
    return numbers


def _targets(numbers: dict[str, Any], seeds: int) -> list[Target]:
    read = [numbers["read_one"], numbers["read_two"]]
    applicable = [outcome for outcome in read if outcome != "n/a"]
    return [
        Target("forced calls valid, required", numbers["required_valid"], ">=", seeds, " calls"),
        Target("forced calls valid, named tool", numbers["named_valid"], ">=", seeds, " calls"),
        Target("forced calls valid, MCP-style tool", numbers["mcp_valid"], ">=", seeds, " calls"),
        Target(
            "forced calls cut off by the token limit",
            sum(numbers[f"{kind}_length"] for kind in ("required", "named", "mcp")),
            "<=",
            0,
            " calls",
        ),
        Target(
            "native calls read back (one, two)",
            applicable.count("PASS"),
            ">=",
            len(applicable),
            " formats",
        ),
        Target(
            "grammar compile, first", numbers["compile_first_ms"], "<=", TARGET_COMPILE_FIRST_MS, " ms"
        ),
        Target(
            "grammar compile, cached",
            numbers["compile_cached_ms"],
            "<=",
            TARGET_COMPILE_CACHED_MS,
            " ms",
        ),
        Target("mask per token", numbers["mask_ms_per_token"], "<=", TARGET_MASK_MS, " ms"),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--model", action="append", help="model directory or id (repeatable)")
    parser.add_argument("--seeds", type=int, default=20, help="forced calls of each kind")
    parser.add_argument("--max-new-tokens", type=int, default=512)
    parser.add_argument("--json", type=Path, help="write the numbers here")
    arguments = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        models = arguments.model or [
            str(
                build_tiny_model(
                    Path(scratch) / name, chat_template=TEMPLATES[name][0], special_tokens=TEMPLATES[name][1]
                )
            )
            for name in OFFLINE_TEMPLATES
        ]
        for model in models:
            numbers = asyncio.run(_measure(model, arguments.seeds, arguments.max_new_tokens))
            results.append(numbers)
            syntax = "parallel" if numbers["parallel"] else "one call per answer"
            print(
                f"{Path(model).name}: vocabulary {numbers['vocab_size']}, calls open with "
                f"{numbers['calls_open']!r}, {numbers['arguments']} arguments, {syntax}; "
                f"median call: required {numbers['required_tokens_median']:.0f} tokens, "
                f"named {numbers['named_tokens_median']:.0f} tokens"
            )
            numbers["targets"] = print_targets(_targets(numbers, arguments.seeds))
    if arguments.json:
        arguments.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
