"""An AutoGen ``ChatCompletionClient`` for a local HuggingFace transformers model.

The client, its config and the errors of the modules that need torch load on first use, so
that importing the package (and ``python -m`` it, to read ``--help``) takes no time.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._errors import (
    CapabilityError,
    ClientClosedError,
    ContextWindowExceededError,
    InvalidAnswerError,
    ModelLoadError,
    RequestFailedError,
)
from ._model_info import DEFAULT_MODEL_INFO, DEFAULT_MODEL_NAME

if TYPE_CHECKING:
    from ._client import {{ cookiecutter.client_class_name }}
    from ._config import GenerationSettings, {{ cookiecutter.client_class_name }}Config
    from ._remote_engine import ServerError
{%- if cookiecutter.function_calling %}
    from ._tools import MalformedToolCallWarning
{%- endif %}
{%- if cookiecutter.json_output or cookiecutter.function_calling %}
    from ._schema import UnsupportedSchemaError
{%- endif %}
{%- if cookiecutter.vision %}
    from ._vision_chat import UnreadableImageError
{%- endif %}

_LAZY = {
    {{ cookiecutter.client_class_name | py }}: "._client",
    {{ (cookiecutter.client_class_name ~ "Config") | py }}: "._config",
    "GenerationSettings": "._config",
    "ServerError": "._remote_engine",
{%- if cookiecutter.function_calling %}
    "MalformedToolCallWarning": "._tools",
{%- endif %}
{%- if cookiecutter.json_output or cookiecutter.function_calling %}
    "UnsupportedSchemaError": "._schema",
{%- endif %}
{%- if cookiecutter.vision %}
    "UnreadableImageError": "._vision_chat",
{%- endif %}
}
"""Public names whose modules import torch, AutoGen or pydantic: imported when first asked for."""


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "DEFAULT_MODEL_INFO",
    "DEFAULT_MODEL_NAME",
    "CapabilityError",
    "ClientClosedError",
    "ContextWindowExceededError",
    "GenerationSettings",
    "InvalidAnswerError",
    "ModelLoadError",
    "RequestFailedError",
    "ServerError",
{%- if cookiecutter.vision %}
    "UnreadableImageError",
{%- endif %}
    "{{ cookiecutter.client_class_name }}",
    "{{ cookiecutter.client_class_name }}Config",
]
{%- if cookiecutter.function_calling %}
__all__ += ["MalformedToolCallWarning"]
{%- endif %}
{%- if cookiecutter.json_output or cookiecutter.function_calling %}
__all__ += ["UnsupportedSchemaError"]
{%- endif %}
