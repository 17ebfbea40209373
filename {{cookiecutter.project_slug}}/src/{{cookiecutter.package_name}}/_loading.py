"""Loading the tokenizer, the model config and the model."""

from __future__ import annotations

import threading
from typing import Any

from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.models.auto.auto_factory import _BaseAutoModelClass

from ._config import {{ cookiecutter.client_class_name }}Config as Config

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
    """Load the weights (in eval mode) on ``device`` or by ``device_map``; on the worker only."""
    with _LOADING:
        model: PreTrainedModel = auto_class.from_pretrained(
            config.model_name,
            dtype=config.dtype,
            # A plain device is a device map too: the weights load straight onto it.
            device_map=config.device if config.device is not None else config.device_map,
            **_hub_arguments(config),
        )
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
