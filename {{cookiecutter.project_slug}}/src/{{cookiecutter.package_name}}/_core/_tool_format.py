"""How a model writes tool calls, learnt from its chat template, and the grammar of one call.

The template renders probe assistant turns (no call, one call, two calls) with distinctive
names, ids and arguments; what the calls add to the empty turn is the model's call syntax.
Where the probes' names and arguments stand in it gives the texts around all calls, around
each call, between two calls, and how the name and the arguments are written
(:class:`~._tool_parsers.CallFormat`).
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

from transformers import PreTrainedTokenizerBase

from ._constrained import lark_json
from ._prompt import CallTurns
from ._text import THINK_CLOSE
from ._types import ChatMessage
from ._tool_parsers import (
    GEMMA_QUOTE,
    ID_SLOT,
    INDEX_SLOT,
    JSON_TYPES,
    KEY_SLOT,
    NAME_SLOT,
    ArgumentSyntax,
    CallFormat,
    MalformedToolCallError,
    Markup,
    read_arguments,
)

SyntaxName = Literal["hermes", "llama3", "mistral"]
"""The call syntaxes that ``tool_call_format`` can name instead of learning the template's."""

DEFAULT_SYNTAX: SyntaxName = "hermes"
"""The syntax taught to models whose template renders no tool calls (and the fallback's)."""

class Render(Protocol):
    """Renders messages (with tools, with the generation prompt or not) through the template,
    assistant turns with calls in the ``call_turns`` form."""

    def __call__(
        self,
        messages: Sequence[ChatMessage],
        tools: list[dict[str, Any]] | None,
        add_generation_prompt: bool,
        /,
        *,
        call_turns: CallTurns = ...,
    ) -> str: ...


Writer = Callable[[Sequence[tuple[str, str, Any]]], str]
"""Writes calls, each ``(name, id, arguments)``, as one assistant answer."""


class LearningError(ValueError):
    """The template's tool calls could not be understood."""


@dataclass(frozen=True)
class _Probe:
    name: str
    call_id: str
    arguments: dict[str, Any]


# Keys out of sorted order (to see whether a template sorts them), values found nowhere else.
_PROBES = (
    _Probe("probe_fn_alpha", "pRbId0001", {"probe_text": "Probe text one", "probe_count": 48213}),
    _Probe("probe_fn_beta", "pRbId0002", {"probe_text": "Probe text two", "probe_count": 7051}),
)
_PROBE_SCHEMA = {  # as AutoGen writes schemas: templates may read any of these keys
    "type": "object",
    "properties": {
        "probe_text": {"type": "string", "description": "A text.", "title": "Probe Text"},
        "probe_count": {"type": "integer", "description": "A count.", "title": "Probe Count"},
    },
    "required": ["probe_text", "probe_count"],
    "additionalProperties": False,
}
_PROBE_TOOLS = [
    {
        "type": "function",
        "function": {"name": p.name, "description": "A probe.", "parameters": _PROBE_SCHEMA},
    }
    for p in _PROBES
]
_TYPES_PROBE = _Probe(  # a value of each other JSON type, then a string
    _PROBES[0].name,
    _PROBES[0].call_id,
    {
        "probe_flag": True,
        "probe_list": [False, 8],
        "probe_map": {"probe_inner": 9},
        "probe_none": None,
        "probe_real": 2.5,
        "probe_text": "Probe text one",
    },
)
_PROBE_RESULT = "Probe result text."
_PROBE_RESULTS: ChatMessage = {
    "role": "tool",
    "content": _PROBE_RESULT,
    "tool_call_id": _PROBES[0].call_id,
    "name": _PROBES[0].name,
}
_CALL_TURNS = (CallTurns(), CallTurns(text_arguments=True))
"""The forms of call turns probed, the usual one first."""
_PROBE_ANSWER: ChatMessage = {"role": "assistant", "content": "Probe answer."}
_TAG = re.compile(r"<[^<>\s]+>|\[[A-Z_/]+\]")
_XML_VALUE_CLOSERS: Mapping[ArgumentSyntax, str] = {
    "qwen_xml": "\n</parameter>",
    "glm_xml": "</arg_value>",
    "minimax_xml": "</parameter>",
    "gemma": GEMMA_QUOTE,
}


