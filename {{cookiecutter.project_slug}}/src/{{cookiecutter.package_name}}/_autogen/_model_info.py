"""The model's capabilities as AutoGen's ``ModelInfo``, from the answers given at generation.

No imports at run time: the command line reads the default model name before anything heavy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._core._defaults import DEFAULT_CAPABILITIES, DEFAULT_MODEL_NAME

if TYPE_CHECKING:
    from autogen_core.models import ModelInfo

__all__ = ["DEFAULT_MODEL_INFO", "DEFAULT_MODEL_NAME"]

DEFAULT_MODEL_INFO: ModelInfo = {
    **DEFAULT_CAPABILITIES,
    "family": {{ cookiecutter.model_family | py }},
    "multiple_system_messages": True,
}
"""Capabilities reported by ``model_info`` unless the config overrides them."""
