"""The Agent Framework chat client backed by a local HuggingFace transformers model."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterable, Awaitable, Mapping, Sequence
from typing import Any, ClassVar, Generic

from agent_framework import (
    BaseChatClient,
    ChatAndFunctionMiddlewareTypes,
    ChatMiddlewareLayer,
    ChatOptions,
    ChatResponse,
    ChatResponseUpdate,
    Content,
    FinishReason,
    FunctionInvocationConfiguration,
    FunctionInvocationLayer,
    Message,
    ResponseStream,
)
from agent_framework.exceptions import ChatClientInvalidRequestException
from agent_framework.observability import ChatTelemetryLayer
from pydantic import BaseModel

from .._core._chat import Answer, Chat, PreparedRequest
from .._core._config import ModelConfig
from .._core._defaults import DEFAULT_CAPABILITIES, Capabilities
from .._core._types import check_text
from ._messages import (
    answer_contents,
    to_chat_messages,
    to_chat_tools,
    to_tool_choice,
    usage_details,
)

if sys.version_info >= (3, 13):
    from typing import TypeVar  # pragma: no cover
else:
    from typing_extensions import TypeVar  # pragma: no cover

ResponseModelT = TypeVar("ResponseModelT", bound=BaseModel | None, default=None)

_OPTION_NAMES = {"max_tokens": "max_new_tokens"}
"""Agent Framework's names of the core's settings."""
_HANDLED = frozenset({"tools", "tool_choice", "response_format", "instructions", "allow_multiple_tool_calls", "model"})
_NO_EFFECT = frozenset({"metadata", "user", "store", "conversation_id"})
"""Options about the service's bookkeeping: a local model keeps none, so they change nothing."""
_UNSUPPORTED = frozenset({"frequency_penalty", "presence_penalty", "logit_bias"})
_SAMPLING = ("temperature", "top_p", "top_k")


class {{ cookiecutter.agent_framework_client_class_name }}Options(ChatOptions[ResponseModelT], Generic[ResponseModelT], total=False):
    """The options a request takes: Agent Framework's, and transformers' decoding settings."""

    top_k: int
    repetition_penalty: float
    do_sample: bool


OptionsT = TypeVar(
    "OptionsT",
    bound=ChatOptions[Any],
    default="{{ cookiecutter.agent_framework_client_class_name }}Options[None]",
    covariant=True,
)