class Vocabulary:
    """The tokenizer's added tokens (chat and tool markers), which texts are split around."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        decoder = tokenizer.added_tokens_decoder
        self.ids = {token.content: index for index, token in decoder.items() if token.content}
        """Each added token's id: grammars name them by id (they never match text there)."""
        self.added = frozenset(self.ids)
        self.special = frozenset(
            {*(token.content for token in decoder.values() if token.special), *tokenizer.all_special_tokens}
        )
        longest_first = sorted(self.added, key=len, reverse=True)
        self._added = re.compile("|".join(map(re.escape, longest_first)) or r"(?!)")

    def units(self, text: str) -> list[str]:
        """``text`` as added tokens and single characters."""
        units: list[str] = []
        position = 0
        for match in self._added.finditer(text):
            units.extend(text[position : match.start()])
            units.append(match.group())
            position = match.end()
        units.extend(text[position:])
        return units

    def markers(self, call_format: CallFormat) -> tuple[str, ...]:
        """The format's markers: added tokens and tags (``<...>``, ``[...]``) in its texts."""
        texts = (
            call_format.calls_open,
            call_format.call_open,
            call_format.between,
            call_format.call_close,
            call_format.separator or "",
            call_format.calls_close,
            *_markup_texts(call_format.markup),
        )
        texts = tuple(  # the pieces around a name or key written there
            piece for text in texts for part in text.split(NAME_SLOT) for piece in part.split(KEY_SLOT)
        )
        found = {unit for text in texts for unit in self.units(text) if unit in self.added}
        found.update(match.group() for text in texts for match in _TAG.finditer(text))
        if call_format.arguments == "gemma":
            found.add(GEMMA_QUOTE)
        return tuple(sorted(found))


def _markup_texts(markup: Markup | None) -> tuple[str, ...]:
    if markup is None:
        return ()
    return (markup.opening, markup.separator, *(t for _, *texts in markup.typed for t in texts))


@dataclass(frozen=True)
class ToolTemplate:
    """What a chat template does with tools, and the call syntax the model uses."""

    call_format: CallFormat
    renders_tools: bool
    """The template puts the tools in the prompt."""
    renders_calls: bool
    """The template writes an assistant turn's tool calls."""
    renders_results: bool
    """The template writes tool results."""
    call_turns: CallTurns = field(default_factory=CallTurns)
    """The form in which the template writes assistant turns with calls."""
    problem: str | None = None
    """Why the template's call syntax could not be learnt (the default syntax is used)."""


# -- Built-in syntaxes -------------------------------------------------------------------------


def _hermes(calls: Sequence[tuple[str, str, Any]]) -> str:
    return "\n".join(
        "<tool_call>\n"
        + json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False)
        + "\n</tool_call>"
        for name, _, arguments in calls
    )


def _llama3(calls: Sequence[tuple[str, str, Any]]) -> str:
    return "; ".join(
        json.dumps({"name": name, "parameters": arguments}, ensure_ascii=False)
        for name, _, arguments in calls
    )


def _mistral(calls: Sequence[tuple[str, str, Any]]) -> str:
    written = ", ".join(
        json.dumps({"name": name, "arguments": arguments, "id": call_id}, ensure_ascii=False)
        for name, call_id, arguments in calls
    )
    return f"[TOOL_CALLS] [{written}]"


WRITERS: Mapping[SyntaxName, Writer] = {"hermes": _hermes, "llama3": _llama3, "mistral": _mistral}
"""The built-in syntaxes: Hermes/Qwen ``<tool_call>`` blocks, Llama 3 JSON, Mistral v3."""


def written_format(writer: Writer, vocabulary: Vocabulary) -> CallFormat:
    """The format of a built-in syntax, learnt from what it writes for the probes."""
    one = writer([(p.name, p.call_id, p.arguments) for p in _PROBES[:1]])
    two = writer([(p.name, p.call_id, p.arguments) for p in _PROBES])
    return _analyze(one, two, vocabulary)


# -- Learning from a template ------------------------------------------------------------------


def _assistant(probes: Sequence[_Probe]) -> ChatMessage:
    message: ChatMessage = {"role": "assistant", "content": ""}
    if probes:
        message["tool_calls"] = [
            {
                "id": p.call_id,
                "type": "function",
                "function": {"name": p.name, "arguments": dict(p.arguments)},
            }
            for p in probes
        ]
    return message


