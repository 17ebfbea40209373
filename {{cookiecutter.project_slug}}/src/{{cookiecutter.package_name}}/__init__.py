"""An AutoGen ``ChatCompletionClient`` for a local HuggingFace transformers model."""

from ._client import {{ cookiecutter.client_class_name }}
from ._config import GenerationSettings
from ._config import {{ cookiecutter.client_class_name }}Config
from ._errors import CapabilityError, ClientClosedError, ContextWindowExceededError
from ._model_info import DEFAULT_MODEL_INFO, DEFAULT_MODEL_NAME

__all__ = [
    "{{ cookiecutter.client_class_name }}",
    "{{ cookiecutter.client_class_name }}Config",
    "CapabilityError",
    "ClientClosedError",
    "ContextWindowExceededError",
    "DEFAULT_MODEL_INFO",
    "DEFAULT_MODEL_NAME",
    "GenerationSettings",
]
