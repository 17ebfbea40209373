"""Tool-call formats: how models write calls, how to read them back, and which one a model uses."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

FormatName = Literal["hermes", "llama3", "mistral"]

_DECODER = json.JSONDecoder(strict=False)  # constrained strings may hold raw control characters
_SEPARATORS = " \t\r\n;,"


class MalformedToolCallError(ValueError):
    """The answer looks like a tool call but cannot be read as one."""


@dataclass(frozen=True)
class ParsedCall:
    """One tool call read from the answer; ``arguments`` is a JSON object as a string."""

    name: str
    arguments: str


@dataclass(frozen=True)
class ParsedAnswer:
    """The calls found in an answer and the text beside them."""

    calls: list[ParsedCall]
    text: str


def arguments_json(arguments: Any) -> str:
    """Normalise call arguments (a dict, or a JSON string of one) to a JSON object string."""
    if isinstance(arguments, str):
        try:
            arguments = _DECODER.decode(arguments) if arguments.strip() else {}
        except json.JSONDecodeError as error:
            raise MalformedToolCallError(f"arguments are not JSON: {arguments!r}") from error
    if not isinstance(arguments, dict):
        raise MalformedToolCallError(f"arguments must be a JSON object, not {arguments!r}")
    return json.dumps(arguments, ensure_ascii=False)


def _call(value: Any, *, arguments_required: bool) -> ParsedCall | None:
    """Read ``{"name": ..., "arguments": {...}}`` (or ``parameters``); None for other shapes."""
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        return None
    key = next((k for k in ("arguments", "parameters") if k in value), None)
    if key is None and arguments_required:
        return None
    return ParsedCall(value["name"], arguments_json(value[key] if key else {}))


def _decode_object(text: str, start: int) -> tuple[Any, int]:
    try:
        return _DECODER.raw_decode(text, start)
    except json.JSONDecodeError as error:
        raise MalformedToolCallError(f"tool call is not valid JSON: {text[start:]!r}") from error


def _skip(text: str, position: int) -> int:
    while position < len(text) and text[position] in _SEPARATORS:
        position += 1
    return position


def _join(*parts: str) -> str:
    return "\n".join(part.strip() for part in parts if part.strip())


# -- Hermes / Qwen: <tool_call>{"name": ..., "arguments": {...}}</tool_call> ----------------

_HERMES_OPEN = "<tool_call>"
_HERMES_CLOSE = "</tool_call>"


def parse_hermes(text: str) -> ParsedAnswer:
    """Calls in ``<tool_call>`` blocks, as Qwen 2.5/3, Hermes 2/3 and many fine-tunes write them.

    A last block left open at the end of the answer is read when its JSON is complete.
    """
    calls: list[ParsedCall] = []
    beside: list[str] = []
    position = 0
    while (start := text.find(_HERMES_OPEN, position)) >= 0:
        beside.append(text[position:start])
        body_start = start + len(_HERMES_OPEN)
        end = text.find(_HERMES_CLOSE, body_start)
        body = text[body_start:] if end < 0 else text[body_start:end]
        value, used = _decode_object(body, _skip(body, 0))
        if body[used:].strip():
            raise MalformedToolCallError(f"unexpected text in a tool call: {body!r}")
        call = _call(value, arguments_required=False)
        if call is None:
            raise MalformedToolCallError(f"a tool call needs a name: {body!r}")
        calls.append(call)
        position = len(text) if end < 0 else end + len(_HERMES_CLOSE)
    beside.append(text[position:])
    return ParsedAnswer(calls, _join(*beside))


# -- Llama 3.x: {"name": ..., "parameters": {...}}, optionally after <|python_tag|> -----------

_LLAMA_CALL = re.compile(r'\{\s*"name"\s*:')
_PYTHON_TAG = "<|python_tag|>"


def parse_llama3(text: str) -> ParsedAnswer:
    """JSON calls as Llama 3.1-3.3 write them, several separated by ``;`` or new lines.

    A JSON object without ``parameters`` (or ``arguments``) is an ordinary answer, not a call.
    """
    text = text.replace(_PYTHON_TAG, "")
    match = _LLAMA_CALL.search(text)
    if match is None:
        return ParsedAnswer([], text.strip())
    calls: list[ParsedCall] = []
    position = match.start()
    while position < len(text) and text[position] == "{":
        value, end = _decode_object(text, position)
        call = _call(value, arguments_required=True)
        if call is None:
            break
        calls.append(call)
        position = _skip(text, end)
    if not calls:
        return ParsedAnswer([], text.strip())
    return ParsedAnswer(calls, _join(text[: match.start()], text[position:]))


# -- Mistral: [TOOL_CALLS][{...}, ...] (v3) or [TOOL_CALLS]name[ARGS]{...} (v11+) ------------

_MISTRAL_MARKER = "[TOOL_CALLS]"
_MISTRAL_NAMED = re.compile(r"\s*([^\s\[{]+)\s*(?:\[CALL_ID\]\s*[^\s\[]*\s*)?\[ARGS\]\s*")


def _mistral_list(text: str, start: int) -> tuple[list[ParsedCall], int]:
    values, end = _decode_object(text, start)
    if not isinstance(values, list) or not values:
        raise MalformedToolCallError(f"[TOOL_CALLS] must be followed by a list of calls: {text!r}")
    calls = [_call(value, arguments_required=False) for value in values]
    if any(call is None for call in calls):
        raise MalformedToolCallError(f"every Mistral tool call needs a name: {text!r}")
    return [call for call in calls if call is not None], end


def _parse_bare_mistral_list(text: str) -> ParsedAnswer:
    """A leading JSON list of calls, as left when ``[TOOL_CALLS]`` was decoded away."""
    stripped = text.lstrip()
    if stripped.startswith("[{"):
        try:
            calls, end = _mistral_list(stripped, 0)
        except MalformedToolCallError:
            return ParsedAnswer([], text.strip())
        return ParsedAnswer(calls, stripped[end:].strip())
    return ParsedAnswer([], text.strip())


def parse_mistral(text: str) -> ParsedAnswer:
    """Mistral calls: a JSON list after ``[TOOL_CALLS]``, or ``name[ARGS]{...}`` in newer models.

    Without the marker (decoded away as a special token), a leading JSON list of calls counts.
    """
    start = text.find(_MISTRAL_MARKER)
    if start < 0:
        return _parse_bare_mistral_list(text)
    calls: list[ParsedCall] = []
    position = start
    while text.startswith(_MISTRAL_MARKER, position):
        position = _skip(text, position + len(_MISTRAL_MARKER))
        if text.startswith("[", position) and not text.startswith("[ARGS]", position):
            found, position = _mistral_list(text, position)
            calls.extend(found)
        elif named := _MISTRAL_NAMED.match(text, position):
            arguments, position = _decode_object(text, named.end())
            calls.append(ParsedCall(named.group(1), arguments_json(arguments)))
        else:
            raise MalformedToolCallError(f"cannot read the calls after [TOOL_CALLS]: {text!r}")
        position = _skip(text, position)
    return ParsedAnswer(calls, _join(text[:start], text[position:]))


# -- Formats ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ToolCallFormat:
    """How one family of models writes a tool call.

    A call to ``name`` is written ``marker + opening(name) + <arguments JSON> + closing``.
    """

    name: FormatName
    marker: str
    """Text that starts the calls (may be a single token of the vocabulary), or ""."""
    arguments_key: str
    closing: str
    stream_markers: tuple[str, ...]
    """Once streamed text shows one of these, the rest is held back: it may be a call."""
    parse: Callable[[str], ParsedAnswer]
    object_prefix: str = ""
    """Text between the marker and the call's JSON object."""

    def opening(self, tool_name: str) -> str:
        """The text between the marker and the arguments of a call to ``tool_name``."""
        name = json.dumps(tool_name, ensure_ascii=False)
        return self.object_prefix + '{"name": ' + name + ', "' + self.arguments_key + '": '


