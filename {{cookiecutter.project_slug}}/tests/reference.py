"""What the tokenizer and model give without the client, to compare the client against."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import torch
from transformers import AutoModelForCausalLM, BatchEncoding, PreTrainedTokenizerBase

from {{ cookiecutter.package_name }}._core._generation import SupportsGenerate
from {{ cookiecutter.package_name }}._core._loading import _LOADING


def template_ids(tokenizer: PreTrainedTokenizerBase, chat: list[dict[str, Any]]) -> list[int]:
    """Prompt token ids straight from ``apply_chat_template``."""
    encoding = tokenizer.apply_chat_template(chat, add_generation_prompt=True, return_dict=True)
    return list(cast(BatchEncoding, encoding)["input_ids"])


def load_model(path: Path) -> SupportsGenerate:
    """The model, loaded the plain way (under the client's loading lock: two loads at once
    in two threads can leave tied weights such as ``lm_head`` untied in transformers)."""
    with _LOADING:
        return cast(SupportsGenerate, AutoModelForCausalLM.from_pretrained(path))


def bare_generate(model: SupportsGenerate, prompt_ids: list[int], **settings: Any) -> list[int]:
    """New token ids from a bare ``model.generate`` call."""
    input_ids = torch.tensor([prompt_ids])
    with torch.inference_mode():
        output = model.generate(
            input_ids=input_ids, attention_mask=torch.ones_like(input_ids), **settings
        )
    new_tokens: list[int] = output[0, len(prompt_ids) :].tolist()
    return new_tokens
