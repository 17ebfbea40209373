"""Checks of a baked client on a directory of real chat templates; prints one table.

Run with the baked project's ``src`` and ``tests`` on ``PYTHONPATH`` (the package is
``autogen_huggingface_client``, the default answers)::

    python template_corpus_check.py CORPUS_DIR [--only NAME,...] [--json FILE]

``CORPUS_DIR`` holds ``*.jinja`` chat templates (llama.cpp's ``models/templates``, vLLM's
``examples/tool_chat_template_*.jinja``...). Each template goes on a tiny random model with
the tests' small trained tokenizer, to which the markers written in the template's string
literals (``<|...|>``, DeepSeek's full-width bars, ``[UPPER]``, ``<tag>``) are added as
special tokens, as the real tokenizers have them. Per template it reports:

- ``ctor``: the client is created (an exception is the failure);
- ``format``: the call format learnt (or ``default`` where the template renders no calls);
- ``read1``, ``read2``: the answer the template itself writes for one and two calls (arguments
  out of schema order), scripted into the model, comes back as those calls;
- ``forced``: a forced call (``tool_choice="required"``, sampled) is one valid call, and
  ``own``: its text is what the template writes for that call (whitespace aside; with or
  without what the template writes before every answer after the generation prompt, as
  `` to=`` before the recipient);
- ``history``: a tool call and its result render into the prompt (name, argument, result).

The last line is a JSON object with every row (``--json`` writes it to a file too).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import re
import sys
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from autogen_core import FunctionCall
from autogen_core.models import (
    AssistantMessage,
    FunctionExecutionResult,
    FunctionExecutionResultMessage,
    UserMessage,
)
from autogen_core.tools import ParametersSchema, ToolSchema
from autogen_huggingface_client import HuggingFaceChatCompletionClient as Client
from autogen_huggingface_client._autogen._messages import to_chat_messages, to_chat_tools
from autogen_huggingface_client._core._tiny_models import build_tiny_model
from jsonschema import ValidationError, validate
from scripting import scripted_args
from transformers import AutoTokenizer

MARKER = re.compile(
    r"<\|[^|<>\s]{1,40}\|>|<\uff5c[^\uff5c]{1,60}\uff5c>|\[/?[A-Z_]{3,}\]|</?[A-Za-z_][\w:.\-]{0,30}>"
    r"|<\|[A-Za-z_\"]{1,30}>|<[A-Za-z_\"]{1,30}\|>"
)
"""Marker-like texts; those in a template's string literals become special tokens."""
LITERAL = re.compile(r"'((?:[^'\\]|\\.)*)'|\"((?:[^\"\\]|\\.)*)\"")
BOS = "<|bos|>"
ASK = UserMessage(content="What is the weather in Paris?", source="user")
RESULT_TEXT = "Sunny, 21 degrees."
CALL_ID = "call0abcd"


def _tool(name: str, description: str, properties: dict[str, Any]) -> ToolSchema:
    # Closed, as AutoGen's FunctionTool writes schemas: a forced call of random weights then
    # holds the tool's arguments only, and "own" compares the syntax, not junk arguments
    # (an open schema lets it add properties whose numbers the template re-renders otherwise).
    schema = {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }
    return ToolSchema(name=name, description=description, parameters=cast(ParametersSchema, schema))


WEATHER = _tool(
    "get_weather",
    "The weather in a city for some days.",
    {
        "city": {"type": "string", "maxLength": 12, "description": "The city."},
        "days": {"type": "integer", "description": "How many days."},
    },
)
TIME = _tool(
    "local_time",
    "The local time in a time zone.",
    {"zone": {"type": "string", "maxLength": 12, "description": "The time zone."}},
)
TOOLS = [WEATHER, TIME]
ONE = [("get_weather", {"days": 3, "city": "Paris"})]  # out of the schema's key order
TWO = [*ONE, ("local_time", {"zone": "CET"})]