class {{ cookiecutter.agent_framework_client_class_name }}(
    FunctionInvocationLayer[OptionsT],
    ChatMiddlewareLayer[OptionsT],
    ChatTelemetryLayer[OptionsT],
    BaseChatClient[OptionsT],
    Generic[OptionsT],
):
    """Agent Framework chat client for a local HuggingFace transformers model.

    The same core as the AutoGen client: prompts through the model's chat template, exact
    token counts, text streamed as the model produces it, tool calls read and forced in the
    model's own syntax, ``response_format`` answers constrained to their schema and checked.
    Agent Framework's function invocation, middleware and telemetry layers run around it.
    A client with the same model settings as another in this process (either front's)
    shares its loaded model. A request with both tools and ``response_format`` answers in
    the format, unless it forces a call (``tool_choice`` required or a named tool): an agent
    then runs the call and gets its formatted answer on the next turn.

    Cancelling the task that awaits a response, or closing a stream early, stops the model
    at its next decoding step.

    Args:
        middleware: chat and function middleware, as for Agent Framework's own clients.
        function_invocation_configuration: how tools are invoked (maximum iterations...).
        additional_properties: stored on the client.
        **config: the fields of the model config (``model_name``, ``max_new_tokens``,
            ``temperature``, ``device``, ``base_url``, ...), as the AutoGen client's config
            has them; invalid values raise ``pydantic.ValidationError`` naming the field.

    Example:

        .. code-block:: python

            client = ChatClient(model_name="Qwen/Qwen3-0.6B", max_new_tokens=128)
            agent = client.as_agent(instructions="Answer briefly.")
            print(await agent.run("Hi!"))
            await client.close()
    """

    OTEL_PROVIDER_NAME: ClassVar[str] = "huggingface"
    DEFAULT_EXCLUDE: ClassVar[set[str]] = {
        *BaseChatClient.DEFAULT_EXCLUDE,
        "config",
        "chat_middleware",
        "function_middleware",
        "otel_provider_name",
    }

    def __init__(
        self,
        *,
        middleware: Sequence[ChatAndFunctionMiddlewareTypes] | None = None,
        function_invocation_configuration: FunctionInvocationConfiguration | None = None,
        additional_properties: dict[str, Any] | None = None,
        **config: Any,
    ) -> None:
        self.config = ModelConfig(**config)
        capabilities: Capabilities = {**DEFAULT_CAPABILITIES}
        self._chat = Chat(self.config, capabilities, type(self).__name__)
        super().__init__(
            middleware=middleware,
            function_invocation_configuration=function_invocation_configuration,
            additional_properties=additional_properties,
        )

    @property
    def model(self) -> str:
        """The model's name (its id or local path)."""
        return self.config.model_name

    @property
    def context_window(self) -> int:
        """The most tokens (prompt and answer) the model attends to."""
        return self._chat.context_window

    def to_dict(self, *, exclude: set[str] | None = None, exclude_none: bool = True) -> dict[str, Any]:
        """The client as a dict (``from_dict`` makes it again): the config's fields given at
        construction, and Agent Framework's settings."""
        result = super().to_dict(exclude=exclude, exclude_none=exclude_none)
        result.update(self.config.model_dump(mode="json", exclude_unset=True))
        return result

    def service_url(self) -> str:
        """The vLLM server's URL, or ``local`` when the model runs in this process."""
        return self.config.base_url or "local"

    def count_tokens(self, messages: Sequence[Message], *, tools: Sequence[Any] = ()) -> int:
        """The exact number of tokens of the prompt the model gets for these messages."""
        return self._chat.count_tokens(to_chat_messages(messages), to_chat_tools(tools))

    async def close(self) -> None:
        """Stop this client's requests and release the model (once no other client uses it);
        the client cannot be used after."""
        await self._chat.close()

    def _inner_get_response(
        self,
        *,
        messages: Sequence[Message],
        stream: bool,
        options: Mapping[str, Any],
        **kwargs: Any,
    ) -> Awaitable[ChatResponse] | ResponseStream[ChatResponseUpdate, ChatResponse]:
        if stream:
            return self._build_response_stream(
                self._stream(messages, options), response_format=options.get("response_format")
            )
        return self._respond(messages, options)

    async def _respond(self, messages: Sequence[Message], options: Mapping[str, Any]) -> ChatResponse:
        prepared, options = await self._prepare(messages, options)
        answer = self._limited(await self._chat.complete(prepared), options)
        return ChatResponse(
            messages=[Message(role="assistant", contents=answer_contents(answer, streamed=False))],
            model=self.model,
            finish_reason=_finish_reason(answer),
            usage_details=usage_details(answer),
            response_format=options.get("response_format"),
        )

    async def _stream(
        self, messages: Sequence[Message], options: Mapping[str, Any]
    ) -> AsyncIterable[ChatResponseUpdate]:
        prepared, options = await self._prepare(messages, options)
        stream = self._chat.stream(prepared)
        try:
            async for item in stream:
                if isinstance(item, str):
                    yield ChatResponseUpdate(
                        contents=[Content.from_text(item)], role="assistant", model=self.model
                    )
                    continue
                answer = self._limited(item, options)
                yield ChatResponseUpdate(
                    contents=[
                        *answer_contents(answer, streamed=True),
                        Content.from_usage(usage_details(answer)),
                    ],
                    role="assistant",
                    model=self.model,
                    finish_reason=_finish_reason(answer),
                )
        finally:
            await stream.aclose()

    async def _prepare(
        self, messages: Sequence[Message], options: Mapping[str, Any]
    ) -> tuple[PreparedRequest, dict[str, Any]]:
        self._chat.check_open()
        validated = await self._validate_options(options)
        if (model := validated.get("model")) and model != self.model:
            raise ChatClientInvalidRequestException(
                f"This client runs {self.model!r}; it cannot answer with model {model!r}."
            )
        if unsupported := sorted(_UNSUPPORTED & {k for k, v in validated.items() if v is not None}):
            raise ChatClientInvalidRequestException(
                f"{', '.join(unsupported)} are not supported by transformers' generate; "
                "repetition_penalty is the nearest setting."
            )
        chat = to_chat_messages(messages)
        check_text(chat)
        if instructions := validated.get("instructions"):
            chat = [{"role": "system", "content": instructions}, *chat]
        tools = to_chat_tools(validated.get("tools"))
        tool_choice, tools = to_tool_choice(validated.get("tool_choice"), tools)
        response_format = validated.get("response_format")
        if response_format is not None and tools:
            # One grammar per answer: a forced call is a call (the format applies to the
            # answer after it), else the answer is the format (no call offered).
            if tool_choice == "auto":
                tool_choice = "none"
            elif tool_choice != "none":
                response_format = None
        prepared = await self._chat.prepare(
            chat,
            tools=tools,
            tool_choice=tool_choice,
            json_output=response_format,
            extra_arguments=_settings(validated),
        )
        return prepared, validated

    @staticmethod
    def _limited(answer: Answer, options: Mapping[str, Any]) -> Answer:
        """``answer`` with its first call only, where several calls are not allowed."""
        if options.get("allow_multiple_tool_calls") is False and not isinstance(answer.content, str):
            answer.content = answer.content[:1]
        return answer


def _settings(options: Mapping[str, Any]) -> dict[str, Any]:
    """The decoding settings among ``options``, named as the core names them."""
    settings: dict[str, Any] = {}
    for name, value in options.items():
        if value is None or name in _HANDLED or name in _NO_EFFECT or name in _UNSUPPORTED:
            continue
        if name == "stop" and isinstance(value, str):
            value = [value]
        if name == "temperature" and value == 0:
            settings["do_sample"] = False  # temperature 0: the likeliest token, always
            continue
        settings[_OPTION_NAMES.get(name, name)] = value
    if "do_sample" not in settings and any(name in settings for name in _SAMPLING):
        settings["do_sample"] = True  # a request's temperature (or top_p) asks for sampling
    return settings


def _finish_reason(answer: Answer) -> FinishReason:
    return FinishReason("tool_calls" if answer.finish_reason == "function_calls" else answer.finish_reason)
