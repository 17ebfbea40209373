"""The ChatCompletionClient backed by a local HuggingFace transformers model."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import threading
import weakref
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from autogen_core import EVENT_LOGGER_NAME, CancellationToken, Component, FunctionCall
from autogen_core.logging import LLMCallEvent, LLMStreamEndEvent, LLMStreamStartEvent
from autogen_core.models import (
    ChatCompletionClient,
    CreateResult,
    FinishReasons,
    LLMMessage,
    ModelCapabilities,
    ModelInfo,
    RequestUsage,
)
from autogen_core.tools import Tool, ToolSchema
from pydantic import BaseModel
from ._config import {{ cookiecutter.client_class_name }}Config as Config
from ._errors import (
    CapabilityError,
    ClientClosedError,
    ContextWindowExceededError,
    InvalidAnswerError,
)
from ._checks import check_messages
from ._decoding import request_settings
from ._device import check_device
from ._engine import Engine, TokenCallback
from ._generation import AnswerCheck, Constraint, GenerationOutput, GenerationRequest
from ._json_output import JsonOutput
from ._loading import check_model_source, check_tokenizer, context_window, load_model_config
from ._local_engine import LocalEngine
from ._remote_engine import RemoteEngine
from ._model_info import DEFAULT_MODEL_INFO
from ._prompt import FALLBACK_STOP, ChatMessage, EncodedPrompt, to_chat_tools
from ._text import THINK_OPEN, IncrementalDecoder, ResponseParser, decode
from ._tool_choice import request_tool_choice
from ._tools import ToolCalling, ToolRequest
from ._vision import load_renderer

event_logger = logging.getLogger(EVENT_LOGGER_NAME)


@dataclass
class _PreparedRequest:
    chat: list[ChatMessage]
    generation: GenerationRequest
    stop: list[str]
    starts_in_thought: bool
    hold_from: tuple[str, ...] = ()
    keep_special: frozenset[int] = frozenset()
    think_tags: bool = True
    tools: ToolRequest | None = None
    check: AnswerCheck | None = None
    """What the answer must satisfy beyond its grammar; sampled again while it does not."""

    def parser(self) -> ResponseParser:
        return ResponseParser(
            self.stop,
            starts_in_thought=self.starts_in_thought,
            hold_from=self.hold_from,
            think_tags=self.think_tags,
        )


class _Stream:
    """One streamed generation: its tokens decoded and parsed into chunks as they come."""

    def __init__(self, decoder: IncrementalDecoder, prepared: _PreparedRequest) -> None:
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


class {{ cookiecutter.client_class_name }}(ChatCompletionClient, Component[Config]):
    """Chat completion client for a local HuggingFace transformers model.

    The prompt is built with the tokenizer's chat template, token counts come from the
    tokenizer, ``create_stream`` yields text as the model produces it, and a cancelled
    ``CancellationToken`` stops ``generate`` at the next decoding step. All torch work runs
    on one thread that the client owns, so the event loop is never blocked.

    The tokenizer is loaded in the constructor; the weights load on the engine thread in
    the background, and the first request waits for them.

    Args:
        **kwargs: the fields of the config class (``model_name``, ``max_new_tokens``,
            ``temperature``, ``stop``, ``device``, ``dtype``, ...). Invalid values raise
            ``pydantic.ValidationError`` naming the field.

    Example:

        .. code-block:: python

            client = Client(model_name="Qwen/Qwen3-0.6B", max_new_tokens=128)
            result = await client.create([UserMessage(content="Hi!", source="user")])
            print(result.content, result.usage)
            await client.close()
    """

    component_type = "model"
    component_config_schema = Config
    component_provider_override = {{ (cookiecutter.package_name ~ "." ~ cookiecutter.client_class_name) | py }}

    def __init__(self, **kwargs: Any) -> None:
        self._config = Config(**kwargs)
        # A copy: changing one client's model_info changes neither the default nor its config.
        self._model_info = cast(ModelInfo, dict(self._config.model_info or DEFAULT_MODEL_INFO))
        self._settings = self._config.generation_settings()
        check_model_source(self._config)
        check_device(self._config)
        self._renderer = load_renderer(self._config)
        self._tokenizer = self._renderer.tokenizer
        check_tokenizer(self._tokenizer, self._config.model_name)
        self._context_window = context_window(
            self._config, load_model_config(self._config), self._tokenizer
        )
        self._engine: Engine
        if self._config.base_url is None:
            local = LocalEngine(
                self._config, self._renderer.model_class, self._tokenizer, type(self).__name__
            )
            # A client dropped without close() still stops its thread and frees the model.
            weakref.finalize(self, local.stop)
            self._engine = local
        else:
            self._engine = RemoteEngine(self._config, self._tokenizer)
        self._tool_calling = ToolCalling(self._renderer, self._config)
        self._json_output = JsonOutput(self._tokenizer, self._model_info)
        self._usage_lock = threading.Lock()
        self._total_usage = RequestUsage(prompt_tokens=0, completion_tokens=0)
        self._closed = False

    # -- Component ---------------------------------------------------------------------

    def _to_config(self) -> Config:
        return self._config.model_copy(deep=True)

    @classmethod
    def _from_config(cls, config: Config) -> {{ cookiecutter.client_class_name }}:
        return cls(**config.model_dump(exclude_unset=True))

    # -- Capabilities and accounting -----------------------------------------------------

    @property
    def model_info(self) -> ModelInfo:
        """What the model can do (vision, function calling, JSON output, family)."""
        return self._model_info

    @property
    def capabilities(self) -> ModelCapabilities:
        """Deprecated in AutoGen in favour of ``model_info``; the same values."""
        return cast(ModelCapabilities, self._model_info)

    @property
    def context_window(self) -> int:
        """The most tokens (prompt and answer) the model attends to."""
        return self._context_window

    def actual_usage(self) -> RequestUsage:
        """Tokens the model processed so far, cancelled generations included."""
        return self.total_usage()

    def total_usage(self) -> RequestUsage:
        """Tokens the model processed so far, cancelled generations included."""
        with self._usage_lock:
            return self._total_usage

    def count_tokens(
        self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = []
    ) -> int:
        """The exact number of tokens of the prompt the model gets for these messages.

        Synchronous, so images (if any) are preprocessed on the calling thread here; requests
        preprocess them on the engine thread.
        """
        return len(self._encode(self._to_chat(messages), tools).input_ids)

    def remaining_tokens(
        self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = []
    ) -> int:
        """Tokens left in the context window after the prompt for these messages."""
        return max(0, self._context_window - self.count_tokens(messages, tools=tools))

    # -- Requests ----------------------------------------------------------------------

    async def create(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = [],
        tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
        json_output: bool | type[BaseModel] | None = None,
        extra_create_args: Mapping[str, Any] = {},
        cancellation_token: CancellationToken | None = None,
    ) -> CreateResult:
        """Generate one answer.

        Raises:
            asyncio.CancelledError: the cancellation token was cancelled; generation stopped.
            ContextWindowExceededError: the prompt does not fit in the context window.
            CapabilityError: tools, JSON output or images where the client has no support.
            ValueError: an unknown or invalid ``extra_create_args`` entry, or a message with
                text that is not valid Unicode (a lone surrogate).
            UnsupportedSchemaError: the JSON schema (or a forced tool's parameters) is none
                that a grammar can guarantee a valid answer for.
            InvalidAnswerError: no answer validated against the schema in ``1 + max_resamples``
                tries (JSON output, forced calls); it carries the last answer.
        """
        prepared = await self._prepare(
            messages, tools, tool_choice, json_output, extra_create_args
        )
        failed: list[CreateResult] = []
        while True:
            output = await self._generate(prepared.generation, cancellation_token, None)
            decoder = IncrementalDecoder(self._tokenizer, prepared.keep_special)
            parser = prepared.parser()
            parser.feed(decoder.add(output.token_ids) + decoder.flush())
            parser.finish()
            result = self._result(prepared, output, parser)
            if not self._rejected(prepared, result, failed):
                break
        event_logger.info(
            LLMCallEvent(
                messages=prepared.chat,
                response=result.model_dump(),
                prompt_tokens=result.usage.prompt_tokens,
                completion_tokens=result.usage.completion_tokens,
            )
        )
        return result

    async def create_stream(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = [],
        tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
        json_output: bool | type[BaseModel] | None = None,
        extra_create_args: Mapping[str, Any] = {},
        cancellation_token: CancellationToken | None = None,
    ) -> AsyncGenerator[str | CreateResult, None]:
        """Yield the answer's text as the model produces it, then one ``CreateResult``.

        The chunks are exactly the content: their concatenation equals the final
        ``CreateResult.content``. Stop strings never appear in a chunk, even when split
        across tokens. Reasoning between ``<think>`` and ``</think>`` is not streamed; it
        arrives in ``CreateResult.thought``. Closing the generator early (``break``,
        ``aclose()``) or cancelling the token stops the model at the next decoding step.
        """
        prepared = await self._prepare(
            messages, tools, tool_choice, json_output, extra_create_args
        )
        # An answer the grammar cannot guarantee valid is held back until it is checked.
        hold = prepared.check is not None and not prepared.check.exact
        failed: list[CreateResult] = []
        event_logger.info(LLMStreamStartEvent(messages=prepared.chat))
        while True:
            held: list[str] = []
            stream = _Stream(IncrementalDecoder(self._tokenizer, prepared.keep_special), prepared)
            parser, decoder = stream.parser, stream.decoder
            generation = asyncio.ensure_future(
                self._generate(prepared.generation, cancellation_token, stream.on_tokens)
            )
            generation.add_done_callback(stream.finished)
            try:
                while (chunk := await stream.chunks.get()) is not None:
                    if cancellation_token is not None and cancellation_token.is_cancelled():
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
            result = self._result(prepared, output, parser)
            if not self._rejected(prepared, result, failed, retry=hold):
                break
        for chunk in held:
            yield chunk
        if isinstance(result.content, str) and (held_call := parser.release_held()):
            yield held_call  # held back as a possible tool call, but the answer is text
        event_logger.info(
            LLMStreamEndEvent(
                response=result.model_dump(),
                prompt_tokens=result.usage.prompt_tokens,
                completion_tokens=result.usage.completion_tokens,
            )
        )
        yield result

    async def close(self) -> None:
        """Stop the model and the engine thread, and release the model.

        Requests still waiting fail with ``ClientClosedError``; one that is generating stops
        at its next decoding step and raises ``asyncio.CancelledError``. The client cannot be
        used after.
        """
        if self._closed:
            return
        self._closed = True
        await self._engine.close()

    # -- Internals ---------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise ClientClosedError(f"{type(self).__name__} was closed; create a new client.")

    def _to_chat(self, messages: Sequence[LLMMessage]) -> list[ChatMessage]:
        check_messages(messages, self._model_info)
        return self._renderer.to_chat(messages)

    def _encode(
        self, chat: list[ChatMessage], tools: Sequence[Tool | ToolSchema]
    ) -> EncodedPrompt:
        self._check_open()
        if tools and not self._model_info["function_calling"]:
            raise CapabilityError(
                "This client does not support tools (model_info function_calling is false)."
            )
        return self._renderer.encode(*self._tool_calling.prompt(chat, to_chat_tools(tools)))

    async def _prepare(
        self,
        messages: Sequence[LLMMessage],
        tools: Sequence[Tool | ToolSchema],
        tool_choice: Tool | Literal["auto", "required", "none"],
        json_output: bool | type[BaseModel] | None,
        extra_create_args: Mapping[str, Any],
    ) -> _PreparedRequest:
        self._check_open()
        settings, passthrough = request_settings(self._settings, extra_create_args)
        chat = self._to_chat(messages)
        tool_choice = request_tool_choice(self._config.tool_choice, tools, tool_choice)
        # Schemas are prepared off the event loop (the first one imports the grammar library
        # and the validator, about a second).
        tool_request = await asyncio.to_thread(self._tool_calling.request, tools, tool_choice)
        tools = tools if tool_request.tools else []
        if self._renderer.runs_torch(chat):  # images: preprocessed on the engine's thread
            prompt = await self._engine.call(self._encode, chat, tools)
        else:
            prompt = self._encode(chat, tools)
        input_ids = prompt.input_ids
        room = self._context_window - len(input_ids)
        if room <= 0:
            raise ContextWindowExceededError(len(input_ids), self._context_window)
        max_new_tokens = min(settings.max_new_tokens, room)
        constraint: Constraint | None = None
        check: AnswerCheck | None = None
        if json_output:
            settings, constraint, check = await asyncio.to_thread(
                functools.partial(
                    self._json_output.constrain,
                    json_output,
                    settings,
                    passthrough,
                    tools=tools,
                    budget=max_new_tokens,
                )
            )
        starts_in_thought = decode(self._tokenizer, input_ids[-4:]).rstrip().endswith(THINK_OPEN)
        settings, tool_grammar, tool_check = self._tool_calling.prepare(
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
        if self._renderer.uses_fallback and constraint is None and FALLBACK_STOP not in stop:
            stop.append(FALLBACK_STOP)  # a grammar decides itself where the answer ends
            settings = settings.model_copy(update={"stop": stop})
        prepared = _PreparedRequest(
            chat=self._renderer.loggable(chat),
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

    async def _generate(
        self,
        request: GenerationRequest,
        cancellation_token: CancellationToken | None,
        on_tokens: TokenCallback | None,
    ) -> GenerationOutput:
        self._check_open()
        generation = self._engine.submit(request, on_tokens)
        if cancellation_token is not None:
            cancellation_token.add_callback(generation.cancel)
        try:
            output = await generation.result()
        except asyncio.CancelledError:
            generation.cancel()
            with contextlib.suppress(Exception):  # the engine stops within a step
                self._add_usage(request, await generation.result())
            raise
        self._add_usage(request, output)
        if output.cancelled:
            raise asyncio.CancelledError("The request was cancelled; generation stopped.")
        return output

    def _rejected(
        self,
        prepared: _PreparedRequest,
        result: CreateResult,
        failed: list[CreateResult],
        *,
        retry: bool = True,
    ) -> bool:
        """Whether ``result`` fails its check and the request is to be sampled again (with the
        next seed, if it has one).

        Raises:
            InvalidAnswerError: it fails, and no try is left (or decoding is deterministic:
                the same answer came twice), or it was streamed already (not ``retry``).
        """
        if prepared.check is None or result.finish_reason == "length":
            return False  # a cut-off answer says so in its finish reason
        errors = prepared.check.errors(result.content)
        if not errors:
            return False
        repeated = any(earlier.content == result.content for earlier in failed)
        failed.append(result)
        if not retry or repeated or len(failed) > self._config.max_resamples:
            answer = result.content
            text = (
                answer
                if isinstance(answer, str)
                else json.dumps([{"name": c.name, "arguments": c.arguments} for c in answer])
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
            self._total_usage = RequestUsage(
                prompt_tokens=self._total_usage.prompt_tokens + len(request.input_ids),
                completion_tokens=self._total_usage.completion_tokens + len(output.token_ids),
            )

    def _result(
        self, prepared: _PreparedRequest, output: GenerationOutput, parser: ResponseParser
    ) -> CreateResult:
        finish_reason: FinishReasons
        if parser.stopped or output.ended_with_eos:
            finish_reason = "stop"
        elif output.out_of_time or len(output.token_ids) >= prepared.generation.max_new_tokens:
            finish_reason = "length"
        else:
            finish_reason = "stop"
        usage = RequestUsage(
            prompt_tokens=len(prepared.generation.input_ids),
            completion_tokens=len(output.token_ids),
        )
        content: str | list[FunctionCall] = parser.content
        thought = parser.thought
        if prepared.tools is not None and (
            calls := self._tool_calling.answer(prepared.tools, output, parser)
        ):
            content, thought, finish_reason = calls.calls, calls.thought, "function_calls"
        return CreateResult(
            finish_reason=finish_reason,
            content=content,
            usage=usage,
            cached=False,
            thought=thought,
        )