def markers(template: str) -> list[str]:
    """The marker-like texts in the template's string literals."""
    found: set[str] = set()
    for single, double in LITERAL.findall(template):
        found.update(MARKER.findall(single or double))
    return sorted(found)


def _chat_tools() -> list[dict[str, Any]]:
    tools = to_chat_tools(TOOLS)
    assert tools is not None
    return tools


def native_answer(tokenizer: Any, calls: Sequence[tuple[str, dict[str, Any]]]) -> str | None:
    """The answer text the template writes for ``calls``, in the first form it writes them
    with their values (arguments as a dict or a JSON string; with the tools or without;
    content "" or None); None when it writes none."""
    found = native_texts(tokenizer, calls)
    return None if found is None else found[0]


def native_texts(
    tokenizer: Any, calls: Sequence[tuple[str, dict[str, Any]]]
) -> tuple[str, str] | None:
    """:func:`native_answer`, and the text before it that the template writes before every
    answer, after the generation prompt (`` to=`` before a recipient; often none)."""
    forms = itertools.product((False, True), (_chat_tools(), None), ("", None))
    for as_string, tools, content in forms:
        tool_calls = [
            {
                "id": CALL_ID if index == 0 else f"call{index}abcde"[:9],
                "type": "function",
                "function": {
                    "name": name,
                    "arguments": json.dumps(args, ensure_ascii=False) if as_string else args,
                },
            }
            for index, (name, args) in enumerate(calls)
        ]
        turn = {"role": "assistant", "content": content, "tool_calls": tool_calls}
        user = {"role": "user", "content": "Hi."}
        try:
            full = _ids(tokenizer, [user, turn], tools, False)
            prompt = _ids(tokenizer, [user], tools, True)
        except Exception:  # the template refuses this form: try the next
            continue
        bases = []  # what an empty answer and a text answer share with it is no call
        for answer in ("", "Done."):
            try:
                bases.append(
                    _ids(tokenizer, [user, {"role": "assistant", "content": answer}], tools, False)
                )
            except Exception:
                continue
        shared = min(_shared(base, full) for base in bases)
        start = max(shared, _shared(prompt, full))
        end = min(min(_shared(base[::-1], full[::-1]), len(base) - shared) for base in bases)
        end = min(end, len(full) - start)
        text = tokenizer.decode(full[start : len(full) - end], skip_special_tokens=False)
        preamble = tokenizer.decode(full[min(start, _shared(prompt, full)) : start])
        values = [v for _, args in calls for v in args.values()]
        if all(name in text for name, _ in calls) and all(_written(v, text) for v in values):
            return str(text), str(preamble)
    return None


def _written(value: Any, text: str) -> bool:
    """Whether ``text`` holds ``value``, bare or as JSON writes it in a string."""
    return str(value) in text or json.dumps(value, ensure_ascii=False)[1:-1] in text


def _ids(
    tokenizer: Any, chat: list[dict[str, Any]], tools: Any, generation_prompt: bool
) -> list[int]:
    text = tokenizer.apply_chat_template(
        chat, tools=tools, tokenize=False, add_generation_prompt=generation_prompt
    )
    return list(tokenizer.encode(text, add_special_tokens=False))


def _shared(first: Sequence[int], second: Sequence[int]) -> int:
    length = 0
    while length < min(len(first), len(second)) and first[length] == second[length]:
        length += 1
    return length


def _squeezed(text: str) -> str:
    """``text`` without whitespace, JSON's ``\\uXXXX`` and ``\\/`` escapes written as their
    characters."""
    unescaped = re.sub(r"\\u([0-9a-fA-F]{4})", lambda match: chr(int(match[1], 16)), text)
    unescaped = unescaped.replace("\\/", "/")
    return "".join(unescaped.split())


