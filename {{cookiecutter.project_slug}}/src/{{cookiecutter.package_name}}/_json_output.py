"""JSON mode and structured output: a request's ``json_output`` turned into a grammar constraint."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from autogen_core.models import ModelInfo
from pydantic import BaseModel
from transformers import PreTrainedTokenizerBase

from ._config import GenerationSettings
from ._constrained import BoundedCache, Grammar, require_xgrammar
from ._errors import CapabilityError
from ._schema import enforceable_schema

JSON_MODE_SCHEMA: dict[str, Any] = {"type": "object"}
"""What ``json_output=True`` produces: a JSON object (use a ``RootModel`` for other values)."""


class JsonOutput:
    """Turns ``json_output`` into a grammar that constrains the answer to the schema.

    One per client. On the event loop it checks the client's capabilities and rewrites the
    schema into what the grammar library enforces (``_schema``, pure Python, about a
    millisecond; kept for the 64 most recently used answers). Everything that touches xgrammar
    (importing it, converting and compiling the grammar, cached per schema) happens on the
    engine's thread, at the request's first step. The client works without xgrammar until JSON
    is asked for.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, model_info: ModelInfo) -> None:
        self._tokenizer = tokenizer
        self._model_info = model_info
        self._schemas: BoundedCache[object, str] = BoundedCache()

    def schema_json(self, json_output: bool | type[BaseModel]) -> str:
        """The enforceable schema a request asks for, as JSON (the key of the grammar cache).

        Raises:
            CapabilityError: the client's ``model_info`` lacks ``json_output`` (for ``True``)
                or ``structured_output`` (for a model class).
            UnsupportedSchemaError: the model's schema uses features that cannot be enforced.
        """
        if json_output is True:
            if not self._model_info["json_output"]:
                raise CapabilityError(
                    "This client does not support JSON output (model_info json_output is false)."
                )
            source = JSON_MODE_SCHEMA
        elif isinstance(json_output, type) and issubclass(json_output, BaseModel):
            if not self._model_info["structured_output"]:
                raise CapabilityError(
                    "This client does not support structured output (model_info "
                    "structured_output is false); json_output=True asks for any JSON object."
                )
            source = json_output.model_json_schema()
        else:
            raise TypeError(
                f"json_output must be a bool or a pydantic BaseModel subclass, not {json_output!r}"
            )
        cached = self._schemas.get(json_output)
        if cached is None:
            cached = json.dumps(enforceable_schema(source))
            self._schemas.put(json_output, cached)
        return cached

    def constrain(
        self,
        json_output: bool | type[BaseModel],
        settings: GenerationSettings,
        arguments: Mapping[str, Any],
        *,
        tools: Sequence[object] = (),
    ) -> tuple[GenerationSettings, Grammar]:
        """A request's settings without stop strings (the grammar decides where the answer
        ends), and the grammar that constrains it to the schema.

        Raises:
            CapabilityError: see ``schema_json``; also when xgrammar is not installed, and
                when ``tools`` may be called (the grammar would rule tool calls out).
            ValueError: beam search was asked for (the grammar follows one sequence).
        """
        if tools:
            raise CapabilityError(
                "json_output cannot be combined with tools yet: the JSON grammar would rule out "
                "tool calls. Ask for JSON without tools, or with tool_choice='none'."
            )
        if (arguments.get("num_beams") or 1) > 1:
            raise ValueError("JSON output follows one sequence: num_beams must be 1.")
        schema_json = self.schema_json(json_output)
        require_xgrammar("JSON output")
        grammar = Grammar("json_schema", schema_json, self._tokenizer)
        return settings.model_copy(update={"stop": []}), grammar
