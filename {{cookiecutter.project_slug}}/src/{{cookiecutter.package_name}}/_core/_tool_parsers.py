"""A model's tool-call syntax (:class:`CallFormat`) and reading calls written in it."""

from __future__ import annotations

import ast
import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

ArgumentSyntax = Literal["json", "gemma", "qwen_xml", "glm_xml", "minimax_xml", "markup"]
"""How arguments are written: a JSON object; Gemma 4's ``{key:<|"|>text<|"|>,n:1}``;
Qwen3-Coder's ``<parameter=key>value</parameter>``; GLM's
``<arg_key>key</arg_key><arg_value>value</arg_value>``; MiniMax-M2's
``<parameter name="key">value</parameter>``; or a markup learnt from the template
(:class:`Markup`: DeepSeek's DSML, ``<param name="key">``, ``<key>value</key>``,
``key='value'``...). The XML syntaxes write strings as they are and other values as JSON."""

GEMMA_QUOTE = '<|"|>'
"""The token that delimits strings in Gemma 4's argument syntax."""

ID_SLOT = "\ue000"
"""Stands for the call's id in a format's texts (Mistral writes ids into calls)."""
INDEX_SLOT = "\ue001"
"""Stands for the call's number in the answer (Kimi K2's ``functions.NAME:0``), counted from
the format's ``index_base``."""
NAME_SLOT = "\ue002"
"""Stands for the call's name where a format writes it a second time (``to=NAME<|message|>
<invoke name="NAME">``)."""
KEY_SLOT = "\ue003"
"""Stands for the argument's key in a :class:`Markup`'s texts (``<key>value</key>``)."""
JSON_TYPES = ("string", "integer", "number", "boolean", "null", "array", "object")
"""The JSON types whose values a :class:`Markup` may write differently."""

Schemas = Mapping[str, Mapping[str, Any]]
"""Each tool's parameters schema, by tool name."""

