"""JSON mode and structured output: a request's ``json_output`` turned into a grammar constraint."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel
from transformers import PreTrainedTokenizerBase

from ._config import GenerationSettings
from ._constrained import BoundedCache, Grammar, require_grammar_library
from ._defaults import Capabilities
from ._errors import CapabilityError
from ._schema import PreparedSchema, prepare_schema

JSON_MODE_SCHEMA: dict[str, Any] = {"type": "object"}
"""What ``json_output=True`` produces: a JSON object (use a ``RootModel`` for other values)."""


class JsonCheck:
    """An answer checked against the schema it was asked for (an ``AnswerCheck``)."""

    def __init__(self, schema: PreparedSchema) -> None:
        self._schema = schema

    @property
    def exact(self) -> bool:
        return self._schema.exact

    def errors(self, content: Any) -> list[str]:
        if not isinstance(content, str):
            return ["the answer is not text"]
        try:
            value = json.loads(content)
        except json.JSONDecodeError as error:
            return [f"the answer is not JSON ({error})"]
        return self._schema.errors(value)


JsonRequest = bool | type[BaseModel] | Mapping[str, Any]
"""What a request asks for: any JSON object (``True``), a pydantic model's schema, or a JSON
schema given as a dict (Agent Framework's ``response_format`` may be one)."""


class JsonOutput:
    """Turns a request's JSON output into a grammar that constrains the answer to the schema.

    One per model, shared by its clients. On the event loop it checks the client's
    capabilities and prepares the schema (``_schema``: about a millisecond, kept for the 64
    most recently used answers). Building the vocabulary view and the grammar (cached per
    schema) happens on the engine's thread, at the request's first step. The client works
    without llguidance until JSON is asked for.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        self._tokenizer = tokenizer
        self._schemas: BoundedCache[object, PreparedSchema] = BoundedCache()

    def schema(self, json_output: JsonRequest, capabilities: Capabilities) -> PreparedSchema:
        """The schema a request asks for, prepared for the grammar.

        Raises:
            CapabilityError: the client's capabilities lack ``json_output`` (for ``True``)
                or ``structured_output`` (for a model class or a schema).
            UnsupportedSchemaError: no grammar can guarantee a valid answer for the schema.
        """
        key: object
        if json_output is True:
            if not capabilities["json_output"]:
                raise CapabilityError(
                    "This client does not support JSON output (model_info json_output is false)."
                )
            source, key = JSON_MODE_SCHEMA, True
        elif isinstance(json_output, type) and issubclass(json_output, BaseModel):
            source, key = json_output.model_json_schema(), json_output
        elif isinstance(json_output, Mapping):
            source = dict(json_output)
            key = json.dumps(source, sort_keys=True, default=str)
        else:
            raise TypeError(
                "json_output must be a bool, a pydantic BaseModel subclass or a JSON schema "
                f"(a dict), not {json_output!r}"
            )
        if key is not True and not capabilities["structured_output"]:
            raise CapabilityError(
                "This client does not support structured output (model_info "
                "structured_output is false); json_output=True asks for any JSON object."
            )
        cached = self._schemas.get(key)
        if cached is None:
            require_grammar_library("JSON output")
            cached = prepare_schema(source)
            self._schemas.put(key, cached)
        return cached

    def constrain(
        self,
        json_output: JsonRequest,
        settings: GenerationSettings,
        arguments: Mapping[str, Any],
        *,
        capabilities: Capabilities,
        tools: Sequence[object] = (),
        budget: int | None = None,
    ) -> tuple[GenerationSettings, Grammar, JsonCheck]:
        """A request's settings without stop strings (the grammar decides where the answer
        ends), the grammar that constrains it to the schema, and the schema its answer is
        checked against. With a ``budget`` (the request's token limit) the answer closes in
        time: it is complete JSON when it ends, unless the budget cannot hold even that.

        Raises:
            CapabilityError: see ``schema``; also when llguidance is not installed, and
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
        schema = self.schema(json_output, capabilities)
        grammar = Grammar(
            "json_schema", json.dumps(schema.grammar_schema), self._tokenizer, budget=budget
        )
        return settings.model_copy(update={"stop": []}), grammar, JsonCheck(schema)
