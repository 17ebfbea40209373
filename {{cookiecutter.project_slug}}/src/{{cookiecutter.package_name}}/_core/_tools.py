"""Tool calling for the client: tool choice, forced calls, and calls read from the answer."""

from __future__ import annotations

import functools
import json
import secrets
import string
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ._config import GenerationSettings
from ._config import ModelConfig as Config
from ._constrained import Grammar, require_grammar_library
from ._generation import GenerationOutput
from ._prompt import ChatMessage, PromptRenderer
from ._schema import PreparedSchema, prepare_schema
from ._text import THINK_CLOSE, ResponseParser, single_token_id
from ._tool_format import (
    DEFAULT_SYNTAX,
    WRITERS,
    ToolTemplate,
    Vocabulary,
    call_grammar,
    closers,
    learn_tool_template,
    written_format,
)
from ._types import ChatTool, FunctionCall, ToolChoice, tool_name
from ._tool_parsers import (
    MalformedToolCallError,
    ParsedAnswer,
    Schemas,
    has_response_parser,
    parse_with_tokenizer,
    read_calls,
)

_ID_ALPHABET = string.ascii_letters + string.digits

TOOLS_SECTION = """# Tools

You can call these functions, each described by a JSON schema:
{tools}

To call functions, answer with the calls only, written like this:
{example}"""
"""The system text that brings tools to a template that renders none (and to the fallback)."""

TOOL_RESULT = "<tool_response>\n{content}\n</tool_response>"
"""How a tool result reaches a template that renders none: in a user turn."""

_PROBE_USER: ChatMessage = {"role": "user", "content": "Hello."}


class MalformedToolCallWarning(UserWarning):
    """The model wrote something like a tool call that could not be read; it came back as text."""


def new_call_ids(count: int) -> list[str]:
    """Unique call ids: nine letters and digits, the form Mistral's chat templates require."""
    ids: set[str] = set()
    while len(ids) < count:
        ids.add("".join(secrets.choice(_ID_ALPHABET) for _ in range(9)))
    return list(ids)


@dataclass
class ToolAnswer:
    """What a request's answer is when the model called tools."""

    calls: list[FunctionCall]
    thought: str | None


@dataclass
class ToolRequest:
    """Tool handling for one request: made by :meth:`ToolCalling.request`, completed by
    :meth:`ToolCalling.prepare` once the prompt is known."""

    tools: list[dict[str, Any]] | None
    """Tools to render into the prompt (``None``: no tools, or ``tool_choice="none"``)."""
    forced: list[dict[str, Any]] = field(default_factory=list)
    """Tools one of which must be called (``required`` or a specific tool); empty when free."""
    hold_from: tuple[str, ...] = ()
    """Markers from which streamed text is held back, as it may be a call."""
    marker_token_ids: frozenset[int] = frozenset()
    """Special tokens among the markers: decoded as text (not dropped), so they are seen."""
    prompt_ids: list[int] = field(default_factory=list)
    starts_in_thought: bool = False
    schemas: dict[str, PreparedSchema] = field(default_factory=dict)
    """The forced tools' parameter schemas, prepared; forced arguments are checked on them."""


class CallCheck:
    """A forced answer checked against the called tool's parameters (an ``AnswerCheck``)."""

    def __init__(self, schemas: Mapping[str, PreparedSchema]) -> None:
        self._schemas = schemas

    @property
    def exact(self) -> bool:
        return all(schema.exact for schema in self._schemas.values())

    def errors(self, content: Any) -> list[str]:
        if not isinstance(content, list) or not content:
            return ["the answer is no tool call"]
        found: list[str] = []
        for call in content:
            schema = self._schemas.get(call.name)
            if schema is None:
                found.append(f"{call.name!r} is not a tool that could be called")
                continue
            found += [f"{call.name}: {error}" for error in schema.errors(json.loads(call.arguments))]
        return found


