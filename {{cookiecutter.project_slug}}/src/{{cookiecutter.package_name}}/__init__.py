"""An AutoGen ``ChatCompletionClient`` for a local HuggingFace transformers model."""

from ._client import {{ cookiecutter.client_class_name }}
from ._config import GenerationSettings, {{ cookiecutter.client_class_name }}Config
from ._errors import (
    CapabilityError,
    ClientClosedError,
    ContextWindowExceededError,
    InvalidAnswerError,
    ModelLoadError,
)
from ._model_info import DEFAULT_MODEL_INFO, DEFAULT_MODEL_NAME
{%- if cookiecutter.function_calling %}
from ._tools import MalformedToolCallWarning
{%- endif %}
{%- if cookiecutter.json_output or cookiecutter.function_calling %}
from ._schema import UnsupportedSchemaError
{%- endif %}
{%- if cookiecutter.vision %}
from ._vision_chat import UnreadableImageError
{%- endif %}

__all__ = [
    "DEFAULT_MODEL_INFO",
    "DEFAULT_MODEL_NAME",
    "CapabilityError",
    "ClientClosedError",
    "ContextWindowExceededError",
    "GenerationSettings",
    "InvalidAnswerError",
    "ModelLoadError",
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
