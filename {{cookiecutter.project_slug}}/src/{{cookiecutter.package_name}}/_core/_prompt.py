"""Chats to prompts through the model's chat template, and prompts to token ids."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, cast

import torch
from jinja2 import TemplateError
from transformers import AutoModelForCausalLM, BatchEncoding, PreTrainedTokenizerBase
from transformers.models.auto.auto_factory import _BaseAutoModelClass

from ._errors import CapabilityError
from ._types import ChatMessage, image_origin

__all__ = ["ChatMessage", "EncodedPrompt", "PromptRenderer"]

FALLBACK_CHAT_TEMPLATE = (
    resources.files(__package__).joinpath("fallback_chat_template.jinja").read_text("utf-8")
)
FALLBACK_STOP = "\nUser:"
"""Stop string added when the fallback template is in use."""


@dataclass
class EncodedPrompt:
    """The prompt as the model takes it."""

    input_ids: list[int]
    model_inputs: dict[str, torch.Tensor] = field(default_factory=dict)
    """Inputs for ``generate`` besides the token ids, such as an image's ``pixel_values``."""


def text_content(message: ChatMessage) -> ChatMessage:
    """``message`` with a list of text parts joined into one text, as text templates take it.

    Raises:
        CapabilityError: the message holds an image (this client renders text only).
    """
    content = message.get("content")
    if not isinstance(content, list):
        return message
    texts: list[str] = []
    for part in content:
        if part.get("type") == "image":
            raise CapabilityError(
                "This client was generated without vision: it cannot take "
                f"{image_origin(part)}."
            )
        texts.append(part.get("text", ""))
    return {**message, "content": "\n".join(texts)}


@dataclass(frozen=True)
class CallTurns:
    """How a chat template takes assistant turns with tool calls (learnt by probing).

    transformers drops keys whose value is ``None`` before rendering, so a template that writes
    calls only for ``content`` none (DeepSeek R1 Distill Llama's) cannot be given them."""

    text_arguments: bool = False
    """Arguments as JSON strings, not dicts (Functionary v3.2 and DeepSeek R1 concatenate them
    to text)."""

    def apply(self, chat: list[ChatMessage]) -> list[ChatMessage]:
        """``chat`` with its call turns in this form."""
        if self == CallTurns():
            return chat
        return [self._turn(message) if message.get("tool_calls") else message for message in chat]

    def _turn(self, message: ChatMessage) -> ChatMessage:
        return {**message, "tool_calls": [self._call(entry) for entry in message["tool_calls"]]}

    def _call(self, entry: dict[str, Any]) -> dict[str, Any]:
        function = entry["function"]
        arguments = function["arguments"]
        if self.text_arguments and not isinstance(arguments, str):
            arguments = json.dumps(arguments, ensure_ascii=False)
        return {**entry, "function": {**function, "arguments": arguments}}


def merge_system_messages(chat: list[ChatMessage], *, keep_leading: bool) -> list[ChatMessage]:
    """For templates that refuse system messages: fold their text into the next user turn
    (all of them, or all but a leading one)."""
    merged: list[ChatMessage] = []
    pending: list[str] = []
    for index, message in enumerate(chat):
        if message["role"] == "system" and not (keep_leading and index == 0):
            pending.append(message["content"])
        elif message["role"] == "user" and pending:
            merged.append({**message, "content": "\n\n".join([*pending, message["content"]])})
            pending = []
        else:
            merged.append(message)
    if pending:
        merged.append({"role": "user", "content": "\n\n".join(pending)})
    return merged


