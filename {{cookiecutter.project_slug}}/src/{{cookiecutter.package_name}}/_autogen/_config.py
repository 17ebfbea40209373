"""The AutoGen client's configuration schema: what ``dump_component()`` saves."""

from __future__ import annotations

from autogen_core.models import ModelInfo, validate_model_info
from pydantic import Field, field_validator

from .._core._config import ModelConfig


class {{ cookiecutter.client_class_name }}Config(ModelConfig):
    """Everything needed to build the client; what ``dump_component()`` saves."""

    model_info: ModelInfo | None = Field(
        default=None, description="Capabilities; default: the answers given at generation."
    )

    @field_validator("model_info")
    @classmethod
    def _model_info_complete(cls, model_info: ModelInfo | None) -> ModelInfo | None:
        if model_info is not None:
            validate_model_info(model_info)
        return model_info
