"""Refusing, before torch or transformers is imported, a model that cannot be loaded."""

from __future__ import annotations

from pathlib import Path

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

from ._config import ModelConfig as Config
from ._errors import ModelLoadError


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
