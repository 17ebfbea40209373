"""The answers checked against the model itself, when its files are at hand.

The pre-generation hook reads the model's JSON and template files from a local directory or
the user's HuggingFace cache (never a download) and returns what they prove wrong (one line
each) and what they suggest. It runs in cookiecutter's Python, which may lack transformers:
only the standard library here.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_MAX_NEW_TOKENS = 512  # the generated config's default (a template test checks)
CONTEXT_ATTRIBUTES = (
    "max_position_embeddings",
    "n_positions",
    "max_sequence_length",
    "seq_length",
    "n_ctx",
)
PROCESSOR_FILES = ("preprocessor_config.json", "processor_config.json")
# AutoGen ModelFamily values a config's model_type names without doubt.
FAMILIES = {"mistral": "mistral", "ministral": "ministral", "pixtral": "pixtral"}
THINKING = re.compile(r"<think>|enable_thinking|reasoning_content")
TOOLS = re.compile(r"\btools\b")


@dataclass(frozen=True)
class ModelFiles:
    """What the model's files say, as far as this hook needs."""

    directory: Path
    config: dict[str, Any]
    tokenizer_config: dict[str, Any]
    templates: list[str]
    """Every chat template the model ships (named ones too); empty for a base model."""
    has_processor: bool


def hub_cache(env: Mapping[str, str]) -> Path:
    """The HuggingFace hub cache, where huggingface_hub looks for it."""
    if cache := env.get("HF_HUB_CACHE") or env.get("HUGGINGFACE_HUB_CACHE"):
        return Path(cache).expanduser()
    if home := env.get("HF_HOME"):
        return Path(home).expanduser() / "hub"
    base = Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()
    return base / "huggingface" / "hub"


def model_directory(name: str, env: Mapping[str, str]) -> Path | None:
    """The folder holding the model's files: a local directory, or its snapshot in the cache."""
    path = Path(name).expanduser()
    if path.is_dir():
        return path
    if path.exists() or name.count("/") != 1:
        return None
    repository = hub_cache(env) / ("models--" + name.replace("/", "--"))
    main = repository / "refs" / "main"
    if main.is_file():
        snapshot = repository / "snapshots" / main.read_text(encoding="utf-8").strip()
        return snapshot if snapshot.is_dir() else None
    return None


def _json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _templates(directory: Path, tokenizer_config: dict[str, Any]) -> list[str]:
    """The chat templates in the files transformers reads them from."""
    found: list[Any] = []
    for name in ("chat_template.jinja", "chat_template.json"):
        path = directory / name
        if path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
            found.append(_json(path).get("chat_template") if name.endswith(".json") else text)
    found.extend(
        path.read_text(encoding="utf-8", errors="replace")
        for path in sorted((directory / "additional_chat_templates").glob("*.jinja"))
    )
    inline = tokenizer_config.get("chat_template")
    found.extend(
        item.get("template") if isinstance(item, dict) else item
        for item in (inline if isinstance(inline, list) else [inline])
    )
    return [template for template in found if isinstance(template, str) and template.strip()]


def read_model(directory: Path) -> ModelFiles | None:
    """The model's files in ``directory``, or None when it holds no ``config.json``."""
    config = _json(directory / "config.json")
    if not config:
        return None
    tokenizer_config = _json(directory / "tokenizer_config.json")
    return ModelFiles(
        directory=directory,
        config=config,
        tokenizer_config=tokenizer_config,
        templates=_templates(directory, tokenizer_config),
        has_processor=any((directory / name).is_file() for name in PROCESSOR_FILES),
    )


def context_window(model: ModelFiles) -> int | None:
    """The context length the model's config (or tokenizer) states, if any."""
    text_config = model.config.get("text_config")
    config = text_config if isinstance(text_config, dict) else model.config
    for attribute in CONTEXT_ATTRIBUTES:
        value = config.get(attribute)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    limit = model.tokenizer_config.get("model_max_length")
    return limit if isinstance(limit, int) and 0 < limit < 10**9 else None


def contradictions(answers: Mapping[str, Any], model: ModelFiles) -> list[str]:
    """What the model's files prove wrong in the answers, one line each."""
    name = answers["model_name"]
    problems: list[str] = []
    if answers.get("vision") is True and not model.has_processor:
        problems.append(
            f"vision True, but {name!r} has no image processor (no {' or '.join(PROCESSOR_FILES)} "
            f"in {model.directory}): answer vision no, or choose a vision model"
        )
    if answers.get("function_calling") is True and not model.templates:
        problems.append(
            f"function_calling True, but {name!r} has no chat template (a base model): its "
            "tools would go through the plain 'Role: text' fallback, which it was never trained "
            "to answer with calls; answer function_calling no, or choose a chat model"
        )
    window = context_window(model)
    if window is not None and window < DEFAULT_MAX_NEW_TOKENS:
        problems.append(
            f"model_name {name!r} has a context window of {window} tokens, smaller than the "
            f"client's default max_new_tokens ({DEFAULT_MAX_NEW_TOKENS}): choose a model with "
            "a longer context"
        )
    return problems


def suggestions(answers: Mapping[str, Any], model: ModelFiles) -> list[str]:
    """What the model's files suggest about the answers, one line each."""
    name = answers["model_name"]
    notes: list[str] = []
    family = FAMILIES.get(str(model.config.get("model_type", "")))
    if family and answers.get("model_family") == "unknown":
        notes.append(f"{name!r} is a {family} model: model_family {family!r} says so to AutoGen")
    if any(THINKING.search(template) for template in model.templates):
        notes.append(
            f"{name!r} thinks (its chat template writes <think>): the reasoning comes back in "
            "CreateResult.thought, apart from the content"
        )
    if answers.get("vision") is False and model.has_processor:
        notes.append(f"{name!r} has an image processor: answer vision yes to send it images")
    if (
        answers.get("function_calling") is True
        and model.templates
        and not any(TOOLS.search(template) for template in model.templates)
    ):
        notes.append(
            f"{name!r}'s chat template renders no tools: they go into the system message, "
            "calls in the default <tool_call> syntax"
        )
    return notes


def check_model(
    answers: Mapping[str, Any], env: Mapping[str, str] = os.environ
) -> tuple[list[str], list[str]]:
    """(contradictions, suggestions) for the answers, both empty when the model is not here."""
    directory = model_directory(str(answers.get("model_name", "")), env)
    model = read_model(directory) if directory is not None else None
    if model is None:
        return [], []
    return contradictions(answers, model), suggestions(answers, model)