def learn_tool_template(render: Render, vocabulary: Vocabulary) -> ToolTemplate:
    """What the template does with tools, learnt from probe renders.

    Calls are probed in the usual form (arguments as dicts, content ``""``), then in the
    others (:data:`_CALL_TURNS`) until one is written and understood; where the probe tools
    break the template, without tools. A template that writes no calls gets the default
    syntax (the client then writes calls and the tools into the prompt itself); one whose
    calls cannot be understood too, with the reason in ``problem``.
    """
    user: ChatMessage = {"role": "user", "content": "Probe request."}
    tools: list[dict[str, Any]] | None = _PROBE_TOOLS

    def attempt(
        messages: Sequence[ChatMessage], turns: CallTurns, generation_prompt: bool = False
    ) -> str | None:
        try:
            return render([user, *messages], tools, generation_prompt, call_turns=turns)
        except Exception:  # a template may refuse any probe (raise_exception, missing keys)
            return None

    prompt = attempt([], CallTurns(), True)
    if prompt is None:  # tools break the template: the client writes them, calls are probed alone
        tools = None
        prompt = attempt([], CallTurns(), True) or ""
    try:
        renders_tools = _PROBES[0].name in prompt and _PROBES[0].name not in render(
            [user], None, True
        )
    except Exception:
        renders_tools = False
    # What the template writes around any answer: what an empty answer and a text answer
    # share with the calls' render (an empty answer alone may open a calls block: DeepSeek R1).
    bases = [
        text
        for answer in (_assistant([]), _PROBE_ANSWER)
        if (text := attempt([answer], CallTurns())) is not None
    ]
    default = written_format(WRITERS[DEFAULT_SYNTAX], vocabulary)
    learnt: ToolTemplate | None = None
    for turns in _CALL_TURNS:
        one = attempt([_assistant(_PROBES[:1])], turns)
        if not bases or one is None:
            continue
        prompted, block = _added_text(bases, prompt, one, vocabulary, _PROBES[0].name)
        if _PROBES[0].name not in block:  # the name elsewhere (in the tools) is no call
            continue
        two = attempt([_assistant(_PROBES)], turns)
        answered = attempt([_assistant(_PROBES[:1]), _PROBE_RESULTS], turns)
        renders_results = _PROBE_RESULT in (answered or "")
        blocks = [block]
        if two is not None and _PROBES[1].name in two:
            blocks.append(_added_text(bases, prompt, two, vocabulary, _PROBES[0].name)[1])
        try:
            call_format = _analyze(
                prompted + blocks[0], prompted + blocks[1] if len(blocks) > 1 else None, vocabulary
            )
        except (LearningError, MalformedToolCallError) as error:
            learnt = learnt or ToolTemplate(
                default, renders_tools, True, renders_results, problem=str(error)
            )
            continue
        call_format = replace(call_format, prompted=prompted)
        if call_format.markup is not None:
            typed = attempt([_assistant([_TYPES_PROBE])], turns)
            if typed is not None:
                added = _added_text(bases, prompt, typed, vocabulary, _PROBES[0].name)[1]
                markup = _typed_markup(added, call_format.markup)
                call_format = replace(call_format, markup=markup)
        return ToolTemplate(call_format, renders_tools, True, renders_results, turns)
    if learnt is not None:
        return learnt
    answered = attempt([_assistant(_PROBES[:1]), _PROBE_RESULTS], CallTurns())
    return ToolTemplate(default, renders_tools, False, _PROBE_RESULT in (answered or ""))


def _added_text(
    bases: Sequence[str], prompt: str, longer: str, vocabulary: Vocabulary, name: str = ""
) -> tuple[str, str]:
    """What the model writes for calls: what ``longer`` has where every one of ``bases`` has
    its answer, after what ``prompt`` (the generation prompt) already holds; and the part of
    the calls' opening that the generation prompt holds (Functionary v3.2's ``>>>``). Tokens
    stay whole. Where the calls would start with the call's ``name``, the name stands where
    other answers write something else (a recipient: ``to=NAME`` for ``to=user``): the text
    that every answer writes before it, after the prompt, is part of the calls."""
    long = vocabulary.units(longer)
    shorts = [vocabulary.units(base) for base in bases]
    shared = min(_common(short, long) for short in shorts)
    prompt_shared = _common(vocabulary.units(prompt), long)
    prefix = max(shared, prompt_shared)
    if name and prefix > prompt_shared and "".join(long[prefix:]).startswith(name):
        shared = prefix = prompt_shared
    suffix = min(
        min(_common(short[::-1], long[::-1]), len(short) - shared) for short in shorts
    )
    suffix = min(suffix, len(long) - prefix)
    prompted = "".join(long[shared:prefix])  # whitespace there is no part of the calls' syntax
    return prompted if prompted.strip() else "", "".join(long[prefix : len(long) - suffix])


def _common(first: Sequence[str], second: Sequence[str]) -> int:
    """Length of the common prefix of two unit lists."""
    length = 0
    for a, b in zip(first, second, strict=False):
        if a != b:
            break
        length += 1
    return length


@dataclass(frozen=True)
class _Found:
    """Where one probe call's name and arguments stand in a rendered block."""

    name: tuple[int, int]
    arguments: tuple[int, int]
    syntax: ArgumentSyntax
    sorted_keys: bool

    @property
    def start(self) -> int:
        return min(self.name[0], self.arguments[0])

    @property
    def end(self) -> int:
        return max(self.name[1], self.arguments[1])

    def between(self, text: str, name: str) -> str:
        """The text between the call's name and its arguments, the name written there again
        as :data:`NAME_SLOT`."""
        first, second = sorted((self.name, self.arguments))
        return text[first[1] : second[0]].replace(name, NAME_SLOT)


def _locate(text: str, probe: _Probe, start: int, markup: Markup | None = None) -> _Found:
    name = text.find(probe.name, start)
    if name < 0:
        raise LearningError(f"the call's name is not where the template writes the call: {text!r}")
    for position in range(start, len(text)):
        syntaxes = _candidate_syntaxes(text, position) + (("markup",) if markup else ())
        for syntax in syntaxes:
            try:
                arguments, end = read_arguments(syntax, text, position, _PROBE_SCHEMA, markup)
            except MalformedToolCallError:
                continue
            if arguments == probe.arguments and not position < name < end:
                written = text[position:end]
                ordered = written.find("probe_count") < written.find("probe_text")
                return _Found((name, name + len(probe.name)), (position, end), syntax, ordered)
    raise LearningError(f"the call's arguments are written in an unknown syntax: {text!r}")


