"""Loading the tokenizer, the model config and the model; refusing what cannot be loaded."""

from __future__ import annotations

import importlib.util
import threading
from typing import Any

import torch
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.models.auto.auto_factory import _BaseAutoModelClass

from ._config import ModelConfig as Config
from ._errors import ModelLoadError
from ._model_source import check_model_source as check_model_source

_CONTEXT_ATTRIBUTES = (
    "max_position_embeddings",
    "n_positions",
    "max_sequence_length",
    "seq_length",
    "n_ctx",
)
_UNBOUNDED = 10**9  # tokenizers without a limit report a huge model_max_length

_LOADING = threading.Lock()
"""Loading is not thread-safe in transformers: two clients loading at once (one's tokenizer
on the caller's thread, another's weights on its worker) can leave tied weights such as
``lm_head`` randomly initialised. Every load in this process takes this lock."""


def _hub_arguments(config: Config) -> dict[str, Any]:
    return {
        "revision": config.revision,
        "trust_remote_code": config.trust_remote_code,
        "local_files_only": config.local_files_only,
    }


def check_tokenizer(tokenizer: PreTrainedTokenizerBase, model_name: str) -> None:
    """Refuse a tokenizer that turns text into no tokens at all.

    transformers builds such an empty tokenizer when a model directory lacks its tokenizer
    files; every prompt would then count 0 tokens and generation fail later, obscurely.
    """
    if not tokenizer("Hello, world!", add_special_tokens=False)["input_ids"]:
        raise ModelLoadError(
            f"The tokenizer of {model_name!r} is empty: the model has no tokenizer files "
            "(tokenizer.json, tokenizer_config.json, ...); copy them from the original model."
        )


def load_tokenizer(config: Config) -> PreTrainedTokenizerBase:
    """Load the model's tokenizer."""
    with _LOADING:
        tokenizer: PreTrainedTokenizerBase = AutoTokenizer.from_pretrained(
            config.model_name, **_hub_arguments(config)
        )
    return tokenizer


def load_model_config(config: Config) -> PretrainedConfig:
    """Load the model's ``config.json``."""
    with _LOADING:
        model_config: PretrainedConfig = AutoConfig.from_pretrained(
            config.model_name, **_hub_arguments(config)
        )
    return model_config


def load_model(
    config: Config, auto_class: type[_BaseAutoModelClass] = AutoModelForCausalLM
) -> PreTrainedModel:
    """Load the weights (in eval mode) on ``device`` or by ``device_map``; on the worker only.

    A plain device is a device map too (the weights load straight onto it), which transformers
    does with accelerate; without accelerate the weights load here and move to the device.
    """
    straight = config.device is None or importlib.util.find_spec("accelerate") is not None
    with _LOADING:
        model: PreTrainedModel = auto_class.from_pretrained(
            config.model_name,
            dtype=config.dtype,
            device_map=(config.device or config.device_map) if straight else None,
            **_hub_arguments(config),
        )
    if not straight and config.device is not None:
        torch.nn.Module.to(model, config.device)
    return model


def context_window(
    config: Config, model_config: PretrainedConfig, tokenizer: PreTrainedTokenizerBase
) -> int:
    """The number of tokens the model can attend to: the override, else the model's own."""
    if config.context_window is not None:
        return config.context_window
    text_config = model_config.get_text_config()
    for attribute in _CONTEXT_ATTRIBUTES:
        value = getattr(text_config, attribute, None)
        if isinstance(value, int) and value > 0:
            return value
    limit = tokenizer.model_max_length
    if isinstance(limit, int) and 0 < limit < _UNBOUNDED:
        return limit
    raise ValueError(
        f"Cannot tell the context window of {config.model_name!r} from its config or "
        "tokenizer: set context_window in the client config."
    )
