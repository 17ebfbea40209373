"""The model's capabilities, as answered when this project was generated.

No imports at run time: the command line reads the default model name before anything heavy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from autogen_core.models import ModelInfo

DEFAULT_MODEL_NAME: str = {{ cookiecutter.model_name | py }}
"""The HuggingFace model id or local path the client loads when none is given."""

DEFAULT_MODEL_INFO: ModelInfo = {
    "vision": {{ cookiecutter.vision | py }},
    "function_calling": {{ cookiecutter.function_calling | py }},
    "json_output": {{ cookiecutter.json_output | py }},
    "structured_output": {{ cookiecutter.structured_output | py }},
    "family": {{ cookiecutter.model_family | py }},
    "multiple_system_messages": True,
}
"""Capabilities reported by ``model_info`` unless the config overrides them."""
