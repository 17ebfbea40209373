"""The model's configuration schema, shared by every front (AutoGen, Agent Framework)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ._defaults import DEFAULT_MODEL_NAME

Dtype = Literal["auto", "float32", "float16", "bfloat16"]


class GenerationSettings(BaseModel):
    """Decoding settings; ``None`` keeps the model's own ``generation_config`` value.

    These may also be given per request through ``extra_create_args``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_new_tokens: int = Field(default=512, ge=1, description="Most tokens to generate.")
    temperature: float | None = Field(default=None, gt=0, description="Sampling temperature.")
    top_p: float | None = Field(default=None, gt=0, le=1, description="Nucleus sampling mass.")
    top_k: int | None = Field(default=None, ge=0, description="Sample from the k likeliest tokens.")
    repetition_penalty: float | None = Field(default=None, gt=0)
    do_sample: bool | None = Field(default=None, description="Sample instead of greedy decoding.")
    seed: int | None = Field(default=None, ge=0, description="Seed torch before each request.")
    stop: list[str] = Field(default_factory=list, description="Stop strings (not returned).")

    @field_validator("stop")
    @classmethod
    def _stop_strings_not_empty(cls, stop: list[str]) -> list[str]:
        for text in stop:
            if not text:
                raise ValueError("stop strings must not be empty")
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as error:
                raise ValueError(f"stop string {text!r} is not valid text: {error.reason}") from None
        return stop

    @model_validator(mode="after")
    def _sampling_needs_do_sample(self) -> GenerationSettings:
        if self.do_sample is False:
            given = [
                name
                for name in ("temperature", "top_p", "top_k")
                if getattr(self, name) is not None
            ]
            if given:
                raise ValueError(f"{', '.join(given)} only apply when sampling: do_sample is false")
        return self


class ModelConfig(GenerationSettings):
    """Everything needed to build a client on the model, whichever the framework."""

    model_name: str = Field(
        default=DEFAULT_MODEL_NAME, description="HuggingFace model id or local directory."
    )
    revision: str | None = Field(default=None, description="Branch, tag or commit of the model.")
    device: str | None = Field(
        default=None, description="Torch device, such as 'cpu' or 'cuda:0'. Default: CPU."
    )
    dtype: Dtype = Field(
        default="auto", description="Weights dtype; 'auto' keeps the checkpoint's."
    )
    device_map: str | dict[str, Any] | None = Field(
        default=None, description="Accelerate device map, such as 'auto'. Excludes device."
    )
    trust_remote_code: bool = Field(default=False, description="Run code shipped with the model.")
    local_files_only: bool = Field(default=False, description="Never contact the hub.")
    chat_template: str | None = Field(
        default=None, description="Jinja chat template replacing the tokenizer's own."
    )
    max_resamples: int = Field(
        default=2,
        ge=0,
        description="Tries after the first when a JSON answer or a forced call fails its "
        "schema check (keywords the grammar only approximates).",
    )
    context_window: int | None = Field(
        default=None, ge=1, description="Context length; default: read from the model's config."
    )
    max_batch_size: int = Field(
        default=8, ge=1, description="Most requests decoding together; more wait for a free place."
    )
    prefix_cache_mb: int = Field(
        default=1024,
        ge=0,
        description="Memory for keys and values of processed prompts, reused by prompts that "
        "start the same way (system prompt, tools, conversation so far); 0 disables.",
    )
    base_url: str | None = Field(
        default=None,
        description="A vLLM server's OpenAI-compatible API, such as 'http://127.0.0.1:8000/v1': "
        "the server generates, the client does the rest. Default: the model runs in this process.",
    )
    api_key_env: str = Field(
        default="VLLM_API_KEY",
        description="Environment variable holding the server's API key (never in the config).",
    )
    served_model_name: str | None = Field(
        default=None, description="The model's name on the server; default: model_name."
    )
    request_timeout: float = Field(
        default=600.0, gt=0, description="Seconds to wait for the server's next answer chunk."
    )
    connect_timeout: float = Field(
        default=10.0, gt=0, description="Seconds to wait for a connection to the server."
    )
    max_retries: int = Field(
        default=3, ge=0, description="Retries, with backoff, when the server cannot be reached."
    )
    tool_choice: str = Field(
        default="auto",
        description="What a request that leaves tool_choice at 'auto' (as AutoGen's agents do) "
        "gets when it has tools: 'auto' (the model decides), 'required' (a call to one of them), "
        "'none' (no tools) or a tool's name (a call to that tool). A request's own choice wins.",
    )
{%- if cookiecutter.function_calling %}
    tool_call_format: Literal["auto", "hermes", "llama3", "mistral"] = Field(
        default="auto",
        description="How the model writes tool calls. 'auto': learnt from the chat template (read "
        "with the tokenizer's response parser where it ships one); 'hermes': <tool_call>{\"name\": "
        "..., \"arguments\": {...}}</tool_call>; 'llama3': {\"name\": ..., \"parameters\": {...}}; "
        "'mistral': [TOOL_CALLS] [{\"name\": ..., \"arguments\": {...}, \"id\": ...}].",
    )
{%- endif %}

    @field_validator("model_name")
    @classmethod
    def _model_name_not_blank(cls, model_name: str) -> str:
        if not model_name.strip():
            raise ValueError("model_name must not be empty")
        return model_name

    @field_validator("tool_choice")
    @classmethod
    def _tool_choice_not_blank(cls, tool_choice: str) -> str:
        if not tool_choice.strip():
            raise ValueError("tool_choice must be 'auto', 'required', 'none' or a tool's name")
        return tool_choice

    @field_validator("base_url")
    @classmethod
    def _base_url_is_http(cls, base_url: str | None) -> str | None:
        if base_url is not None and not base_url.startswith(("http://", "https://")):
            raise ValueError("base_url must be an http:// or https:// URL, such as http://127.0.0.1:8000/v1")
        return base_url

    @model_validator(mode="after")
    def _local_or_server_fields(self) -> ModelConfig:
        local = {"device", "device_map", "dtype", "max_batch_size", "prefix_cache_mb"}
        server = {"served_model_name", "request_timeout", "connect_timeout", "max_retries"}
        fields = type(self).model_fields
        given = local if self.base_url is not None else server
        if wrong := sorted(name for name in given if getattr(self, name) != fields[name].default):
            where = "a vLLM server (base_url)" if self.base_url else "the local model (no base_url)"
            raise ValueError(f"{', '.join(wrong)} do not apply to {where}")
        return self

    @model_validator(mode="after")
    def _device_or_device_map(self) -> ModelConfig:
        if self.device is not None and self.device_map is not None:
            raise ValueError("give device or device_map, not both")
        return self

    def generation_settings(self) -> GenerationSettings:
        """The decoding part of this config."""
        return GenerationSettings.model_validate(
            self.model_dump(include=set(GenerationSettings.model_fields))
        )