_DECODER = json.JSONDecoder(strict=False)  # constrained strings may hold raw control characters
_TAG = re.compile(r"<[^<>\s]+>|\[[A-Z_/]+\]")
_NAME = re.compile(r"\s*([\w.\-]+)")
_SEPARATORS = r"[\s;,]*"
_QWEN_PARAMETER = re.compile(r"\s*<parameter=([^>\n]+)>\n?(.*?)\n?</parameter>", re.DOTALL)
_GEMMA_KEY = re.compile(r"([^:{}\[\],\s]+)\s*:")
_GEMMA_SCALAR = re.compile(r"[^,}\]\s]+")
_GLM_ARGUMENT = re.compile(r"\s*<arg_key>(.*?)</arg_key>\s*<arg_value>(.*?)</arg_value>", re.DOTALL)
_MINIMAX_PARAMETER = re.compile(r'\s*<parameter name="([^"]+)">(.*?)</parameter>', re.DOTALL)
_XML_ARGUMENTS: Mapping[str, re.Pattern[str]] = {
    "qwen_xml": _QWEN_PARAMETER,
    "glm_xml": _GLM_ARGUMENT,
    "minimax_xml": _MINIMAX_PARAMETER,
}
_ARGUMENT_KEYS = ("arguments", "parameters")
_MARKUP_KEY = r"([\w.\-$@]+)"
_CDATA = re.compile(r"<!\[CDATA\[(.*)\]\]>", re.DOTALL)
_BARE_SCALAR = re.compile(r"True|False|None|-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
_PYTHON_LITERALS: Mapping[str, Any] = {"True": True, "False": False, "None": None}


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


@dataclass(frozen=True)
class Markup:
    """Arguments written as learnt markup: each ``opening KEY middle VALUE closing``, with
    ``separator`` between two. ``middle`` and ``closing`` may depend on the value's JSON type
    (DeepSeek's ``string="true"``, Kimi K3's ``type="number"``, quotes around strings); the
    ``closing`` may repeat the key (:data:`KEY_SLOT`). Values are written bare: strings as they
    are, other values as JSON or, for the types in ``python``, as Python literals (Jinja's
    ``string`` filter: ``True``, ``[False, 8]``); both are read."""

    opening: str
    typed: tuple[tuple[str, str, str], ...]
    """``(JSON type, middle, closing)`` for ``string``, ``integer`` and the types learnt."""
    separator: str
    python: frozenset[str] = frozenset()
    """The JSON types whose values are written as Python literals."""

    def texts(self, kind: str) -> tuple[str, str]:
        """The middle and closing written around a value of JSON type ``kind`` (a type not
        learnt is written as integers are)."""
        found = {name: (middle, closing) for name, middle, closing in self.typed}
        if kind in found:
            return found[kind]
        return found.get("number" if kind == "integer" else "integer", found["string"])

    @property
    def uniform(self) -> bool:
        """Whether every type is written with the same texts."""
        return len({(middle, closing) for _, middle, closing in self.typed}) == 1


@dataclass(frozen=True)
class CallFormat:
    """How a model writes tool calls: ``calls_open call (separator call)* calls_close``.

    One call is ``call_open NAME between ARGUMENTS call_close`` (the arguments first when
    ``name_first`` is false). When a call is one JSON object (``json_keys`` names its name and
    arguments keys), ``json_open`` and ``json_close`` are the texts around that object.
    """

    calls_open: str
    call_open: str
    between: str
    call_close: str
    calls_close: str
    separator: str | None
    """Text between two calls; None: the template writes one call per answer."""
    arguments: ArgumentSyntax = "json"
    name_first: bool = True
    sorted_keys: bool = False
    """Arguments are written with their keys sorted (Gemma 4), not in the schema's order."""
    json_keys: tuple[str, str] | None = None
    json_open: str = ""
    json_close: str = ""
    prompted: str = ""
    """The start of the opening that the generation prompt already writes (Functionary v3.2's
    ``>>>``): the model's answer goes on from there, so it is read with this text before it."""
    markup: Markup | None = None
    """How arguments are written, where ``arguments`` is ``markup``."""
    index_base: int = 0
    """The number of the first call, where calls are numbered (:data:`INDEX_SLOT`)."""

    def after_prompt(self) -> CallFormat:
        """The format of one call as the model writes it after the prompt: without the part
        of the first call's opening that the prompt holds, numbered 0."""
        calls_open = _without_start(self.calls_open, self.prompted)
        rest = self.prompted[len(self.calls_open) - len(calls_open) :]
        first = replace(
            self,
            calls_open=calls_open,
            call_open=_without_start(self.call_open, rest),
            json_open=_without_start(self.json_open, rest),
            prompted="",
        )
        if INDEX_SLOT not in self.between + self.call_open + self.call_close:
            return first
        number = str(self.index_base)
        return replace(  # the first call's number
            first,
            call_open=first.call_open.replace(INDEX_SLOT, number),
            between=first.between.replace(INDEX_SLOT, number),
            call_close=first.call_close.replace(INDEX_SLOT, number),
        )

    @property
    def opening(self) -> str:
        """The text before the first call's name (or its JSON object)."""
        return self.calls_open + (self.json_open if self.json_keys else self.call_open)

    @property
    def has_marker(self) -> bool:
        """Whether calls open with a marker (not just a JSON object)."""
        return bool(self.opening.strip())


def _without_start(text: str, start: str) -> str:
    """``text`` without the longest beginning it shares with ``start``."""
    shared = 0
    while shared < min(len(text), len(start)) and text[shared] == start[shared]:
        shared += 1
    return text[shared:]


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


def lenient(text: str) -> str:
    """A regex for ``text`` in which any run of whitespace may be any (or no) whitespace."""
    pieces = [
        re.escape(piece)
        .replace(re.escape(ID_SLOT), "[A-Za-z0-9]+")
        .replace(re.escape(INDEX_SLOT), "[0-9]+")
        .replace(re.escape(NAME_SLOT), r"[\w.\-]+")
        .replace(re.escape(KEY_SLOT), _MARKUP_KEY)
        for piece in text.split()
    ]
    return r"\s*" + r"\s*".join(pieces) + (r"\s*" if pieces else "")


# -- Arguments ---------------------------------------------------------------------------------


def read_arguments(
    syntax: ArgumentSyntax,
    text: str,
    start: int,
    schema: Mapping[str, Any] | None = None,
    markup: Markup | None = None,
) -> tuple[dict[str, Any], int]:
    """The arguments written at ``start`` in ``syntax``, and where they end.

    ``schema`` (the tool's parameters) types the values of the XML syntaxes, which write
    strings bare: a value whose property is not a string is read as JSON where it parses.
    Whitespace around an XML value separates it from its tags, as templates write it.

    Raises:
        MalformedToolCallError: no arguments in that syntax start there.
    """
    if syntax == "json":
        position = _skip_space(text, start)
        try:
            value, end = _DECODER.raw_decode(text, position)
        except json.JSONDecodeError as error:
            raise MalformedToolCallError(f"arguments are not JSON: {text[start:]!r}") from error
        return json.loads(arguments_json(value)), end
    if syntax == "gemma":
        value, end = _gemma_value(text, _skip_space(text, start))
        if not isinstance(value, dict):
            raise MalformedToolCallError(f"arguments must be an object: {text[start:end]!r}")
        return value, end
    properties = (schema or {}).get("properties") or {}
    if syntax == "markup":
        if markup is None:
            raise MalformedToolCallError("markup arguments need the learnt markup")
        return _markup_arguments(markup, text, start, properties)
    pattern = _XML_ARGUMENTS[syntax]
    arguments: dict[str, Any] = {}
    end = start
    while match := pattern.match(text, end):
        key = match.group(1).strip()
        arguments[key] = _typed(match.group(2).strip(), properties.get(key))
        end = match.end()
    return arguments, end


@functools.lru_cache(maxsize=16)
def _markup_head(markup: Markup) -> re.Pattern[str]:
    """The regex of one argument's opening, key (group ``key``) and middle (the middle of
    ``markup.typed[i]`` in group ``t<i>``; the longest middles are tried first)."""
    order = sorted(range(len(markup.typed)), key=lambda i: -len(markup.typed[i][1]))
    middles = "|".join(f"(?P<t{i}>{lenient(markup.typed[i][1])})" for i in order)
    key = _MARKUP_KEY.replace("(", "(?P<key>", 1)
    return re.compile(lenient(markup.opening) + key + "(?:" + middles + ")")


@functools.lru_cache(maxsize=64)
def _markup_value(closing: str) -> re.Pattern[str]:
    """The regex of a value (group 1) then ``closing`` (the key in place), not the whitespace
    after it (a line before the call's closing is the call's)."""
    pattern = lenient(closing)
    if not closing[-1:].isspace():
        pattern = pattern.removesuffix(r"\s*")
    return re.compile(r"(.*?)" + pattern, re.DOTALL)


def _markup_arguments(
    markup: Markup, text: str, start: int, properties: Mapping[str, Any]
) -> tuple[dict[str, Any], int]:
    """Arguments in ``markup`` from ``start``, and where they end."""
    head = _markup_head(markup)
    separator = re.compile(lenient(markup.separator)) if markup.separator.strip() else None
    arguments: dict[str, Any] = {}
    end = start
    while True:
        position = end
        if arguments and separator is not None:
            found = separator.match(text, end)
            if found is None:
                break
            position = found.end()
        opened = head.match(text, position)
        if opened is None:
            break
        key = opened.group("key")
        index = next(i for i in range(len(markup.typed)) if opened.group(f"t{i}") is not None)
        closing = markup.typed[index][2].replace(KEY_SLOT, key)
        if not closing.strip():
            try:
                value, end = _bare_value(text, opened.end())
            except MalformedToolCallError:
                break
            arguments[key] = value
            continue
        closed = _markup_value(closing).match(text, opened.end())
        if closed is None:
            break
        raw = closed.group(1).strip()
        cdata = _CDATA.fullmatch(raw)
        raw = cdata.group(1) if cdata else raw
        as_text = markup.typed[index][0] == "string" and not markup.uniform
        value = raw if as_text else _typed(raw, properties.get(key))
        arguments[key] = value
        end = closed.end()
    return arguments, end


def _bare_value(text: str, start: int) -> tuple[Any, int]:
    """A value written with nothing around it: JSON, or a Python literal (``True``,
    ``['a', 1]``) as Jinja's ``string`` filter writes it."""
    try:
        return _DECODER.raw_decode(text, start)
    except json.JSONDecodeError:
        pass
    if text.startswith(("[", "{", "(", "'"), start):
        end = _literal_end(text, start)
        try:
            return ast.literal_eval(text[start:end]), end
        except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError) as error:
            raise MalformedToolCallError(f"not a value: {text[start:end]!r}") from error
    match = _BARE_SCALAR.match(text, start)
    if match is None:
        raise MalformedToolCallError(f"no value at {text[start:]!r}")
    return _scalar(match.group()), match.end()


