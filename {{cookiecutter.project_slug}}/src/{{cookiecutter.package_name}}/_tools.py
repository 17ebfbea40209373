"""Tool calling for the client: tool choice, forced calls, and calls read from the answer."""

from __future__ import annotations

import importlib.util
import secrets
import string
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from autogen_core import FunctionCall
from autogen_core.tools import Tool, ToolSchema
from transformers import (
    LogitsProcessor,
    LogitsProcessorList,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from ._config import {{ cookiecutter.client_class_name }}Config as Config
from ._errors import CapabilityError
from ._generation import GenerationOutput, LazyLogitsProcessor, eos_token_ids
from ._prompt import to_chat_tools
from ._text import ResponseParser, single_token_id
from ._tool_parsers import (
    FORMATS,
    MalformedToolCallError,
    ToolCallFormat,
    detect_format,
    has_response_parser,
    parse_with_tokenizer,
)

if TYPE_CHECKING:
    from ._tool_grammar import GrammarCache

ToolChoice = Tool | Literal["auto", "required", "none"]
INSTALL_XGRAMMAR = {{ ("pip install '" ~ cookiecutter.project_slug ~ "[constrained]'") | py }}
"""How to install the optional dependency that forced calls need."""
_ID_ALPHABET = string.ascii_letters + string.digits


class MalformedToolCallWarning(UserWarning):
    """The model wrote something like a tool call that could not be read; it came back as text."""


def new_call_ids(count: int) -> list[str]:
    """Unique call ids: nine letters and digits, the form Mistral's chat templates require."""
    ids: set[str] = set()
    while len(ids) < count:
        ids.add("".join(secrets.choice(_ID_ALPHABET) for _ in range(9)))
    return list(ids)


def _tool_name(tool: Tool | ToolSchema) -> str:
    return tool["name"] if isinstance(tool, dict) else tool.name


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
    stop: list[str] = field(default_factory=list)
    starts_in_thought: bool = False


class ToolCalling:
    """A client's tool support: the call format, the grammar cache and the answer parser.

    The call format is the config's ``tool_call_format``: ``"auto"`` reads calls with the
    tokenizer's own response parser where it ships one, else with the built-in parser of the
    format the chat template in use (the config's override or the tokenizer's) teaches.
    """

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        config: Config,
        model: Callable[[], PreTrainedModel],
    ) -> None:
        """``model`` returns the loaded model; it is called on the worker thread only."""
        self._tokenizer = tokenizer
        self._model = model
        call_format = config.tool_call_format
        chat_template = config.chat_template or tokenizer.chat_template
        name = detect_format(chat_template) if call_format == "auto" else call_format
        self.format: ToolCallFormat = FORMATS[name]
        self.uses_tokenizer_parser = call_format == "auto" and has_response_parser(tokenizer)
        self._grammars: GrammarCache | None = None
        self._marker_token_ids = frozenset(
            token_id
            for marker in self.format.stream_markers
            if (token_id := single_token_id(tokenizer, marker)) is not None
        )
        added = tokenizer.added_tokens_decoder.values()
        self._special_tokens = sorted(
            {*tokenizer.all_special_tokens, *(token.content for token in added if token.special)}
            - {""},
            key=len,
            reverse=True,
        )

    # -- Before generation -------------------------------------------------------------------

    def request(self, tools: Sequence[Tool | ToolSchema], tool_choice: ToolChoice) -> ToolRequest:
        """Check ``tool_choice`` against ``tools`` and say what to render and to force.

        ``none`` renders no tools, so the model cannot call one. ``required`` forces one call
        to any tool, a ``Tool`` forces one call to that tool.

        Raises:
            ValueError: ``tool_choice`` names a tool that is not in ``tools``, or ``required``
                comes without tools.
            CapabilityError: a call is forced but xgrammar is not installed.
        """
        if tool_choice == "none" or (tool_choice == "auto" and not tools):
            return ToolRequest(tools=None)
        definitions = to_chat_tools(tools) or []
        markers = self.format.stream_markers
        if tool_choice == "auto":
            return ToolRequest(
                tools=definitions, hold_from=markers, marker_token_ids=self._marker_token_ids
            )
        if isinstance(tool_choice, str):  # "required"
            if not definitions:
                raise ValueError("tool_choice='required' needs tools, but none were given.")
            forced = definitions
        else:
            forced = [tool for tool in definitions if tool["function"]["name"] == tool_choice.name]
            if not forced:
                names = ", ".join(repr(_tool_name(tool)) for tool in tools) or "none"
                raise ValueError(
                    f"tool_choice is the tool {tool_choice.name!r}, which is not among the "
                    f"tools given ({names})."
                )
        if importlib.util.find_spec("xgrammar") is None:  # fail now, not while generating
            raise CapabilityError(
                "Forcing a tool call (tool_choice 'required' or a Tool) needs xgrammar: "
                f"{INSTALL_XGRAMMAR} (or pip install xgrammar)."
            )
        return ToolRequest(
            tools=definitions,
            forced=forced,
            hold_from=markers,
            marker_token_ids=self._marker_token_ids,
        )

    def prepare(
        self,
        request: ToolRequest,
        extra_arguments: dict[str, Any],
        *,
        prompt_ids: list[int],
        stop: list[str],
        starts_in_thought: bool,
    ) -> dict[str, Any]:
        """Note the prompt; return the ``generate`` arguments, with the processor that forces
        the call when one is forced (one processor per request)."""
        request.prompt_ids, request.stop = prompt_ids, stop
        request.starts_in_thought = starts_in_thought
        if not request.forced:
            return extra_arguments
        forced = request.forced

        def build(vocab_size: int) -> LogitsProcessor:  # on the worker thread, first step
            from ._tool_grammar import ToolCallLogitsProcessor, call_structural_tag

            structural_tag = call_structural_tag(
                self._tokenizer, self.format, forced, starts_in_thought=starts_in_thought
            )
            stops = self._stop_token_ids(extra_arguments)
            return ToolCallLogitsProcessor(self._grammar_cache(), structural_tag, stops)

        processor = LazyLogitsProcessor(build)
        given: LogitsProcessor | Sequence[LogitsProcessor] = extra_arguments.get(
            "logits_processor", []
        )
        given = [given] if isinstance(given, LogitsProcessor) else list(given)
        return {**extra_arguments, "logits_processor": LogitsProcessorList([*given, processor])}

    def _stop_token_ids(self, extra_arguments: dict[str, Any]) -> list[int]:
        """The tokens that end this request (its ``eos_token_id``, else the model's), and the
        tokenizer's end of sequence: the grammar allows them once the call is complete."""
        stops = eos_token_ids(self._model(), extra_arguments)
        if self._tokenizer.eos_token_id is not None:
            stops.add(int(self._tokenizer.eos_token_id))
        return sorted(stops)

    def _grammar_cache(self) -> GrammarCache:
        if self._grammars is None:
            try:
                from ._tool_grammar import GrammarCache
            except ImportError as error:
                raise CapabilityError(
                    "Forcing a tool call (tool_choice 'required' or a Tool) needs xgrammar: "
                    f"{INSTALL_XGRAMMAR} (or pip install xgrammar)."
                ) from error
            self._grammars = GrammarCache(self._tokenizer)
        return self._grammars

    # -- After generation --------------------------------------------------------------------

    def answer(
        self, request: ToolRequest, output: GenerationOutput, parser: ResponseParser
    ) -> ToolAnswer | None:
        """The calls in the answer, or None when it is text (unreadable calls warn).

        Calls are read from the answer decoded with its special tokens (markers such as
        ``[TOOL_CALLS]`` are special tokens), after stop strings and ``<think>`` are applied.
        A forced call is read with the built-in parser of the format it was forced into.
        """
        if not request.tools:
            return None
        raw = self._decode_raw(output.token_ids)
        try:
            if self.uses_tokenizer_parser and not request.forced:
                prefix = self._decode_raw(request.prompt_ids)
                raw = _cut_at_stop(raw, request.stop)
                parsed = parse_with_tokenizer(
                    self._tokenizer, raw, prefix=prefix, tools=request.tools
                )
            else:
                content = ResponseParser(request.stop, starts_in_thought=request.starts_in_thought)
                content.feed(raw)
                content.finish()
                parsed = self.format.parse(self._strip_end(content.content))
        except MalformedToolCallError as error:
            warnings.warn(
                f"The answer looks like a tool call but cannot be read ({error}); it is returned "
                "as text.",
                MalformedToolCallWarning,
                stacklevel=3,
            )
            return None
        if not parsed.calls:
            return None
        ids = new_call_ids(len(parsed.calls))
        calls = [
            FunctionCall(id=call_id, name=call.name, arguments=call.arguments)
            for call_id, call in zip(ids, parsed.calls, strict=True)
        ]
        beside = self._without_special_tokens(parsed.text)
        thought = "\n\n".join(part for part in (parser.thought, beside) if part) or None
        return ToolAnswer(calls=calls, thought=thought)

    def _decode_raw(self, token_ids: list[int]) -> str:
        """Text of ``token_ids`` with the special tokens, which mark calls in some formats."""
        text = self._tokenizer.decode(token_ids, skip_special_tokens=False)
        assert isinstance(text, str)
        return text

    def _strip_end(self, text: str) -> str:
        """``text`` without the end-of-turn special tokens that close it."""
        text = text.rstrip()
        while ending := next((t for t in self._special_tokens if text.endswith(t)), ""):
            text = text[: -len(ending)].rstrip()
        return text

    def _without_special_tokens(self, text: str) -> str:
        for token in self._special_tokens:
            text = text.replace(token, "")
        return text.strip()


def _cut_at_stop(text: str, stop: Sequence[str]) -> str:
    positions = [position for position in (text.find(s) for s in stop) if position >= 0]
    return text[: min(positions)] if positions else text