def _candidate_syntaxes(text: str, position: int) -> tuple[ArgumentSyntax, ...]:
    if text.startswith("{", position):
        return ("json", "gemma")
    if text.startswith("<parameter=", position):
        return ("qwen_xml",)
    if text.startswith("<arg_key>", position):
        return ("glm_xml",)
    if text.startswith('<parameter name="', position):
        return ("minimax_xml",)
    return ()


def _analyze(one: str, two: str | None, vocabulary: Vocabulary) -> CallFormat:
    """The format of calls written ``one`` (the first probe) and ``two`` (both probes).

    Arguments in none of the known syntaxes are learnt as markup (:func:`_learn_markup`)."""
    one = _slot_ids(one)
    markup = None
    try:
        first = _locate(one, _PROBES[0], 0)
    except LearningError:
        markup = _learn_markup(one, _PROBES[0], vocabulary)
        if markup is None:
            raise
        first = _locate(one, _PROBES[0], 0, markup)
    head, tail = one[: first.start], one[first.end :]
    call_open, call_close, calls_open, calls_close = head, tail, "", ""
    between, separator, index_base = first.between(one, _PROBES[0].name), None, 0
    pair = _locate_pair(_slot_ids(two), markup) if two is not None else None
    if two is not None and pair is not None:
        two = _slot_ids(two)
        a, b = pair
        ending = two[b.end :]  # may close the calls where one call is left open (DeepSeek R1)
        numbered = _numbered(  # Kimi K2 numbers its calls
            a.between(two, _PROBES[0].name), b.between(two, _PROBES[1].name)
        )
        if (two[: a.start], a.between(two, _PROBES[0].name), numbered is not None) == (
            head, between, True
        ) and ending.startswith(tail):  # fmt: skip
            assert numbered is not None
            between, index_base = numbered
            gap = vocabulary.units(two[a.end : b.start])
            opening = _common(vocabulary.units(head)[::-1], gap[::-1])
            closing = min(_common(vocabulary.units(ending), gap), len(gap) - opening)
            call_open = "".join(gap[len(gap) - opening :])
            call_close = "".join(gap[:closing])
            calls_open = head[: len(head) - len(call_open)]
            calls_close = ending[len(call_close) :]
            separator = "".join(gap[closing : len(gap) - opening])
    name_first = first.name < first.arguments
    if not name_first and first.syntax != "json":
        raise LearningError("the arguments come before the name, outside a JSON object")
    call_format = CallFormat(
        calls_open=calls_open,
        call_open=call_open,
        between=between,
        call_close=call_close,
        calls_close=calls_close,
        separator=separator,
        arguments=first.syntax,
        name_first=name_first,
        sorted_keys=first.sorted_keys,
        markup=markup,
        index_base=index_base,
    )
    if first.syntax == "json":
        call_format = _with_json_body(call_format, one, first)
    if not call_format.json_keys and not call_format.opening.strip():
        raise LearningError("the calls open with no marker and are no JSON objects")
    return call_format


def _numbered(first: str, second: str) -> tuple[str, int] | None:
    """The text between name and arguments of two calls, with the numbers that differ from
    one call to the next as :data:`INDEX_SLOT`, and the first call's number (0 where none
    differ); None when they differ otherwise."""
    pieces, others = re.split(r"(\d+)", first), re.split(r"(\d+)", second)
    if len(pieces) != len(others) or pieces[::2] != others[::2]:
        return None
    numbers = [
        int(piece) for piece, other in zip(pieces[1::2], others[1::2], strict=True) if piece != other
    ]
    text = "".join(
        piece if index % 2 == 0 or piece == other else INDEX_SLOT
        for index, (piece, other) in enumerate(zip(pieces, others, strict=True))
    )
    return text, numbers[0] if numbers else 0


def _locate_pair(text: str, markup: Markup | None = None) -> tuple[_Found, _Found] | None:
    """Where both probe calls stand in ``text``; None when the second cannot be found."""
    try:
        first = _locate(text, _PROBES[0], 0, markup)
        return first, _locate(text, _PROBES[1], first.end, markup)
    except LearningError:
        return None


def _typed_markup(text: str, markup: Markup) -> Markup:
    """``markup`` with the middle and closing of each other JSON type, learnt from ``text``
    (the call of :data:`_TYPES_PROBE`); a type found in no way of writing its value keeps
    the integer's texts."""
    name = text.find(_TYPES_PROBE.name)
    spots = sorted((text.find(key, name), key) for key in _TYPES_PROBE.arguments)
    if name < 0 or spots[0][0] < 0:
        return markup
    typed = list(markup.typed)
    learnt = {kind for kind, _, _ in typed}
    python: set[str] = set()
    for (at, key), (following, _) in itertools.pairwise(spots):
        value = _TYPES_PROBE.arguments[key]
        kind = _json_type(value)
        written = text[at + len(key) : following]
        if kind in learnt or not written.endswith(markup.separator + markup.opening):
            continue
        written = written[: len(written) - len(markup.separator + markup.opening)]
        for form in _written_forms(value):
            found = written.rfind(form)  # after the middle, which may name the type
            if found >= 0:
                closing = written[found + len(form) :].replace(key, KEY_SLOT)
                typed.append((kind, written[:found], closing))
                learnt.add(kind)
                if form == str(value) and form != json.dumps(value):
                    python.add(kind)
                break
    return replace(markup, typed=tuple(typed), python=frozenset(python))


