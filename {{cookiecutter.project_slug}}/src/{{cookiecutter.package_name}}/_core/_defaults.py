"""The model and its capabilities, as answered when this project was generated.

No imports at run time: the command line reads the default model name before anything heavy.
"""

from __future__ import annotations

from typing import TypedDict


class Capabilities(TypedDict):
    """What a client on the model may be asked for; AutoGen's ``ModelInfo`` has these keys."""

    vision: bool
    function_calling: bool
    json_output: bool
    structured_output: bool


DEFAULT_MODEL_NAME: str = {{ cookiecutter.model_name | py }}
"""The HuggingFace model id or local path the client loads when none is given."""

DEFAULT_CAPABILITIES: Capabilities = {
    "vision": {{ cookiecutter.vision | py }},
    "function_calling": {{ cookiecutter.function_calling | py }},
    "json_output": {{ cookiecutter.json_output | py }},
    "structured_output": {{ cookiecutter.structured_output | py }},
}
"""What this project was generated to support."""
