"""An AutoGen ``ChatCompletionClient`` for a local HuggingFace transformers model{% if cookiecutter.agent_framework %},
and an Agent Framework chat client on the same core{% endif %}.

The clients, their config and the errors of the modules that need torch load on first use, so
that importing the package (and ``python -m`` it, to read ``--help``) takes no time.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._core._errors import (
    CapabilityError,
    ClientClosedError,
    ContextWindowExceededError,
    InvalidAnswerError,
    ModelLoadError,
    RequestFailedError,
)
from ._autogen._model_info import DEFAULT_MODEL_INFO, DEFAULT_MODEL_NAME

if TYPE_CHECKING:
{%- if cookiecutter.agent_framework %}
    from ._agent_framework._client import (
        {{ cookiecutter.agent_framework_client_class_name }},
        {{ cookiecutter.agent_framework_client_class_name }}Options,
    )
{%- endif %}
    from ._autogen._client import {{ cookiecutter.client_class_name }}
    from ._autogen._config import {{ cookiecutter.client_class_name }}Config
    from ._core._config import GenerationSettings
    from ._core._remote_engine import ServerError
{%- if cookiecutter.function_calling %}
    from ._core._tools import MalformedToolCallWarning
{%- endif %}
{%- if cookiecutter.json_output or cookiecutter.function_calling %}
    from ._core._schema import UnsupportedSchemaError
{%- endif %}
{%- if cookiecutter.vision %}
    from ._core._vision_chat import UnreadableImageError
{%- endif %}

_LAZY = {
{%- if cookiecutter.agent_framework %}
    {{ cookiecutter.agent_framework_client_class_name | py }}: "._agent_framework._client",
    {{ (cookiecutter.agent_framework_client_class_name ~ "Options") | py }}: "._agent_framework._client",
{%- endif %}
    {{ cookiecutter.client_class_name | py }}: "._autogen._client",
    {{ (cookiecutter.client_class_name ~ "Config") | py }}: "._autogen._config",
    "GenerationSettings": "._core._config",
    "ServerError": "._core._remote_engine",
{%- if cookiecutter.function_calling %}
    "MalformedToolCallWarning": "._core._tools",
{%- endif %}
{%- if cookiecutter.json_output or cookiecutter.function_calling %}
    "UnsupportedSchemaError": "._core._schema",
{%- endif %}
{%- if cookiecutter.vision %}
    "UnreadableImageError": "._core._vision_chat",
{%- endif %}
}
"""Public names whose modules import torch, a framework or pydantic: imported when first used."""


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
{%- if cookiecutter.agent_framework %}
__all__ += [
    "{{ cookiecutter.agent_framework_client_class_name }}",
    "{{ cookiecutter.agent_framework_client_class_name }}Options",
]
{%- endif %}
{%- if cookiecutter.json_output or cookiecutter.function_calling %}
__all__ += ["UnsupportedSchemaError"]
{%- endif %}