def _json_type(value: Any) -> str:
    """The JSON type of a probe value."""
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    if isinstance(value, float):
        return "number"
    kinds = {int: "integer", str: "string", list: "array", dict: "object"}
    return kinds[type(value)]


def _written_forms(value: Any) -> tuple[str, ...]:
    """The ways templates write a non-string value: JSON (spaced or not), Python."""
    return (json.dumps(value), json.dumps(value, separators=(",", ":")), str(value))


def _learn_markup(text: str, probe: _Probe, vocabulary: Vocabulary) -> Markup | None:
    """The markup in which ``text`` (one call) writes the probe's arguments; None when it
    writes them otherwise.

    Both arguments are found as their key, then their value as written (bare); the text
    before the first key and the text between the first value and the second key end with
    the same opening; the texts after each value start with the same closing (the key in it
    as :data:`KEY_SLOT`), and what is left between them is the separator. Where the string's
    and the integer's middles differ (a type attribute, a quote), each type has its own."""
    name = text.find(probe.name)
    if name < 0:
        return None
    spots = []
    for key, value in probe.arguments.items():
        at = text.find(key, name + len(probe.name))
        written = value if isinstance(value, str) else json.dumps(value)
        found = text.find(written, at + len(key)) if at >= 0 else -1
        if found < 0:
            return None
        spots.append((at, key, found, written, "string" if isinstance(value, str) else "integer"))
    spots.sort()
    (key1_at, key1, value1_at, written1, kind1), (key2_at, key2, value2_at, written2, kind2) = spots
    if not value1_at < key2_at:
        return None
    before = text[text.rfind(probe.name, 0, key1_at) + len(probe.name) : key1_at]
    middles = {kind1: text[key1_at + len(key1) : value1_at], kind2: text[key2_at + len(key2) : value2_at]}
    afters = {
        kind1: text[value1_at + len(written1) : key2_at].replace(key1, KEY_SLOT),
        kind2: text[value2_at + len(written2) :].replace(key2, KEY_SLOT),
    }
    quote = ""  # a string's middle that ends with a quote the integer's lacks: key='value'
    extra = middles["string"][len(middles["integer"]) :]
    if (
        middles["string"].startswith(middles["integer"])
        and extra in ("'", '"')
        and afters["string"].startswith(extra)
    ):
        quote = extra
        afters["string"] = afters["string"][len(quote) :]
    gap, last = afters[kind1], afters[kind2]  # gap: closing, separator, opening; last: closing
    gap_units, before_units = vocabulary.units(gap), vocabulary.units(before)
    opening = _common(gap_units[::-1], before_units[::-1])
    while opening and gap_units[len(gap_units) - opening] in ('"', "'", ">", "/"):
        opening -= 1  # an opening starts no tag's end
    if "\n" in gap_units[len(gap_units) - opening :]:  # nor in a tag, where a line starts it
        opening = len(gap_units) - gap_units.index("\n", len(gap_units) - opening)
    closing = min(_common(gap_units, vocabulary.units(last)), len(gap_units) - opening)
    if not opening and not "".join(gap_units[closing:]).strip():
        return None  # nothing tells one argument from the next
    shared = "".join(gap_units[:closing])
    return Markup(
        opening="".join(gap_units[len(gap_units) - opening :]),
        typed=(
            ("string", middles["string"], quote + shared),
            ("integer", middles["integer"], shared),
        ),
        separator="".join(gap_units[closing : len(gap_units) - opening]),
    )


def _slot_ids(text: str) -> str:
    for probe in _PROBES:
        text = text.replace(probe.call_id, ID_SLOT)
    return text


def _with_json_body(call_format: CallFormat, text: str, found: _Found) -> CallFormat:
    """``call_format`` with its JSON keys, when each call is one JSON object."""
    probe = _PROBES[0]
    begin = len(call_format.calls_open)
    finish = found.end + len(call_format.call_close)
    for position in range(found.start - 1, begin - 1, -1):
        if text[position] != "{":
            continue
        try:
            value, end = json.JSONDecoder().raw_decode(text, position)
        except json.JSONDecodeError:
            continue
        if not isinstance(value, dict) or not found.end <= end <= finish:
            continue
        wanted = (probe.name, probe.arguments)
        keys = [key for expected in wanted for key, item in value.items() if item == expected]
        if len(keys) == 2:
            return replace(
                call_format,
                json_keys=(keys[0], keys[1]),
                json_open=text[begin:position],
                json_close=text[end:finish],
            )
    return call_format


# -- The grammar of a forced call --------------------------------------------------------------