FORMATS: Mapping[FormatName, ToolCallFormat] = {
    "hermes": ToolCallFormat(
        name="hermes",
        marker=_HERMES_OPEN,
        object_prefix="\n",
        arguments_key="arguments",
        closing="}\n" + _HERMES_CLOSE,
        stream_markers=(_HERMES_OPEN,),
        parse=parse_hermes,
    ),
    "llama3": ToolCallFormat(
        name="llama3",
        marker="",
        arguments_key="parameters",
        closing="}",
        stream_markers=('{"name"', '{ "name"', _PYTHON_TAG),
        parse=parse_llama3,
    ),
    "mistral": ToolCallFormat(
        name="mistral",
        marker=_MISTRAL_MARKER,
        object_prefix="[",
        arguments_key="arguments",
        closing="}]",
        stream_markers=(_MISTRAL_MARKER, '[{"name"'),
        parse=parse_mistral,
    ),
}


def detect_format(chat_template: str | Mapping[str, str] | None) -> FormatName:
    """The call format a chat template teaches its model; Hermes when the template does not say."""
    if isinstance(chat_template, Mapping):
        chat_template = "\n".join(chat_template.values())
    template = chat_template or ""
    if _MISTRAL_MARKER in template:
        return "mistral"
    if _HERMES_OPEN in template:
        return "hermes"
    if _PYTHON_TAG in template or '"parameters"' in template:
        return "llama3"
    return "hermes"


# -- The tokenizer's own parser (transformers ``response_template``) ---------------------------


def has_response_parser(tokenizer: Any) -> bool:
    """True when the tokenizer ships a ``response_template`` that reads tool calls."""
    template = getattr(tokenizer, "response_template", None)
    return isinstance(template, Mapping) and "tool_calls" in template.get("fields", {})


def parse_with_tokenizer(
    tokenizer: Any, text: str, *, prefix: str, tools: list[dict[str, Any]] | None
) -> ParsedAnswer:
    """Read calls with ``tokenizer.parse_response``; ``text`` keeps its special tokens."""
    try:
        message = tokenizer.parse_response(text, prefix=prefix, tools=tools)
    except (ValueError, KeyError) as error:
        raise MalformedToolCallError(f"the tokenizer's response parser failed: {error}") from error
    calls: list[ParsedCall] = []
    for entry in message.get("tool_calls") or []:
        function = entry.get("function", entry) if isinstance(entry, Mapping) else None
        call = _call(function, arguments_required=False)
        if call is None:
            raise MalformedToolCallError(f"the tokenizer's response parser gave {entry!r}")
        calls.append(call)
    content = message.get("content")
    return ParsedAnswer(calls, content.strip() if isinstance(content, str) else "")