class PromptRenderer:
    """Renders chats through the model's chat template (or an override, or the fallback).

    Rendering keeps no state across requests. At construction, probe renders tell what the
    template needs; a probe that fails in any way (a template error, a ``TypeError``, a
    ``raise_exception``) means the template does not do that, never an error here:

    - a template that cannot render a chat without tools (it loops over ``tools`` unguarded,
      as Hermes 3's and Command R+'s) gets an empty tool list instead of none;
    - one that cannot render a plain user turn at all is replaced by the fallback template,
      with a warning;
    - one that refuses a leading system message, or a later one, gets such a message folded
      into the next user turn (that request only). A template that refuses anyway gets a
      second try with every system message folded.
    """

    model_class: type[_BaseAutoModelClass] = AutoModelForCausalLM
    """The auto class that loads a model for these prompts."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, chat_template: str | None) -> None:
        self.tokenizer = tokenizer
        self.uses_fallback = chat_template is None and not tokenizer.chat_template
        self._template = FALLBACK_CHAT_TEMPLATE if self.uses_fallback else chat_template
        self._no_tools: list[dict[str, Any]] | None = None
        """What the template gets as ``tools`` when there are none."""
        system: ChatMessage = {"role": "system", "content": "Probe."}
        user: ChatMessage = {"role": "user", "content": "Probe."}
        answer: ChatMessage = {"role": "assistant", "content": "Probe."}
        if (failure := self._failure([user])) is not None:
            self._no_tools = []
            if self._failure([user]) is not None:
                warnings.warn(
                    f"The chat template cannot render a user message ({failure}); the client "
                    "uses its fallback template. Set chat_template to choose one.",
                    stacklevel=3,
                )
                self._no_tools, self.uses_fallback = None, True
                self._template = FALLBACK_CHAT_TEMPLATE
        self._refuses_leading_system = self._failure([system, user]) is not None
        self._refuses_later_system = self._failure([user, answer, system, user]) is not None

    def to_chat(self, messages: Sequence[ChatMessage]) -> list[ChatMessage]:
        """The messages as this renderer's chat template takes them (text: a user message's
        parts joined).

        Raises:
            CapabilityError: a message holds an image.
        """
        return [text_content(message) for message in messages]

    def loggable(self, chat: list[ChatMessage]) -> list[ChatMessage]:
        """``chat`` as JSON-serializable dicts, for event logs."""
        return chat

    def runs_torch(self, chat: list[ChatMessage]) -> bool:
        """Whether rendering ``chat`` runs torch code (image processing), which then belongs
        on the engine's thread. Text goes through the tokenizer only."""
        return False

    def render_messages(
        self,
        messages: Sequence[ChatMessage],
        tools: list[dict[str, Any]] | None,
        add_generation_prompt: bool,
        /,
        *,
        call_turns: CallTurns = CallTurns(),
    ) -> str:
        """The prompt text of ``messages`` as the template renders it (no system folding),
        assistant turns with calls in the ``call_turns`` form."""
        text = self.tokenizer.apply_chat_template(
            call_turns.apply(self.to_chat(messages)),
            tools=cast(list[dict[Any, Any] | Callable[..., Any]] | None, tools or self._no_tools),
            chat_template=self._template,
            add_generation_prompt=add_generation_prompt,
            tokenize=False,
        )
        assert isinstance(text, str)
        return text

    def _failure(self, messages: Sequence[ChatMessage]) -> str | None:
        """Why the template cannot render ``messages`` (None: it can)."""
        try:
            self.render_messages(messages, None, True)
        except Exception as error:  # any failure of a probe: the template does not do that
            return f"{type(error).__name__}: {error}"
        return None

    def _render(self, chat: list[ChatMessage], tools: list[dict[str, Any]] | None) -> EncodedPrompt:
        encoding = self.tokenizer.apply_chat_template(
            chat,
            tools=cast(list[dict[Any, Any] | Callable[..., Any]] | None, tools),
            chat_template=self._template,
            add_generation_prompt=True,
            tokenize=True,
            return_dict=True,
        )
        input_ids: list[int] = cast(BatchEncoding, encoding)["input_ids"]
        return EncodedPrompt(input_ids)

    def _folded(self, chat: list[ChatMessage], *, keep_leading: bool) -> list[ChatMessage]:
        """``chat`` with its system messages (all, or all but a leading one) folded."""
        return merge_system_messages(chat, keep_leading=keep_leading)

    def encode(
        self, chat: list[ChatMessage], tools: list[dict[str, Any]] | None = None
    ) -> EncodedPrompt:
        """The prompt the model gets for ``chat``."""
        systems = [index for index, message in enumerate(chat) if message["role"] == "system"]
        fold_all = bool(systems) and systems[0] == 0 and self._refuses_leading_system
        fold_later = any(index > 0 for index in systems) and self._refuses_later_system
        folded = fold_all or fold_later
        rendered = self._folded(chat, keep_leading=not fold_all) if folded else chat
        tools = tools or self._no_tools
        try:
            return self._render(rendered, tools)
        except TemplateError:
            if not systems or fold_all:
                raise
            return self._render(self._folded(chat, keep_leading=False), tools)