_XML_ARGUMENTS: Mapping[ArgumentSyntax, tuple[str, str, str]] = {
    "qwen_xml": ("<parameter={key}>\n", "\n</parameter>", "\n"),
    "glm_xml": ("<arg_key>{key}</arg_key>\n<arg_value>", "</arg_value>", "\n"),
    "minimax_xml": ('<parameter name="{key}">', "</parameter>", "\n"),
}
"""How the XML syntaxes write one argument: its opening, the text that closes its value, and
the text between two arguments."""


def sorted_properties(schema: Any) -> Any:
    """``schema`` with every object's properties in sorted key order."""
    if isinstance(schema, dict):
        return {
            key: (
                dict(sorted((k, sorted_properties(v)) for k, v in value.items()))
                if key == "properties" and isinstance(value, dict)
                else sorted_properties(value)
            )
            for key, value in schema.items()
        }
    if isinstance(schema, list):
        return [sorted_properties(item) for item in schema]
    return schema


class _Lark:
    """A Lark grammar (llguidance's dialect) being written: named rules, literal pieces."""

    def __init__(self, vocabulary: Vocabulary) -> None:
        self._vocabulary = vocabulary
        self._token_ids = vocabulary.ids
        self.rules: dict[str, str] = {}

    def rule(self, hint: str, body: str) -> str:
        name = f"{re.sub(r'[^a-z0-9_]', '_', hint.lower())[:24]}_{len(self.rules)}"
        self.rules[name] = body
        return name

    def literal(self, text: str) -> str:
        """``text`` as Lark: special tokens by id (they never match text), the id slot as nine
        letters and digits, the rest as strings."""
        pieces: list[str] = []
        for unit in re.split(f"({re.escape(ID_SLOT)})", text):
            if unit == ID_SLOT:
                pieces.append("/[A-Za-z0-9]{9}/")
                continue
            run = ""
            for piece in self._vocabulary.units(unit):
                if piece in self._token_ids:
                    if run:
                        pieces.append(json.dumps(run, ensure_ascii=False))
                        run = ""
                    pieces.append(f"<[{self._token_ids[piece]}]>")
                else:
                    run += piece
            if run:
                pieces.append(json.dumps(run, ensure_ascii=False))
        return " ".join(pieces) or '""'

    def text(self, hint: str, closer: str, schema: Any = None) -> str:
        """A string written raw (an XML value, a Gemma string, reasoning), then ``closer``.

        Its ``enum``/``const`` values when it has them, else text of its ``minLength`` to
        ``maxLength`` characters (a ``pattern`` or ``format`` is checked afterwards): a lexeme
        that ends at the first ``closer`` (lexemes are greedy), or text then the added token
        that starts ``closer`` (text never holds one).
        """
        values = _string_values(schema)
        if values is not None:
            return self.rule(hint, " | ".join(self.literal(value + closer) for value in values))
        lengths = ".*"
        if isinstance(schema, dict) and ({"minLength", "maxLength"} & set(schema)):
            low, high = int(schema.get("minLength", 0)), schema.get("maxLength")
            lengths = ".{" + str(low) + "," + ("" if high is None else str(int(high))) + "}"
        units = self._vocabulary.units(closer)
        split = next((i for i, unit in enumerate(units) if unit in self._token_ids), len(units))
        head, rest = "".join(units[:split]), "".join(units[split:])
        name = f"{re.sub(r'[^A-Z0-9_]', '_', hint.upper())[:24]}_{len(self.rules)}"
        if not head:
            self.rules[name] = f"/(?s:{lengths})/"
        else:
            escaped = re.escape(head).replace("\\\n", "\\n").replace("/", "\\/")
            self.rules[name] = f"/(?s:{lengths}){escaped}/ & ~/(?s:.*{escaped}.+)/"
        return f"{name} {self.literal(rest)}" if rest else name

    def text_lexeme(self) -> str:
        if "TEXT" not in self.rules:
            self.rules["TEXT"] = "/(?s:.*)/"
        return "TEXT"

    def json(self, schema: Any) -> str:
        """A JSON value valid against ``schema``, written as ``json.dumps`` does."""
        return lark_json(schema)

    def sequence(self, hint: str, items: Sequence[tuple[str, bool]], separator: str) -> str:
        """``items`` (each Lark, and whether it is required) in order, ``separator`` between
        the present ones."""
        after = '""'
        first = '""'
        for item, required in reversed(items):
            with_separator = f"{self.literal(separator)} {item} {after}" if separator else f"{item} {after}"
            after_rule = self.rule(hint, with_separator if required else f"{with_separator} | {after}")
            first_rule = self.rule(hint, f"{item} {after}" if required else f"{item} {after} | {first}")
            after, first = after_rule, first_rule
        return first

    def write(self, start: str) -> str:
        """The grammar, adjacent strings joined: llguidance's lexer is greedy, so a string
        that is a prefix of another possible one (``"\\n"`` before ``"\\n</function>"``) must
        not stand alone."""
        lines = [f"start: {_joined(start)}"]
        lines += [f"{name}: {_joined(body)}" for name, body in self.rules.items()]
        return "\n".join(lines)