class ToolCalling:
    """A client's tool support: what its chat template does with tools, and the call syntax.

    With ``tool_call_format="auto"`` the syntax is learnt from the chat template (the config's
    override or the tokenizer's); a name (``"hermes"``, ``"llama3"``, ``"mistral"``) picks a
    built-in one instead. Answers are read with the tokenizer's own response parser where it
    ships one (``auto`` only), else in that syntax; forced calls are always written in it.
    """

    def __init__(self, renderer: PromptRenderer, config: Config) -> None:
        tokenizer = renderer.tokenizer
        self._tokenizer = tokenizer
        self._render = renderer.render_messages
        self._renders_tools = functools.lru_cache(maxsize=64)(self._tools_render)
        self._vocabulary = Vocabulary(tokenizer)
        template = learn_tool_template(renderer.render_messages, self._vocabulary)
        chosen = config.tool_call_format
        if chosen != "auto":
            template = replace(
                template, call_format=written_format(WRITERS[chosen], self._vocabulary)
            )
        elif template.problem:
            warnings.warn(
                f"The chat template's tool calls could not be understood ({template.problem}); "
                f"calls use the default {DEFAULT_SYNTAX!r} syntax. Set tool_call_format to "
                "choose a syntax.",
                stacklevel=3,
            )
        self.template: ToolTemplate = template
        self.format = template.call_format
        self._writer = WRITERS[DEFAULT_SYNTAX if chosen == "auto" else chosen]
        self.uses_tokenizer_parser = chosen == "auto" and has_response_parser(tokenizer)
        self.markers = self._vocabulary.markers(self.format)
        self._marker_token_ids = frozenset(
            token_id
            for marker in self.markers
            if marker in self._vocabulary.special
            and (token_id := single_token_id(tokenizer, marker)) is not None
        )
        self.hold_from = self._hold_from()

    def _hold_from(self) -> tuple[str, ...]:
        if self.format.prompted:  # the answer may be a call from its first token
            return ("",)
        opening = self.format.opening.strip()
        if opening:
            first = self._vocabulary.units(opening)[0]
            return (first if first in self._vocabulary.added else opening.split()[0],)
        name_key = (self.format.json_keys or ("name", ""))[0]
        key = json.dumps(name_key)
        return ("{" + key, "{ " + key)

    # -- The prompt ----------------------------------------------------------------------------

    def prompt(
        self, chat: list[ChatMessage], tools: list[dict[str, Any]] | None
    ) -> tuple[list[ChatMessage], list[dict[str, Any]] | None]:
        """``chat`` and ``tools`` as this chat template takes them.

        What the template does not render itself is written as text: tools go into the system
        message (``TOOLS_SECTION``; also tools that the template fails on, as one that reads
        a ``description`` a parameter lacks), calls into the assistant's content in the default
        syntax, tool results into a user turn (``TOOL_RESULT``). Calls are given in the form
        the template takes (arguments as dicts or JSON strings).
        """
        template = self.template
        if not template.renders_calls or not template.renders_results:
            chat = self._history_as_text(chat)
        chat = template.call_turns.apply(chat)
        if tools and not (
            template.renders_tools and self._renders_tools(json.dumps(tools, sort_keys=True))
        ):
            return _with_system_text(chat, self.tools_section(tools)), None
        return chat, tools

    def _tools_render(self, tools_json: str) -> bool:
        """Whether the template renders these tools (a JSON list); it warns when not."""
        try:
            self._render([_PROBE_USER], json.loads(tools_json), True)
        except Exception as error:  # any failure: the client writes these tools itself
            warnings.warn(
                f"The chat template cannot render these tools ({type(error).__name__}: {error});"
                " they are written into the system message.",
                stacklevel=5,
            )
            return False
        return True

    def tools_section(self, tools: list[dict[str, Any]]) -> str:
        """The system text that lists ``tools`` and shows how to call them."""
        example = self._writer([("<function name>", "a1B2c3D4e", {"<argument>": "<value>"})])
        listed = "\n".join(json.dumps(tool, ensure_ascii=False) for tool in tools)
        return TOOLS_SECTION.format(tools=listed, example=example)

    def _history_as_text(self, chat: list[ChatMessage]) -> list[ChatMessage]:
        rewritten: list[ChatMessage] = []
        after_result = False  # consecutive results share one user turn
        for message in chat:
            if message["role"] == "tool" and not self.template.renders_results:
                result = TOOL_RESULT.format(content=message["content"])
                if after_result:
                    rewritten[-1] = _with_text(rewritten[-1], result)
                else:
                    rewritten.append({"role": "user", "content": result})
                after_result = True
                continue
            after_result = False
            if message.get("tool_calls") and not self.template.renders_calls:
                calls = [
                    (call["function"]["name"], call["id"], call["function"]["arguments"])
                    for call in message["tool_calls"]
                ]
                message = {key: value for key, value in message.items() if key != "tool_calls"}
                message = _with_text(message, self._writer(calls))
            rewritten.append(message)
        return rewritten

    # -- Before generation -------------------------------------------------------------------

    def request(self, tools: Sequence[ChatTool], tool_choice: ToolChoice) -> ToolRequest:
        """Check ``tool_choice`` against ``tools`` and say what to render and to force.

        ``none`` renders no tools, so the model cannot call one. ``required`` forces one call
        to any tool, a ``ForcedTool`` forces one call to that tool.

        Raises:
            ValueError: ``tool_choice`` names a tool that is not in ``tools``, or ``required``
                comes without tools.
            CapabilityError: a call is forced but llguidance is not installed.
            UnsupportedSchemaError: a forced tool's parameters are no usable JSON schema.
        """
        if tool_choice == "none" or (tool_choice == "auto" and not tools):
            return ToolRequest(tools=None)
        definitions = list(tools)
        if tool_choice == "auto":
            return ToolRequest(
                tools=definitions, hold_from=self.hold_from, marker_token_ids=self._marker_token_ids
            )
        if isinstance(tool_choice, str):  # "required"
            if not definitions:
                raise ValueError("tool_choice='required' needs tools, but none were given.")
            forced = definitions
        else:
            forced = [tool for tool in definitions if tool["function"]["name"] == tool_choice.name]
            if not forced:
                names = ", ".join(repr(tool_name(tool)) for tool in tools) or "none"
                raise ValueError(
                    f"tool_choice is the tool {tool_choice.name!r}, which is not among the "
                    f"tools given ({names})."
                )
        require_grammar_library("Forcing a tool call (tool_choice 'required' or a Tool)")
        schemas = {
            tool["function"]["name"]: prepare_schema(
                tool["function"].get("parameters") or {"type": "object", "properties": {}}
            )
            for tool in forced
        }
        forced = [
            {**tool, "function": {**tool["function"], "parameters": schemas[tool["function"]["name"]].grammar_schema}}
            for tool in forced
        ]
        return ToolRequest(
            tools=definitions,
            forced=forced,
            schemas=schemas,
            hold_from=("",),  # a forced answer is all call: nothing of it is streamed
            marker_token_ids=self._marker_token_ids,
        )

    def prepare(
        self,
        request: ToolRequest,
        settings: GenerationSettings,
        *,
        prompt_ids: list[int],
        starts_in_thought: bool,
        max_new_tokens: int,
    ) -> tuple[GenerationSettings, Grammar | None, CallCheck | None]:
        """Note the prompt; return the request's settings and, when a call is forced, the
        grammar that forces it (stop strings are then dropped: the grammar ends the answer)
        and the check of its arguments."""
        request.prompt_ids, request.starts_in_thought = prompt_ids, starts_in_thought
        if not request.forced:
            return settings, None, None
        lark = call_grammar(
            self.format.after_prompt(),
            request.forced,
            self._vocabulary,
            starts_in_thought=starts_in_thought,
        )
        grammar = Grammar(
            "lark",
            lark,
            self._tokenizer,
            budget=max_new_tokens,
            closers=closers(self.format.after_prompt(), starts_in_thought=starts_in_thought),
        )
        return settings.model_copy(update={"stop": []}), grammar, CallCheck(request.schemas)

    # -- After generation --------------------------------------------------------------------

    def answer(
        self, request: ToolRequest, output: GenerationOutput, parser: ResponseParser
    ) -> ToolAnswer | None:
        """The calls in the answer, or None when it is text (unreadable calls warn).

        Calls are read from the answer decoded with its special tokens (markers such as
        ``[TOOL_CALLS]`` are special tokens), after stop strings and ``<think>`` are applied.
        A forced call is read in the format it was forced into; its reasoning, if the prompt
        opened one, is what comes before ``</think>``.
        """
        if not request.tools:
            return None
        raw = self._decode_raw(output.token_ids)
        schemas: Schemas = {
            tool["function"]["name"]: tool["function"].get("parameters") or {}
            for tool in request.tools
        }
        thought = parser.thought
        try:
            if request.forced:
                if request.starts_in_thought:
                    reasoning, _, raw = raw.partition(THINK_CLOSE)
                    thought = reasoning.strip() or None
                parsed = read_calls(self._answer_text(raw), self.format, schemas)
            elif self.uses_tokenizer_parser:
                prefix = self._decode_raw(request.prompt_ids)
                parsed = parse_with_tokenizer(
                    self._tokenizer,
                    _cut_at_stop(raw, parser.stop_strings),
                    prefix=prefix,
                    tools=request.tools,
                )
            else:
                content = ResponseParser(
                    parser.stop_strings, starts_in_thought=request.starts_in_thought
                )
                content.feed(raw)
                content.finish()
                parsed = read_calls(self._answer_text(content.content), self.format, schemas)
        except MalformedToolCallError as error:
            if self.format.prompted and not request.forced:
                return None  # after a prompt that opens calls, any free answer starts like one
            warnings.warn(
                f"The answer looks like a tool call but cannot be read ({error}); it is returned "
                "as text.",
                MalformedToolCallWarning,
                stacklevel=3,
            )
            return None
        return self._tool_answer(parsed, thought)

    def _tool_answer(self, parsed: ParsedAnswer, thought: str | None) -> ToolAnswer | None:
        if not parsed.calls:
            return None
        ids = new_call_ids(len(parsed.calls))
        calls = [
            FunctionCall(id=call_id, name=call.name, arguments=call.arguments)
            for call_id, call in zip(ids, parsed.calls, strict=True)
        ]
        beside = self._without_special_tokens(parsed.text)
        return ToolAnswer(
            calls=calls, thought="\n\n".join(p for p in (thought, beside) if p) or None
        )

    def _decode_raw(self, token_ids: list[int]) -> str:
        """Text of ``token_ids`` with the special tokens, which mark calls in some formats."""
        text = self._tokenizer.decode(token_ids, skip_special_tokens=False)
        assert isinstance(text, str)
        return text

    def _answer_text(self, text: str) -> str:
        """The answer as calls are read from it: after the part of their opening that the
        prompt holds, without the special tokens that end it."""
        return self.format.prompted + self._strip_end(text)

    def _strip_end(self, text: str) -> str:
        """``text`` without the special tokens (not the format's markers) that close it."""
        text = text.rstrip()
        while ending := next(
            (t for t in self._vocabulary.special if text.endswith(t) and t not in self.markers), ""
        ):
            text = text[: -len(ending)].rstrip()
        return text

    def _without_special_tokens(self, text: str) -> str:
        for token in sorted(self._vocabulary.special, key=len, reverse=True):
            text = text.replace(token, "")
        return text.strip()


def _with_text(message: ChatMessage, text: str) -> ChatMessage:
    """``message`` with ``text`` after its content (a string, or a list of parts)."""
    content = message.get("content")
    if isinstance(content, list):
        return {**message, "content": [*content, {"type": "text", "text": text}]}
    return {**message, "content": f"{content}\n\n{text}" if content else text}


def _with_system_text(chat: list[ChatMessage], text: str) -> list[ChatMessage]:
    """``chat`` with ``text`` at the end of its leading system message (one is added)."""
    if chat and chat[0]["role"] == "system":
        return [_with_text(chat[0], text), *chat[1:]]
    return [{"role": "system", "content": text}, *chat]


def _cut_at_stop(text: str, stop: Sequence[str]) -> str:
    positions = [position for position in (text.find(s) for s in stop) if position >= 0]
    return text[: min(positions)] if positions else text
