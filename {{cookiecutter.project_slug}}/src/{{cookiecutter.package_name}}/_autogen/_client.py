"""The AutoGen ``ChatCompletionClient`` backed by a local HuggingFace transformers model."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any, Literal, cast

from autogen_core import EVENT_LOGGER_NAME, CancellationToken, Component
from autogen_core.logging import LLMCallEvent, LLMStreamEndEvent, LLMStreamStartEvent
from autogen_core.models import (
    ChatCompletionClient,
    CreateResult,
    LLMMessage,
    ModelCapabilities,
    ModelInfo,
    RequestUsage,
)
from autogen_core.tools import Tool, ToolSchema
from pydantic import BaseModel

from .._core._chat import Answer, CancelHook, Chat, PreparedRequest
from ._checks import check_messages
from ._config import {{ cookiecutter.client_class_name }}Config as Config
from ._messages import to_chat_messages, to_chat_tools, to_function_calls, to_tool_choice
from ._model_info import DEFAULT_MODEL_INFO

event_logger = logging.getLogger(EVENT_LOGGER_NAME)


class {{ cookiecutter.client_class_name }}(ChatCompletionClient, Component[Config]):
    """Chat completion client for a local HuggingFace transformers model.

    The prompt is built with the tokenizer's chat template, token counts come from the
    tokenizer, ``create_stream`` yields text as the model produces it, and a cancelled
    ``CancellationToken`` stops ``generate`` at the next decoding step. All torch work runs
    on one thread that the model owns, so the event loop is never blocked.

    The tokenizer is loaded in the constructor; the weights load on the engine thread in
    the background, and the first request waits for them. Clients in one process with the
    same model settings (this front's or Agent Framework's) share one loaded model.

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
        self._chat = Chat(self._config, self._model_info, type(self).__name__)

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
        return self._chat.context_window

    def actual_usage(self) -> RequestUsage:
        """Tokens the model processed so far, cancelled generations included."""
        return self.total_usage()

    def total_usage(self) -> RequestUsage:
        """Tokens the model processed so far, cancelled generations included."""
        usage = self._chat.total_usage()
        return RequestUsage(
            prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens
        )

    def count_tokens(
        self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = []
    ) -> int:
        """The exact number of tokens of the prompt the model gets for these messages.

        Synchronous, so images (if any) are preprocessed on the calling thread here; requests
        preprocess them on the engine thread.
        """
        check_messages(messages, self._model_info)
        return self._chat.count_tokens(to_chat_messages(messages), to_chat_tools(tools))

    def remaining_tokens(
        self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = []
    ) -> int:
        """Tokens left in the context window after the prompt for these messages."""
        return max(0, self.context_window - self.count_tokens(messages, tools=tools))

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
        answer = await self._chat.complete(prepared, _cancel_hook(cancellation_token))
        result = _create_result(answer)
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
        event_logger.info(LLMStreamStartEvent(messages=prepared.chat))
        stream = self._chat.stream(prepared, _cancel_hook(cancellation_token))
        try:
            async for item in stream:
                if isinstance(item, str):
                    yield item
                    continue
                result = _create_result(item)
                event_logger.info(
                    LLMStreamEndEvent(
                        response=result.model_dump(),
                        prompt_tokens=result.usage.prompt_tokens,
                        completion_tokens=result.usage.completion_tokens,
                    )
                )
                yield result
        finally:
            await stream.aclose()

    async def close(self) -> None:
        """Stop the model and the engine thread, and release the model (once no other client
        uses it).

        Requests still waiting fail with ``ClientClosedError``; one that is generating stops
        at its next decoding step and raises ``asyncio.CancelledError``. The client cannot be
        used after.
        """
        await self._chat.close()

    # -- Internals ---------------------------------------------------------------------

    async def _prepare(
        self,
        messages: Sequence[LLMMessage],
        tools: Sequence[Tool | ToolSchema],
        tool_choice: Tool | Literal["auto", "required", "none"],
        json_output: bool | type[BaseModel] | None,
        extra_create_args: Mapping[str, Any],
    ) -> PreparedRequest:
        self._chat.check_open()
        check_messages(messages, self._model_info)
        return await self._chat.prepare(
            to_chat_messages(messages),
            tools=to_chat_tools(tools),
            tool_choice=to_tool_choice(tool_choice),
            json_output=json_output,
            extra_arguments=extra_create_args,
        )


def _cancel_hook(token: CancellationToken | None) -> CancelHook | None:
    return None if token is None else token.add_callback


def _create_result(answer: Answer) -> CreateResult:
    content = answer.content
    return CreateResult(
        finish_reason=answer.finish_reason,
        content=content if isinstance(content, str) else to_function_calls(content),
        usage=RequestUsage(
            prompt_tokens=answer.prompt_tokens, completion_tokens=answer.completion_tokens
        ),
        cached=False,
        thought=answer.thought,
    )