_ADJACENT_STRINGS = re.compile(r'("(?:[^"\\]|\\.)*")\s+("(?:[^"\\]|\\.)*")')


def _joined(body: str) -> str:
    """``body`` with each run of adjacent Lark strings written as one string."""
    while True:
        joined = _ADJACENT_STRINGS.sub(
            lambda m: json.dumps(json.loads(m[1]) + json.loads(m[2]), ensure_ascii=False), body
        )
        if joined == body:
            return body
        body = joined


def _xml_arguments(lark: _Lark, syntax: ArgumentSyntax, schema: Mapping[str, Any]) -> str:
    """Arguments in an XML syntax: each property in the schema's order, strings bare (any
    text up to the value's closing tag), other values as JSON."""
    opening, closing, separator = _XML_ARGUMENTS[syntax]
    properties = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    items = []
    for key, value in properties.items():
        if _is_string(value):
            written = lark.text("value", closing, value)
        else:
            written = f"{lark.json(value)} {lark.literal(closing)}"
        items.append((f"{lark.literal(opening.format(key=key))} {written}", key in required))
    return lark.sequence("arguments", items, separator)


def _markup_arguments(lark: _Lark, markup: Markup, schema: Mapping[str, Any]) -> str:
    """Arguments in a learnt markup: each property in the schema's order, its value in each
    JSON type it may have, with that type's texts (strings bare, other values as JSON)."""
    properties = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    items = []
    for key, value in properties.items():
        declared = value.get("type") if isinstance(value, dict) else None
        declared = declared if isinstance(declared, list) else [declared] if declared else []
        if _is_string(value):
            kinds = ["string"]
        elif declared := [kind for kind in declared if kind in JSON_TYPES]:
            kinds = declared
        elif markup.uniform and not markup.python:
            kinds = [""]  # any JSON value
        else:  # any value, each type in its own way
            kinds = [kind for kind, _, _ in markup.typed]
        choices = []
        for kind in kinds:
            middle, closing = markup.texts(kind or "integer")
            closing = closing.replace(KEY_SLOT, key)
            head = lark.literal(markup.opening + key + middle)
            if kind == "string" and closing.strip():
                choices.append(f"{head} {lark.text('value', closing, value)}")
                continue
            typed = value if not kind or not isinstance(value, dict) else {**value, "type": kind}
            written = _python_value(lark, typed) if kind in markup.python else lark.json(typed)
            choices.append(f"{head} {written} {lark.literal(closing)}")
        items.append((lark.rule("argument", " | ".join(choices)), key in required))
    return lark.sequence("arguments", items, markup.separator)


def _python_value(lark: _Lark, schema: Any, depth: int = 0) -> str:
    """A value written as Jinja's ``string`` filter writes it (Python's ``str``): ``True``,
    ``None``, ``'text'`` in lists, ``[1, 'a']``; numbers as JSON writes them. Strings hold no
    quote, backslash or line break (Python would escape them); objects are JSON."""
    kind = schema.get("type") if isinstance(schema, dict) else None
    if depth > 8 or not isinstance(kind, str) or "enum" in schema or "const" in schema:
        return lark.json(schema)
    if kind == "boolean":
        return '("True" | "False")'
    if kind == "null":
        return '"None"'
    if kind == "string":
        low, high = int(schema.get("minLength", 0)), schema.get("maxLength")
        lengths = "{" + str(low) + "," + ("" if high is None else str(int(high))) + "}"
        return lark.rule("python_string", "\"'\" /[^'\\\\\\n]" + lengths + "/ \"'\"")
    if kind == "array":
        item = _python_value(lark, schema.get("items", {}), depth + 1)
        return lark.rule("python_list", f'"[" ({item} (", " {item})*)? "]"')
    return lark.json(schema)


def _is_string(schema: Any) -> bool:
    """Whether ``schema`` allows strings only (templates write those bare)."""
    if _string_values(schema) is not None:
        return True
    kind = schema.get("type") if isinstance(schema, dict) else None
    return kind == "string" or kind == ["string"]


def _string_values(schema: Any) -> list[str] | None:
    """The values of a string ``enum`` or ``const``; None when it has none (or not only
    strings)."""
    if not isinstance(schema, dict):
        return None
    values = schema["enum"] if "enum" in schema else [schema["const"]] if "const" in schema else None
    if isinstance(values, list) and values and all(isinstance(v, str) for v in values):
        return values
    return None