async def _read(client: Client, tokenizer: Any, answer: str) -> list[tuple[str, Any]]:
    prompt = client._chat.encode(to_chat_messages([ASK]), to_chat_tools(TOOLS)).input_ids
    if tokenizer.decode(prompt[-4:]).rstrip().endswith("<think>"):  # reasoning comes first
        answer = "I will call it.\n</think>\n\n" + answer.rpartition("</think>")[2].lstrip()
    # room for the whole answer: markers that are several tokens here make it long
    scripted = {**scripted_args(tokenizer, answer), "max_new_tokens": 1024}
    result = await client.create([ASK], tools=TOOLS, extra_create_args=scripted)
    if not isinstance(result.content, list):
        return []
    return [(call.name, json.loads(call.arguments)) for call in result.content]


async def _forced(client: Client, tokenizer: Any) -> tuple[bool, bool | None, str]:
    """Whether a forced call is one valid call, whether its text is the template's own for
    that call (None where the template writes no calls), and the text."""
    seen: list[int] = []
    calling = client._chat.model.tool_calling
    original = calling._decode_raw

    def keep(token_ids: list[int]) -> str:
        seen[:] = token_ids
        return original(token_ids)

    calling._decode_raw = keep  # type: ignore[method-assign]
    try:
        result = await client.create(
            [ASK],
            tools=TOOLS,
            tool_choice="required",
            extra_create_args={"seed": 1, "do_sample": True},
        )
    finally:
        calling._decode_raw = original  # type: ignore[method-assign]
    ended = seen[:-1] if result.finish_reason != "length" and seen else seen
    text = tokenizer.decode(ended, skip_special_tokens=False)
    if not isinstance(result.content, list) or len(result.content) != 1:
        return False, False, text
    call = result.content[0]
    tool = next((tool for tool in TOOLS if tool["name"] == call.name), None)
    try:
        validate(json.loads(call.arguments), tool["parameters"] if tool else {"not": {}})
        valid = True
    except (ValueError, ValidationError):
        valid = False
    if not calling.template.renders_calls:
        return valid, None, text
    native = native_texts(tokenizer, [(call.name, json.loads(call.arguments))])
    if native is None:
        return valid, False, text
    own = same_call(native[0], text) or same_call(native[1] + native[0], text)
    return valid, own, text


def same_call(native: str, forced: str) -> bool:
    """Whether ``forced`` is the template's ``native`` text for the same call: whitespace,
    reasoning before it and the call id aside; one may end where the other goes on (the
    template writes a closing the model leaves to its end token, or the other way round)."""
    native, forced = (_squeezed(text.rpartition("</think>")[2]) for text in (native, forced))
    pattern = "[A-Za-z0-9]{9}".join(map(re.escape, native.split(CALL_ID)))
    if re.fullmatch(pattern, forced):
        return True
    return CALL_ID not in native and (native.startswith(forced) or forced.startswith(native))


def _history(client: Client) -> bool:
    """A call and its result render: the prompt holds the name, an argument and the result."""
    call = FunctionCall(id="a1B2c3D4e", name="get_weather", arguments='{"city": "Oslo", "days": 2}')
    result = FunctionExecutionResult(
        content=RESULT_TEXT, name="get_weather", call_id="a1B2c3D4e", is_error=False
    )
    messages = [
        ASK,
        AssistantMessage(content=[call], source="assistant"),
        FunctionExecutionResultMessage(content=[result]),
    ]
    prompt = client._chat.encode(to_chat_messages(messages), to_chat_tools(TOOLS))
    text = client._chat.tokenizer.decode(prompt.input_ids, skip_special_tokens=False)
    counted = client.count_tokens(messages, tools=TOOLS) == len(prompt.input_ids)
    return counted and all(part in text for part in ("get_weather", "Oslo", RESULT_TEXT))


def _format(client: Client) -> str:
    template = client._chat.model.tool_calling.template
    if template.problem:
        return f"not learnt: {template.problem[:70]}"
    if not template.renders_calls:
        return "default"
    call_format = template.call_format
    keys = f" keys={'/'.join(call_format.json_keys)}" if call_format.json_keys else ""
    return f"{call_format.arguments}{keys} opens {call_format.opening.strip()!r}"


