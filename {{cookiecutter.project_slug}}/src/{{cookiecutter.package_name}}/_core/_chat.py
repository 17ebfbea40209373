"""A client's requests, whichever the framework: chat -> prompt -> engine -> text, calls or JSON.

Each front (AutoGen, Agent Framework) converts its messages and tools to the core's
(``_types``) and hands them to one :class:`Chat`; the chat renders the prompt, constrains
the answer where a call or JSON is asked for, runs the shared model, reads the answer,
checks it and samples again while it fails, and counts the tokens.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import threading
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from transformers import PreTrainedTokenizerBase

from ._config import ModelConfig
from ._decoding import request_settings
from ._defaults import Capabilities
from ._engine import Generation, TokenCallback
from ._errors import (
    CapabilityError,
    ClientClosedError,
    ContextWindowExceededError,
    InvalidAnswerError,
)
from ._generation import AnswerCheck, Constraint, GenerationOutput, GenerationRequest
from ._json_output import JsonRequest
from ._model import SharedModel, acquire
from ._prompt import FALLBACK_STOP, EncodedPrompt
from ._text import THINK_OPEN, IncrementalDecoder, ResponseParser, decode
from ._tool_choice import request_tool_choice
from ._tools import ToolRequest
from ._types import (
    ChatMessage,
    ChatTool,
    FinishReason,
    FunctionCall,
    ToolChoice,
    tool_name,
)

CancelHook = Callable[[Callable[[], None]], None]
"""Registers a callback that cancels the request (AutoGen's ``CancellationToken.add_callback``)."""


@dataclass
class Answer:
    """One answer: text or calls, the reasoning beside it, why it ended, what it cost."""

    content: str | list[FunctionCall]
    thought: str | None
    finish_reason: FinishReason
    prompt_tokens: int
    completion_tokens: int


@dataclass
class PreparedRequest:
    """A request ready for the engine, and how to read its answer."""

    chat: list[ChatMessage]
    """The chat as rendered, images described by their size (for event logs)."""
    generation: GenerationRequest
    stop: list[str]
    starts_in_thought: bool
    hold_from: tuple[str, ...] = ()
    keep_special: frozenset[int] = frozenset()
    think_tags: bool = True
    tools: ToolRequest | None = None
    check: AnswerCheck | None = None
    """What the answer must satisfy beyond its grammar; sampled again while it does not."""

    @property
    def holds_answer(self) -> bool:
        """Whether a streamed answer is held back until checked (its grammar approximates)."""
        return self.check is not None and not self.check.exact

    def parser(self) -> ResponseParser:
        return ResponseParser(
            self.stop,
            starts_in_thought=self.starts_in_thought,
            hold_from=self.hold_from,
            think_tags=self.think_tags,
        )


@dataclass
class Usage:
    """Tokens processed: the prompt's and the generated ones."""

    prompt_tokens: int = 0
    completion_tokens: int = 0


class _Stream:
    """One streamed generation: its tokens decoded and parsed into chunks as they come."""

    def __init__(self, decoder: IncrementalDecoder, prepared: PreparedRequest) -> None:
        self.decoder = decoder
        self.parser = prepared.parser()
        self.chunks: asyncio.Queue[str | None] = asyncio.Queue()

    def on_tokens(self, token_ids: list[int]) -> None:
        """On the event loop, as tokens come."""
        if chunk := self.parser.feed(self.decoder.add(token_ids)):
            self.chunks.put_nowait(chunk)

    def finished(self, _: object) -> None:
        """When the generation is done: no more chunks."""
        self.chunks.put_nowait(None)


@dataclass
class _Cancelled:
    """A request's cancellation, as registered with its hook."""

    generations: list[Generation] = field(default_factory=list)
    cancelled: bool = False

    def __call__(self) -> None:
        self.cancelled = True
        for generation in self.generations:
            generation.cancel()


class Chat:
    """A client's view of the shared model: its settings, its requests, its token counts.

    All torch work runs on the engine's thread, so the event loop is never blocked.
    """

    def __init__(self, config: ModelConfig, capabilities: Capabilities, owner: str) -> None:
        self.config = config
        self.capabilities = capabilities
        self.settings = config.generation_settings()
        self._owner = owner
        self.model: SharedModel = acquire(config, self, owner)
        self._usage_lock = threading.Lock()
        self._usage = Usage()
        self._running: set[Generation] = set()
        self.closed = False

    @property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        return self.model.tokenizer

    @property
    def context_window(self) -> int:
        """The most tokens (prompt and answer) the model attends to."""
        return self.model.context_window

    def total_usage(self) -> Usage:
        """Tokens the model processed for this client so far, cancelled generations included."""
        with self._usage_lock:
            return Usage(self._usage.prompt_tokens, self._usage.completion_tokens)

    def count_tokens(self, chat: Sequence[ChatMessage], tools: Sequence[ChatTool]) -> int:
        """The exact number of tokens of the prompt the model gets for this chat.

        Synchronous, so images (if any) are preprocessed on the calling thread here; requests
        preprocess them on the engine thread.
        """
        return len(self.encode(chat, tools).input_ids)

    def encode(self, chat: Sequence[ChatMessage], tools: Sequence[ChatTool]) -> EncodedPrompt:
        """The prompt the model gets for this chat and these tools."""
        return self._encode(self.model.renderer.to_chat(chat), list(tools))

    # -- Requests ------------------------------------------------------------------------------

    async def prepare(
        self,
        chat: Sequence[ChatMessage],
        *,
        tools: Sequence[ChatTool] = (),
        tool_choice: ToolChoice = "auto",
        json_output: JsonRequest | None = None,
        extra_arguments: Mapping[str, Any] = {},
    ) -> PreparedRequest:
        """The request for the engine: the prompt, its settings, its grammar and its check.

        Raises:
            ContextWindowExceededError: the prompt does not fit in the context window.
            CapabilityError: tools, JSON output or images where the client has no support.
            ValueError: an unknown or invalid extra argument, or a ``tool_choice`` naming a
                tool that is not given.
            UnsupportedSchemaError: the JSON schema (or a forced tool's parameters) is none
                that a grammar can guarantee a valid answer for.
        """
        self.check_open()
        model = self.model
        settings, passthrough = request_settings(self.settings, extra_arguments)
        rendered = model.renderer.to_chat(chat)
        tool_choice = request_tool_choice(
            self.config.tool_choice, [tool_name(tool) for tool in tools], tool_choice
        )
        # Schemas are prepared off the event loop (the first one imports the grammar library
        # and the validator, about a second).
        tool_request = await asyncio.to_thread(model.tool_calling.request, tools, tool_choice)
        tools = list(tools) if tool_request.tools else []
        if model.renderer.runs_torch(rendered):  # images: preprocessed on the engine's thread
            prompt = await model.engine.call(self._encode, rendered, tools)
        else:
            prompt = self._encode(rendered, tools)
        input_ids = prompt.input_ids
        room = self.context_window - len(input_ids)
        if room <= 0:
            raise ContextWindowExceededError(len(input_ids), self.context_window)
        max_new_tokens = min(settings.max_new_tokens, room)
        constraint: Constraint | None = None
        check: AnswerCheck | None = None
        if json_output:
            settings, constraint, check = await asyncio.to_thread(
                functools.partial(
                    model.json_output.constrain,
                    json_output,
                    settings,
                    passthrough,
                    capabilities=self.capabilities,
                    tools=tools,
                    budget=max_new_tokens,
                )
            )
        starts_in_thought = decode(self.tokenizer, input_ids[-4:]).rstrip().endswith(THINK_OPEN)
        settings, tool_grammar, tool_check = model.tool_calling.prepare(
            tool_request,
            settings,
            prompt_ids=input_ids,
            starts_in_thought=starts_in_thought,
            max_new_tokens=max_new_tokens,
        )
        if tool_grammar is not None and int(passthrough.get("num_beams") or 1) > 1:
            raise ValueError("A forced tool call follows one sequence: num_beams must be 1.")
        constraint, check = constraint or tool_grammar, check or tool_check
        stop = list(settings.stop)
        if model.renderer.uses_fallback and constraint is None and FALLBACK_STOP not in stop:
            stop.append(FALLBACK_STOP)  # a grammar decides itself where the answer ends
            settings = settings.model_copy(update={"stop": stop})
        prepared = PreparedRequest(
            chat=model.renderer.loggable(rendered),
            generation=GenerationRequest(
                input_ids=input_ids,
                max_new_tokens=max_new_tokens,
                settings=settings,
                extra_arguments=passthrough,
                model_inputs=prompt.model_inputs,
                constraint=constraint,
            ),
            stop=stop,
            starts_in_thought=starts_in_thought,
            think_tags=not json_output,  # JSON strings may contain "<think>"
            check=check,
        )
        prepared.tools, prepared.hold_from = tool_request, tool_request.hold_from
        prepared.keep_special = tool_request.marker_token_ids
        return prepared

    async def complete(
        self, prepared: PreparedRequest, cancel_hook: CancelHook | None = None
    ) -> Answer:
        """Generate the answer, sampled again while it fails its check.

        Raises:
            asyncio.CancelledError: the request was cancelled; generation stopped.
            InvalidAnswerError: no answer validated against the schema in
                ``1 + max_resamples`` tries; it carries the last answer.
        """
        cancelled = self._cancellation(cancel_hook)
        failed: list[Answer] = []
        while True:
            output = await self._generate(prepared.generation, cancelled, None)
            decoder = IncrementalDecoder(self.tokenizer, prepared.keep_special)
            parser = prepared.parser()
            parser.feed(decoder.add(output.token_ids) + decoder.flush())
            parser.finish()
            answer = self._answer(prepared, output, parser)
            if not self._rejected(prepared, answer, failed):
                return answer

    async def stream(
        self, prepared: PreparedRequest, cancel_hook: CancelHook | None = None
    ) -> AsyncGenerator[str | Answer, None]:
        """Yield the answer's text as the model produces it, then the :class:`Answer`.

        The chunks concatenate to the answer's content; stop strings never appear in one;
        reasoning is not streamed (it is the answer's ``thought``). An answer its grammar
        cannot guarantee valid is held back until checked. Closing the generator early
        stops the model at the next decoding step.
        """
        cancelled = self._cancellation(cancel_hook)
        hold = prepared.holds_answer
        failed: list[Answer] = []
        while True:
            held: list[str] = []
            stream = _Stream(IncrementalDecoder(self.tokenizer, prepared.keep_special), prepared)
            parser, decoder = stream.parser, stream.decoder
            generation = asyncio.ensure_future(
                self._generate(prepared.generation, cancelled, stream.on_tokens)
            )
            generation.add_done_callback(stream.finished)
            try:
                while (chunk := await stream.chunks.get()) is not None:
                    if cancelled.cancelled:
                        break  # no more chunks; the generation raises CancelledError
                    if hold:
                        held.append(chunk)
                    else:
                        yield chunk
                output = await generation
                if chunk := parser.feed(decoder.flush()) + parser.finish():
                    held.append(chunk)
            finally:
                if not generation.done():  # closed early (break, aclose): stop the model
                    generation.cancel()
            answer = self._answer(prepared, output, parser)
            if not self._rejected(prepared, answer, failed, retry=hold):
                break
        for chunk in held:
            yield chunk
        if isinstance(answer.content, str) and (held_call := parser.release_held()):
            yield held_call  # held back as a possible tool call, but the answer is text
        yield answer

    async def close(self) -> None:
        """This client is done: its running requests stop; the model is released when no other
        client uses it. Requests waiting then fail with ``ClientClosedError``."""
        if self.closed:
            return
        self.closed = True
        for generation in list(self._running):
            generation.cancel()
        await self.model.release(self)

    # -- Internals -----------------------------------------------------------------------------

    def check_open(self) -> None:
        if self.closed:
            raise ClientClosedError(f"{self._owner} was closed; create a new client.")

    def _encode(self, chat: list[ChatMessage], tools: list[ChatTool]) -> EncodedPrompt:
        self.check_open()
        if tools and not self.capabilities["function_calling"]:
            raise CapabilityError(
                "This client does not support tools (model_info function_calling is false)."
            )
        renderer, tool_calling = self.model.renderer, self.model.tool_calling
        return renderer.encode(*tool_calling.prompt(chat, tools or None))

    def _cancellation(self, cancel_hook: CancelHook | None) -> _Cancelled:
        cancelled = _Cancelled()
        if cancel_hook is not None:
            cancel_hook(cancelled)
        return cancelled

    async def _generate(
        self,
        request: GenerationRequest,
        cancelled: _Cancelled,
        on_tokens: TokenCallback | None,
    ) -> GenerationOutput:
        self.check_open()
        generation = self.model.engine.submit(request, on_tokens)
        cancelled.generations.append(generation)
        self._running.add(generation)
        if cancelled.cancelled:
            generation.cancel()
        try:
            output = await generation.result()
        except asyncio.CancelledError:
            generation.cancel()
            with contextlib.suppress(Exception):  # the engine stops within a step
                self._add_usage(request, await generation.result())
            raise
        finally:
            self._running.discard(generation)
        self._add_usage(request, output)
        if output.cancelled:
            raise asyncio.CancelledError("The request was cancelled; generation stopped.")
        return output

    def _rejected(
        self,
        prepared: PreparedRequest,
        answer: Answer,
        failed: list[Answer],
        *,
        retry: bool = True,
    ) -> bool:
        """Whether ``answer`` fails its check and the request is to be sampled again (with the
        next seed, if it has one).

        Raises:
            InvalidAnswerError: it fails, and no try is left (or decoding is deterministic:
                the same answer came twice), or it was streamed already (not ``retry``).
        """
        if prepared.check is None or answer.finish_reason == "length":
            return False  # a cut-off answer says so in its finish reason
        errors = prepared.check.errors(answer.content)
        if not errors:
            return False
        repeated = any(earlier.content == answer.content for earlier in failed)
        failed.append(answer)
        if not retry or repeated or len(failed) > self.config.max_resamples:
            content = answer.content
            text = (
                content
                if isinstance(content, str)
                else json.dumps([{"name": c.name, "arguments": c.arguments} for c in content])
            )
            raise InvalidAnswerError(text, errors, len(failed))
        settings = prepared.generation.settings
        if settings.seed is not None:
            seed = settings.seed + 1
            prepared.generation.settings = settings.model_copy(update={"seed": seed})
        return True

    def _add_usage(self, request: GenerationRequest, output: GenerationOutput) -> None:
        """Count a generation that ran (also a cancelled one) in ``total_usage``."""
        if output.cancelled and not output.token_ids:
            return  # cancelled before the model saw it
        with self._usage_lock:
            self._usage.prompt_tokens += len(request.input_ids)
            self._usage.completion_tokens += len(output.token_ids)

    def _answer(
        self, prepared: PreparedRequest, output: GenerationOutput, parser: ResponseParser
    ) -> Answer:
        finish_reason: FinishReason
        if parser.stopped or output.ended_with_eos:
            finish_reason = "stop"
        elif output.out_of_time or len(output.token_ids) >= prepared.generation.max_new_tokens:
            finish_reason = "length"
        else:
            finish_reason = "stop"
        content: str | list[FunctionCall] = parser.content
        thought = parser.thought
        if prepared.tools is not None and (
            calls := self.model.tool_calling.answer(prepared.tools, output, parser)
        ):
            content, thought, finish_reason = calls.calls, calls.thought, "function_calls"
        return Answer(
            content=content,
            thought=thought,
            finish_reason=finish_reason,
            prompt_tokens=len(prepared.generation.input_ids),
            completion_tokens=len(output.token_ids),
        )
