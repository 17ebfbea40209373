"""A tiny image-text-to-text model in the LLaVA style, built offline for the vision tests.

Nothing is downloaded: a small CLIP vision tower and a small Qwen2 text model with random
weights, joined by LLaVA's projector; the tiny BPE tokenizer gains an ``<image>`` token, and a
``LlavaProcessor`` (CLIP image processor, PIL backend: no torchvision needed) expands it into
the image's tokens. All is saved with ``save_pretrained``, so the client loads it through
``AutoProcessor`` and ``AutoModelForImageTextToText``.
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

import torch
from tiny_models import CHAT_TEMPLATES, save_greedy, train_tokenizer
from transformers import (
    AutoModelForImageTextToText,
    CLIPImageProcessorPil,
    CLIPVisionConfig,
    LlavaConfig,
    LlavaProcessor,
    Qwen2Config,
)

IMAGE_TOKEN = "<image>"
IMAGE_SIZE = 16
PATCH_SIZE = 8
TOKENS_PER_IMAGE = (IMAGE_SIZE // PATCH_SIZE) ** 2
"""Each image becomes this many ``<image>`` tokens: one per patch (LLaVA drops CLS)."""


def build_tiny_vision_model(path: Path, *, hidden_size: int = 64, seed: int = 0) -> Path:
    """Build and save a random tiny LLaVA model with its processor; return ``path``."""
    tokenizer = train_tokenizer(512)
    tokenizer.add_tokens([IMAGE_TOKEN], special_tokens=True)
    processor = LlavaProcessor(  # type: ignore[no-untyped-call]
        image_processor=CLIPImageProcessorPil(
            size={"shortest_edge": IMAGE_SIZE},
            crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        ),
        tokenizer=tokenizer,
        patch_size=PATCH_SIZE,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=(CHAT_TEMPLATES / "vision_chatml.jinja").read_text(encoding="utf-8"),
    )
    vision_config = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        image_size=IMAGE_SIZE,
        patch_size=PATCH_SIZE,
    )
    text_config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=2048,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
        # Wider than the default 0.02 so that greedy decoding of random weights gives varied text.
        initializer_range=0.2,
    )
    config = LlavaConfig(
        vision_config=vision_config,
        text_config=text_config,
        image_token_index=cast(int, tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)),
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = AutoModelForImageTextToText.from_config(config)  # type: ignore[no-untyped-call]
    return save_greedy(model, tokenizer, processor, path)
