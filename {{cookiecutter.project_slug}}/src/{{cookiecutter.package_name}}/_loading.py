"""Loading the tokenizer, the model config and the model; refusing what cannot be loaded."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from huggingface_hub import constants, get_hf_file_metadata, hf_hub_url, try_to_load_from_cache
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HFValidationError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import validate_repo_id  # type: ignore[attr-defined]
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
from ._errors import ModelLoadError

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


def check_model_source(config: Config) -> None:
    """Refuse, before loading anything, a model that cannot be loaded.

    A local path must be a directory with a ``config.json``. A hub id not in the local cache
    is looked up with one request (``HF_HUB_ETAG_TIMEOUT``, 10 s by default) instead of
    transformers' retries, which take about a minute when the hub cannot be reached.

    Raises:
        ModelLoadError: naming the model, what is wrong and what to do.
    """
    name = config.model_name
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelLoadError(f"{name!r} is a file: give the model's directory.")
        if not (path / "config.json").is_file():
            raise ModelLoadError(
                f"The model directory {name!r} has no config.json: give the directory that holds "
                "the model's files (config.json, weights, tokenizer files)."
            )
        return
    try:
        validate_repo_id(name)
    except HFValidationError:
        raise ModelLoadError(
            f"The model directory {name!r} does not exist (nor is it a hub id such as "
            "'Qwen/Qwen3-0.6B'): check the path."
        ) from None
    if isinstance(try_to_load_from_cache(name, "config.json", revision=config.revision), str):
        return  # cached: transformers falls back to the cache if the hub is unreachable
    if config.local_files_only or constants.is_offline_mode():
        raise ModelLoadError(
            f"{name!r} is neither a local directory nor in the HuggingFace cache, and downloads "
            "are off (local_files_only or HF_HUB_OFFLINE): give a local directory, or download "
            "the model once online."
        )
    _look_up_on_hub(name, config.revision)


def _look_up_on_hub(name: str, revision: str | None) -> None:
    """One request for the model's ``config.json`` on the hub, errors made clear."""
    try:
        get_hf_file_metadata(
            hf_hub_url(name, "config.json", revision=revision),
            timeout=constants.HF_HUB_ETAG_TIMEOUT,
        )
    except GatedRepoError:
        problem = f"is gated: accept its conditions at {constants.ENDPOINT}/{name}, then log in"
        raise ModelLoadError(f"{name!r} {problem} (`hf auth login`).") from None
    except RepositoryNotFoundError:
        raise ModelLoadError(
            f"{name!r} is neither a local directory nor a model on the hub (a private model "
            "needs `hf auth login`): check the name or path."
        ) from None
    except RevisionNotFoundError:
        raise ModelLoadError(f"{name!r} has no revision {revision!r} on the hub.") from None
    except EntryNotFoundError:
        raise ModelLoadError(
            f"{name!r} on the hub has no config.json: it is not a transformers model."
        ) from None
    except HfHubHTTPError as error:
        answer = " ".join(str(error).split())
        raise ModelLoadError(f"The hub could not give {name!r}: {answer}") from error
    except Exception as error:  # the HTTP library's connection errors and timeouts
        raise ModelLoadError(
            f"Cannot reach the HuggingFace hub at {constants.ENDPOINT} to get {name!r} "
            f"({type(error).__name__}: {error}): check the network or proxy, or give a local "
            "directory (HF_HUB_OFFLINE=1 uses the local cache only)."
        ) from error


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