def _literal_end(text: str, start: int) -> int:
    """Where the Python literal (a bracketed container or a quoted string) at ``start`` ends."""
    depth, quote, position = 0, "", start
    while position < len(text):
        char = text[position]
        if quote:
            if char == "\\":
                position += 1
            elif char == quote:
                quote = ""
                if depth == 0:
                    return position + 1
        elif char in "'\"":
            quote = char
        elif char in "[{(":
            depth += 1
        elif char in "]})":
            depth -= 1
            if depth == 0:
                return position + 1
        position += 1
    return position


def _typed(value: str, schema: Mapping[str, Any] | None) -> Any:
    """An XML argument value: text for string properties, else JSON (or a Python literal, as
    templates write booleans with ``| string``) where it parses."""
    kind = (schema or {}).get("type")
    if kind == "string" or (isinstance(kind, list) and kind == ["string"]):
        return value
    try:
        return _scalar(value)
    except MalformedToolCallError:
        return value


def _scalar(text: str) -> Any:
    """A JSON value, or ``True``/``False``/``None`` as Jinja writes Python's."""
    if text in _PYTHON_LITERALS:
        return _PYTHON_LITERALS[text]
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        if text.startswith(("[", "{")):  # a Python list or dict, as Jinja's string filter
            try:
                return ast.literal_eval(text)
            except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
                pass
        raise MalformedToolCallError(f"not a value: {text!r}") from error


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position].isspace():
        position += 1
    return position


