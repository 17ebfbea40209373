"""The tests' tiny models: the package's offline builder, with chat templates by name.

``"chatml_tools"`` is the package's own template (the demo model's); the other names are files
in ``tests/chat_templates``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedTokenizerFast

from {{ cookiecutter.package_name }}._core._tiny_models import CHAT_TEMPLATE, save_greedy, train_tokenizer
from {{ cookiecutter.package_name }}._core._tiny_models import build_tiny_model as _build_tiny_model

CHAT_TEMPLATES = Path(__file__).parent / "chat_templates"

__all__ = [
    "CHAT_TEMPLATES",
    "build_tiny_gpt2",
    "build_tiny_model",
    "save_greedy",
    "template_text",
    "tiny_tokenizer",
    "train_tokenizer",
]


def template_text(name: str) -> str:
    """The chat template called ``name``."""
    if name == "chatml_tools":
        return CHAT_TEMPLATE
    return (CHAT_TEMPLATES / f"{name}.jinja").read_text(encoding="utf-8")


def tiny_tokenizer(
    chat_template: str | None = "chatml_tools",
    *,
    vocab_size: int = 512,
    special_tokens: Sequence[str] = (),
) -> PreTrainedTokenizerFast:
    """The tiny models' tokenizer, with a chat template by name (``None``: no template) and
    extra special (control) tokens."""
    tokenizer = train_tokenizer(vocab_size)
    tokenizer.add_tokens(list(special_tokens), special_tokens=True)
    if chat_template is not None:
        tokenizer.chat_template = template_text(chat_template)
    return tokenizer


def build_tiny_model(path: Path, *, chat_template: str | None = "chatml_tools", **options: Any) -> Path:
    """The package's ``build_tiny_model``, with ``chat_template`` given by name (or ``None``)."""
    text = None if chat_template is None else template_text(chat_template)
    return _build_tiny_model(path, chat_template=text, **options)


def build_tiny_gpt2(path: Path, *, n_positions: int = 1024, seed: int = 0) -> Path:
    """A random tiny GPT-2 (learned absolute positions) whose tokenizer has no chat template."""
    tokenizer = train_tokenizer(512)
    config = AutoConfig.for_model(
        "gpt2",
        vocab_size=len(tokenizer),
        n_positions=n_positions,
        n_embd=64,
        n_layer=2,
        n_head=2,
        bos_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        eos_token_id=tokenizer.eos_token_id,
        initializer_range=0.2,
    )
    torch.manual_seed(seed)
    return save_greedy(AutoModelForCausalLM.from_config(config), tokenizer, tokenizer, path)
