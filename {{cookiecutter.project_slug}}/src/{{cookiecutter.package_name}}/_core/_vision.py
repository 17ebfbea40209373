"""Prompts with images: the model's processor renders them, and picks the model class."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from jinja2 import TemplateError
from transformers import (
    AutoModelForImageTextToText,
    AutoProcessor,
    BatchFeature,
    PreTrainedTokenizerBase,
    ProcessorMixin,
)
from transformers.models.auto.auto_factory import _BaseAutoModelClass

from ._config import ModelConfig as Config
from ._errors import CapabilityError
from ._loading import _hub_arguments
from ._prompt import ChatMessage, EncodedPrompt, PromptRenderer
from ._types import image_origin
from ._vision_chat import (
    UnreadableImageError,
    image_parts,
    loggable_chat,
    merge_system_parts,
    to_vision_chat_messages,
)

_TEXT_INPUTS = ("input_ids", "attention_mask")


class VisionPromptRenderer(PromptRenderer):
    """Renders chats with images through the processor.

    The processor's chat template places the image placeholders, its tokenizer expands each
    into the image's tokens, and its image processor turns the pixels into model inputs
    (``pixel_values`` and friends) that travel with the token ids.
    """

    model_class: type[_BaseAutoModelClass] = AutoModelForImageTextToText

    def __init__(
        self, processor: ProcessorMixin, chat_template: str | None, model_name: str
    ) -> None:
        tokenizer: PreTrainedTokenizerBase = getattr(processor, "tokenizer")  # noqa: B009
        own = processor.chat_template
        if isinstance(own, dict):  # several named templates
            own = own.get("default")
        template = chat_template or own or tokenizer.chat_template
        if not template:
            raise ValueError(
                f"The processor of {model_name!r} has no chat template: set chat_template in "
                "the client config."
            )
        super().__init__(tokenizer, template)
        self._processor = processor

    def to_chat(self, messages: Sequence[ChatMessage]) -> list[ChatMessage]:
        return to_vision_chat_messages(messages)

    def loggable(self, chat: list[ChatMessage]) -> list[ChatMessage]:
        return loggable_chat(chat)

    def runs_torch(self, chat: list[ChatMessage]) -> bool:
        return bool(image_parts(chat))  # fast image processors work in torch

    def _render(self, chat: list[ChatMessage], tools: list[dict[str, Any]] | None) -> EncodedPrompt:
        try:
            encoding = self._processor.apply_chat_template(
                chat,
                chat_template=self._template,
                tools=tools,
                add_generation_prompt=True,
                tokenize=True,
                return_dict=True,
                return_tensors="pt",
            )
        except TemplateError:
            raise
        except Exception as error:
            self._raise_for_unreadable_image(chat, error)
            raise
        inputs = dict(cast(BatchFeature, encoding))
        input_ids: list[int] = inputs["input_ids"][0].tolist()
        return EncodedPrompt(
            input_ids, {name: value for name, value in inputs.items() if name not in _TEXT_INPUTS}
        )

    def _folded(self, chat: list[ChatMessage], *, keep_leading: bool) -> list[ChatMessage]:
        return merge_system_parts(chat, keep_leading=keep_leading)

    def _raise_for_unreadable_image(self, chat: list[ChatMessage], error: Exception) -> None:
        """After the processor failed: name the image it cannot take, if one fails alone."""
        for part in image_parts(chat):
            try:
                self._processor.image_processor(part["image"])
            except Exception as image_error:
                raise UnreadableImageError(
                    f"{part['origin']} cannot be processed by the model's image processor: "
                    f"{image_error}"
                ) from error


class TextOnlyRenderer(PromptRenderer):
    """A checkpoint without an image processor: a text model, which refuses images."""

    def __init__(
        self, tokenizer: PreTrainedTokenizerBase, chat_template: str | None, model_name: str
    ) -> None:
        super().__init__(tokenizer, chat_template)
        self._model_name = model_name

    def to_chat(self, messages: Sequence[ChatMessage]) -> list[ChatMessage]:
        for part in image_parts(list(messages)):
            raise CapabilityError(
                f"{self._model_name!r} is a text model (it has no image processor): it "
                f"cannot take {image_origin(part)}."
            )
        return super().to_chat(messages)


def load_renderer(config: Config) -> VisionPromptRenderer | TextOnlyRenderer:
    """Load the model's processor and wrap it in the renderer that fits the checkpoint.

    A vision checkpoint has a processor with an image processor; a text-only checkpoint's
    ``AutoProcessor`` is its tokenizer, and the client then works as a text client.
    """
    loaded = AutoProcessor.from_pretrained(  # type: ignore[no-untyped-call]
        config.model_name, **_hub_arguments(config)
    )
    if isinstance(loaded, PreTrainedTokenizerBase):
        return TextOnlyRenderer(loaded, config.chat_template, config.model_name)
    if (
        not isinstance(loaded, ProcessorMixin)
        or getattr(loaded, "tokenizer", None) is None
        or getattr(loaded, "image_processor", None) is None
    ):
        raise ValueError(
            f"The processor of {config.model_name!r} ({type(loaded).__name__}) lacks a "
            "tokenizer or an image processor: this client needs an image-text-to-text model."
        )
    return VisionPromptRenderer(loaded, config.chat_template, config.model_name)