def _gemma_value(text: str, start: int) -> tuple[Any, int]:
    """One value in Gemma 4's syntax: ``<|"|>``-quoted strings, bare keys, JSON scalars."""
    if text.startswith(GEMMA_QUOTE, start):
        end = text.find(GEMMA_QUOTE, start + len(GEMMA_QUOTE))
        if end < 0:
            raise MalformedToolCallError(f"unterminated string: {text[start:]!r}")
        return text[start + len(GEMMA_QUOTE) : end], end + len(GEMMA_QUOTE)
    if text.startswith(("{", "["), start):
        return _gemma_container(text, start)
    match = _GEMMA_SCALAR.match(text, start)
    if match is None:
        raise MalformedToolCallError(f"no value at {text[start:]!r}")
    return _scalar(match.group()), match.end()


def _gemma_container(text: str, start: int) -> tuple[Any, int]:
    """A ``{key:value,...}`` object or a ``[value,...]`` list in Gemma 4's syntax."""
    closing = "}" if text[start] == "{" else "]"
    entries: dict[str, Any] = {}
    items: list[Any] = []
    position = start + 1
    while not text.startswith(closing, position := _skip_space(text, position)):
        if closing == "}":
            key = _GEMMA_KEY.match(text, position)
            if key is None:
                raise MalformedToolCallError(f"no key at {text[position:]!r}")
            name = key.group(1).removeprefix(GEMMA_QUOTE).removesuffix(GEMMA_QUOTE)
            entries[name], position = _gemma_value(text, _skip_space(text, key.end()))
        else:
            item, position = _gemma_value(text, position)
            items.append(item)
        position = _skip_space(text, position)
        if text.startswith(",", position):
            position += 1
        elif not text.startswith(closing, position):
            raise MalformedToolCallError(f"expected ',' or {closing!r} at {text[position:]!r}")
    return (entries if closing == "}" else items), position + 1