async def check(path: Path, workdir: Path) -> dict[str, Any]:
    """The checks of one template."""
    text = path.read_text("utf-8")
    model = build_tiny_model(
        workdir / path.stem,
        chat_template=text,
        special_tokens=[BOS, *markers(text)],
        max_position_embeddings=16384,
    )
    tokenizer = AutoTokenizer.from_pretrained(model)
    tokenizer.bos_token = BOS  # templates write it; the tiny tokenizer has none
    tokenizer.save_pretrained(model)
    row: dict[str, Any] = {"template": path.stem}
    try:
        client = Client(model_name=str(model), max_new_tokens=256)
    except Exception as error:  # the failure this checker exists to find
        row["ctor"] = f"{type(error).__name__}: {error}"[:120]
        return row
    row["ctor"] = "ok"
    tokenizer = client._chat.tokenizer
    try:
        template = client._chat.model.tool_calling.template
        row["format"] = _format(client)
        row["renders"] = "".join(
            flag if on else "-"
            for flag, on in zip(
                "TCR",
                (template.renders_tools, template.renders_calls, template.renders_results),
                strict=True,
            )
        )
        row["problem"] = template.problem
        for key, calls in (("read1", ONE), ("read2", TWO)):
            answer = native_answer(tokenizer, calls) if template.renders_calls else None
            if answer is None:
                row[key] = None
            else:
                row[key] = await _read(client, tokenizer, answer) == list(calls)
        valid, own, forced_text = await _forced(client, tokenizer)
        row["forced"], row["own"], row["forced_text"] = valid, own, forced_text[:200]
        row["history"] = _history(client)
    except Exception as error:
        row["error"] = f"{type(error).__name__}: {error}"[:200]
    finally:
        await client.close()
    return row


def _cell(value: Any) -> str:
    if value is None:
        return "n/a"
    if value is True:
        return "yes"
    if value is False:
        return "NO"
    return str(value)


def passes(row: dict[str, Any]) -> bool:
    """Whether a template's row passes every check that applies to it."""
    checks = ("read1", "read2", "forced", "own", "history")
    return "error" not in row and all(row.get(check) is not False for check in checks)


def table(rows: list[dict[str, Any]]) -> str:
    """The rows as a Markdown table, with counts."""
    columns = ("template", "ctor", "renders", "format", "read1", "read2", "forced", "own")
    lines = ["| " + " | ".join((*columns, "history")) + " |", "|" + "---|" * (len(columns) + 1)]
    for row in rows:
        cells = [_cell(row.get(column)) for column in columns]
        cells.append(_cell(row.get("history")) if "error" not in row else row["error"])
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    calls = [row for row in rows if "C" in row.get("renders", "")]
    good = [row for row in calls if passes(row)]
    built = sum(row["ctor"] == "ok" for row in rows)
    lines.append("")
    lines.append(
        f"{len(rows)} templates, {built} clients created, {len(calls)} render tool calls; "
        f"{len(good)} of those pass every check that applies (native calls read, a forced "
        "call valid and in its own syntax, tool history rendered; n/a: the template refuses "
        "two calls at once)"
    )
    return "\n".join(lines)


async def main(corpus: Path, only: set[str], output: Path | None) -> None:
    rows = []
    with tempfile.TemporaryDirectory() as workdir, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in sorted(corpus.glob("*.jinja")):
            if only and path.stem not in only:
                continue
            rows.append(await check(path, Path(workdir)))
            print(_cell(rows[-1]), file=sys.stderr, flush=True)
    print(table(rows))
    if output is not None:
        output.write_text(json.dumps(rows, indent=1, ensure_ascii=False), "utf-8")
    print(json.dumps(rows, ensure_ascii=False))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--only", default="", help="comma-separated template names")
    parser.add_argument("--json", type=Path, default=None)
    arguments = parser.parse_args()
    names = {name for name in arguments.only.split(",") if name}
    asyncio.run(main(arguments.corpus, names, arguments.json))
