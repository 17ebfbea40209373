"""Tiny causal language models built offline, for the demo, the tests and the benchmarks.

Nothing is downloaded: a byte-level BPE tokenizer is trained on a few sentences, a small
Qwen2 model is created from a config with random weights, and both are saved with
``save_pretrained`` so that the client loads them through the ordinary ``from_pretrained`` path.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
    ProcessorMixin,
)

CHAT_TEMPLATE = (
    resources.files(__package__).joinpath("tiny_model_chat_template.jinja").read_text("utf-8")
)
"""A ChatML chat template with tools (Hermes ``<tool_call>`` blocks), as Qwen models have."""

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
ADDED_TOKENS = ["<think>", "</think>", "<tool_call>", "</tool_call>"]

_CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Hello! How are you today? I am fine, thank you.",
    "AutoGen agents call tools, stream tokens and answer questions.",
    "The weather in Paris is sunny; in Tokyo it rains. Temperatures: 21°C, 18°C.",
    'JSON looks like {"name": "value", "count": 3, "items": [true, false, null]}.',
    "Numbers 0 1 2 3 4 5 6 7 8 9 10 100 1000 and symbols - _ + = * / \\ | < > ( ) [ ] { }",
    "Unicode: café, naïve, Straße, 日本語, emoji 🙂 and 🚀.",
    "system user assistant tool think function arguments result error stop length",
]


def train_tokenizer(vocab_size: int) -> PreTrainedTokenizerFast:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_CORPUS * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=SPECIAL_TOKENS[1:],
    )
    fast.add_tokens(ADDED_TOKENS)
    return fast


def build_tiny_model(
    path: Path,
    *,
    chat_template: str | None = CHAT_TEMPLATE,
    hidden_size: int = 64,
    num_layers: int = 2,
    vocab_size: int = 512,
    max_position_embeddings: int = 2048,
    seed: int = 0,
    special_tokens: Sequence[str] = (),
) -> Path:
    """Build and save a random tiny Qwen2 model with its tokenizer; return ``path``.

    ``chat_template`` is the tokenizer's chat template, or ``None`` for a tokenizer without
    one, like GPT-2's. ``special_tokens`` are added as special (control) tokens, such as
    Mistral's ``[TOOL_CALLS]``.
    """
    tokenizer = train_tokenizer(vocab_size)
    tokenizer.add_tokens(list(special_tokens), special_tokens=True)
    tokenizer.chat_template = chat_template
    config = AutoConfig.for_model(
        "qwen2",
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=max(2, hidden_size // 64),
        num_key_value_heads=max(1, hidden_size // 128),
        max_position_embeddings=max_position_embeddings,
        bos_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
        # Wider than the default 0.02 so that greedy decoding of random weights gives varied text.
        initializer_range=0.2,
    )
    torch.manual_seed(seed)
    return save_greedy(AutoModelForCausalLM.from_config(config), tokenizer, tokenizer, path)


def save_greedy(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    preprocessor: PreTrainedTokenizerBase | ProcessorMixin,
    path: Path,
) -> Path:
    """Save ``model``, greedy and ending at the tokenizer's end token, with its preprocessor."""
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.do_sample = False
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    preprocessor.save_pretrained(path)
    return path