# -- Calls -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Patterns:
    """The regexes that find one format's calls."""

    start: re.Pattern[str]
    """Where the calls start (ends before the first call's name or JSON object)."""
    next_call: re.Pattern[str]
    """What comes between one call's end and the next call's name or JSON object."""
    between: re.Pattern[str]
    call_close: re.Pattern[str]
    calls_close: re.Pattern[str]


@functools.lru_cache(maxsize=16)
def _patterns(call_format: CallFormat) -> _Patterns:
    opening = call_format.json_open if call_format.json_keys else call_format.call_open
    keys = "|".join(re.escape(key) for key in call_format.json_keys or ("name",))
    json_start = r'(?=\{\s*"(?:' + keys + r')"\s*:)'  # a call's object starts with a key
    start = lenient(call_format.opening) if call_format.has_marker else json_start
    if call_format.has_marker and not call_format.json_keys and not _TAG.search(call_format.opening):
        # an opening that is no tag (`` to=`` before a recipient) starts calls only where a
        # name and what follows it come next; where that holds a tag, it may be left out
        follows = "(?=" + _NAME.pattern + lenient(call_format.between) + ")"
        optional = _TAG.search(call_format.between) and not call_format.calls_open
        start = ("(?:" + start + ")?" if optional else start) + follows
    separator = call_format.separator or ""
    next_call = separator + opening
    separator = lenient(separator) if separator.strip() else _SEPARATORS  # blank: ";" "," too
    if next_call.strip() or not call_format.json_keys:
        next_call = separator + lenient(opening)
    else:  # calls written one after the other (Llama 4): the next one is the next object
        next_call = separator + json_start
    closing = call_format.json_close if call_format.json_keys else call_format.call_close
    return _Patterns(
        start=re.compile(start),
        next_call=re.compile(next_call),
        between=re.compile(lenient(call_format.between)),
        call_close=re.compile(lenient(closing)),
        calls_close=re.compile(lenient(call_format.calls_close)),
    )


def read_calls(text: str, call_format: CallFormat, schemas: Schemas) -> ParsedAnswer:
    """The calls in ``text`` (written in ``call_format``) and the text beside them.

    Calls may stand anywhere in the text, in several groups; whitespace inside the format's
    texts may differ from the template's. In formats whose calls are JSON objects, a call
    written without the format's markers (an object with the name and arguments keys, alone or
    in a list) is read too. ``schemas`` types the values of XML-like arguments.

    Raises:
        MalformedToolCallError: the text opens a call that cannot be read.
    """
    patterns = _patterns(call_format)
    calls: list[ParsedCall] = []
    beside: list[str] = []
    position = search_from = 0
    while match := patterns.start.search(text, search_from):
        found: list[ParsedCall] = []
        search_from = _read_group(text, match.end(), call_format, patterns, schemas, found)
        if found:  # else a JSON object that is no call: it stays text
            beside.append(text[position : match.start()])
            calls.extend(found)
            position = search_from
    beside.append(text[position:])
    if not calls and call_format.json_keys and call_format.has_marker:
        return _read_bare_json(text, call_format)
    return ParsedAnswer(calls, _join(beside))