def _gemma_value(lark: _Lark, schema: Any, depth: int = 0) -> str:
    """A value in Gemma 4's syntax: ``<|"|>``-quoted strings, bare keys in sorted order,
    JSON numbers and booleans, ``None``. Enums, string lengths and number bounds are enforced;
    other keywords (patterns, formats, ``allOf``, ...) are checked on the answer."""
    quote = lark.literal(GEMMA_QUOTE)
    if not isinstance(schema, dict) or depth > 8:
        return lark.rule("any", _gemma_any(lark))
    if "enum" in schema or "const" in schema:
        values = schema["enum"] if "enum" in schema else [schema["const"]]
        return lark.rule("enum", " | ".join(_gemma_constant(lark, value) for value in values))
    choices = schema.get("anyOf") or schema.get("oneOf")
    if isinstance(choices, list) and choices:
        return lark.rule("choice", " | ".join(_gemma_value(lark, c, depth + 1) for c in choices))
    kinds = schema.get("type")
    kinds = kinds if isinstance(kinds, list) else [kinds] if kinds else []
    if len(kinds) > 1:  # ["integer", "null"]: each type in turn
        each = [_gemma_value(lark, {**schema, "type": kind}, depth + 1) for kind in kinds]
        return lark.rule("types", " | ".join(each))
    if not kinds:
        return lark.rule("any", _gemma_any(lark))
    kind = kinds[0]
    if kind == "string":
        return f"{quote} {lark.text('string', GEMMA_QUOTE, schema)}"
    if kind in ("integer", "number", "boolean"):
        return lark.json(schema)  # written as JSON writes them, bounds enforced
    if kind == "null":
        return '"None"'
    if kind == "array":
        item = _gemma_value(lark, schema.get("items", {}), depth + 1)
        return lark.rule("array", f'"[" ({item} ("," {item})*)? "]"')
    properties = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    items = [
        (f"{json.dumps(key + ':')} {_gemma_value(lark, value, depth + 1)}", key in required)
        for key, value in sorted(properties.items())
    ]
    members = lark.sequence("members", items, ",")
    return lark.rule("object", '"{" ' + members + ' "}"')


def _gemma_constant(lark: _Lark, value: Any) -> str:
    if isinstance(value, str):
        quote = lark.literal(GEMMA_QUOTE)
        return f"{quote} {lark.literal(value)} {quote}"
    if isinstance(value, bool):
        return '"true"' if value else '"false"'
    if value is None:
        return '"None"'
    return json.dumps(json.dumps(value))


def _gemma_any(lark: _Lark) -> str:
    if "gemma_any" not in lark.rules:
        quote = lark.literal(GEMMA_QUOTE)
        lark.rules["gemma_any"] = (
            f'{quote} {lark.text_lexeme()} {quote} | /-?(0|[1-9][0-9]*)(\\.[0-9]+)?/ | "true" '
            '| "false" | "None" | "[" (gemma_any ("," gemma_any)*)? "]" '
            '| "{" (/[A-Za-z_][A-Za-z0-9_]*/ ":" gemma_any ("," /[A-Za-z_][A-Za-z0-9_]*/ ":" '
            'gemma_any)*)? "}"'
        )
    return "gemma_any"


def call_grammar(
    call_format: CallFormat,
    tools: Sequence[Mapping[str, Any]],
    vocabulary: Vocabulary,
    *,
    starts_in_thought: bool,
) -> str:
    """A Lark grammar (llguidance) for exactly one call to one of ``tools`` (chat-template tool
    dicts, their parameters prepared by ``_schema``), written in ``call_format``; the added
    tokens among its texts (markers) are named by id.

    When the prompt leaves the model inside ``<think>``, the reasoning is finished first.
    """
    lark = _Lark(vocabulary)
    calls = []
    for tool in tools:
        function = tool["function"]
        schema = function.get("parameters") or {"type": "object", "properties": {}}
        if call_format.sorted_keys:
            schema = sorted_properties(schema)
        name = function["name"]
        written_name = json.dumps(name, ensure_ascii=False)[1:-1] if call_format.json_keys else name
        if call_format.arguments == "json":
            arguments = lark.json(schema)
        elif call_format.arguments == "gemma":
            arguments = _gemma_value(lark, schema)
        elif call_format.markup is not None:
            arguments = _markup_arguments(lark, call_format.markup, schema)
        else:
            arguments = _xml_arguments(lark, call_format.arguments, schema)
        between = call_format.between.replace(NAME_SLOT, written_name)
        parts = [lark.literal(written_name), lark.literal(between), arguments]
        if not call_format.name_first:
            parts.reverse()
        body = " ".join([lark.literal(call_format.call_open), *parts, lark.literal(call_format.call_close)])
        calls.append(lark.rule("call", body))
    start = " ".join(
        [
            lark.literal(call_format.calls_open),
            lark.rule("calls", " | ".join(calls)),
            lark.literal(call_format.calls_close),
        ]
    )
    if starts_in_thought:
        start = f"{lark.text('thought', THINK_CLOSE)} {lark.literal(chr(10) * 2)} {start}"
    return lark.write(start)


def closers(call_format: CallFormat, *, starts_in_thought: bool) -> tuple[str, ...]:
    """Texts that end free text in a forced call (see ``_constrained.Grammar``)."""
    found = [THINK_CLOSE] if starts_in_thought else []
    if closer := _XML_VALUE_CLOSERS.get(call_format.arguments):
        found.append(closer)
    if call_format.markup is not None:  # up to the key where the closing names it
        closer = call_format.markup.texts("string")[1].split(KEY_SLOT)[0]
        if closer.strip():
            found.append(closer)
    return tuple(found)