def _read_group(
    text: str,
    position: int,
    call_format: CallFormat,
    patterns: _Patterns,
    schemas: Schemas,
    calls: list[ParsedCall],
) -> int:
    """Read the calls of one group from ``position`` into ``calls``; return where it ends."""
    call, position = _read_call(text, position, call_format, patterns, schemas)
    if call is None:
        return position
    calls.append(call)
    while match := patterns.next_call.match(text, position):
        try:
            call, end = _read_call(text, match.end(), call_format, patterns, schemas)
        except MalformedToolCallError:
            if call_format.has_marker and call_format.separator is not None:
                raise
            break  # separators only guessed: what follows is text
        if call is None:
            break
        calls.append(call)
        position = end
    if close := patterns.calls_close.match(text, position):
        position = close.end()
    return position


def _read_call(
    text: str, position: int, call_format: CallFormat, patterns: _Patterns, schemas: Schemas
) -> tuple[ParsedCall | None, int]:
    """One call from ``position`` (after its opening) and where it ends; None when a bare JSON
    object there is not a call."""
    if call_format.json_keys:
        value, end = _json_object(text, position)
        call = _json_call(value, call_format.json_keys, bare=not call_format.has_marker)
        if call is None and call_format.has_marker:
            raise MalformedToolCallError(f"a tool call needs a name: {text[position:end]!r}")
    elif call_format.name_first:
        name = _NAME.match(text, position)
        between = patterns.between.match(text, name.end()) if name else None
        if name is None or between is None:
            raise MalformedToolCallError(f"cannot read the call at {text[position:]!r}")
        schema = schemas.get(name.group(1))
        arguments, end = read_arguments(
            call_format.arguments, text, between.end(), schema, call_format.markup
        )
        call = ParsedCall(name.group(1), json.dumps(arguments, ensure_ascii=False))
    else:  # pragma: no cover - learning refuses arguments before a bare name
        raise MalformedToolCallError("arguments before the name are only read in JSON calls")
    if call is not None:
        close = patterns.call_close.match(text, end)
        if close is not None:
            end = close.end()
        elif text[end:].strip():  # a call left open is read only at the end of the answer
            raise MalformedToolCallError(f"unexpected text after a tool call: {text[end:]!r}")
    return call, end


def _json_object(text: str, position: int) -> tuple[Any, int]:
    try:
        return _DECODER.raw_decode(text, _skip_space(text, position))
    except json.JSONDecodeError as error:
        raise MalformedToolCallError(f"tool call is not valid JSON: {text[position:]!r}") from error


def _json_call(value: Any, keys: tuple[str, str], *, bare: bool) -> ParsedCall | None:
    """``{name_key: ..., arguments_key: {...}}`` as a call; None for other values. A bare
    object (no marker before it) must have its arguments to count as a call."""
    name_key, arguments_key = keys
    if not isinstance(value, dict) or not isinstance(value.get(name_key), str):
        return None
    key = next((k for k in (arguments_key, *_ARGUMENT_KEYS) if k in value), None)
    if key is None and bare:
        return None
    return ParsedCall(value[name_key], arguments_json(value[key] if key else {}))


def _read_bare_json(text: str, call_format: CallFormat) -> ParsedAnswer:
    """Calls written as JSON objects without the format's markers, alone or in a list."""
    bare = CallFormat("", "", "", "", "", None, json_keys=call_format.json_keys)
    try:
        return read_calls(text, bare, {})
    except MalformedToolCallError:
        return ParsedAnswer([], text.strip())


def _join(parts: list[str]) -> str:
    return "\n".join(part.strip() for part in parts if part.strip())


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
        call = _json_call(function, ("name", "arguments"), bare=False)
        if call is None:
            raise MalformedToolCallError(f"the tokenizer's response parser gave {entry!r}")
        calls.append(call)
    content = message.get("content")
    return ParsedAnswer(calls, content.strip() if isinstance(content, str) else "")
