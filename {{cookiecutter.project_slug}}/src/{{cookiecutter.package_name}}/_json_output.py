"""JSON mode and structured output: a request's ``json_output`` turned into a grammar constraint."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from autogen_core.models import ModelInfo
from pydantic import BaseModel
from transformers import (
    LogitsProcessor,
    LogitsProcessorList,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from ._config import GenerationSettings
from ._errors import CapabilityError
from ._generation import LazyLogitsProcessor, eos_token_ids
from ._schema import enforceable_schema

if TYPE_CHECKING:
    from ._grammar import GrammarCache

JSON_MODE_SCHEMA: dict[str, Any] = {"type": "object"}
"""What ``json_output=True`` produces: a JSON object (use a ``RootModel`` for other values)."""

INSTALL_HINT = {{ ("pip install '" ~ cookiecutter.project_slug ~ "[constrained]'") | py }}
"""How to install xgrammar, the optional dependency that JSON output needs."""


class JsonOutput:
    """Turns ``json_output`` into a logits processor that constrains ``generate`` to the schema.

    One per client. On the event loop it checks the client's capabilities and rewrites the
    schema into what the grammar library enforces (``_schema``, pure Python, about a
    millisecond). Everything that touches xgrammar (importing it, converting and compiling the
    grammar, cached per schema) happens on the worker thread, in the first step of ``generate``.
    The client works without xgrammar until JSON is asked for.
    """

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        model_info: ModelInfo,
        model: Callable[[], PreTrainedModel],
    ) -> None:
        """``model`` returns the loaded model; it is called on the worker thread only."""
        self._tokenizer = tokenizer
        self._model_info = model_info
        self._model = model
        self._schemas: dict[object, str] = {}
        self._grammars: GrammarCache | None = None

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
            self._schemas[json_output] = cached
        return cached

    def constrain(
        self,
        json_output: bool | type[BaseModel],
        settings: GenerationSettings,
        arguments: Mapping[str, Any],
        *,
        tools: Sequence[object] = (),
    ) -> tuple[GenerationSettings, dict[str, Any]]:
        """A request's settings and ``generate`` arguments, constrained to the schema.

        The grammar processor goes after any ``logits_processor`` the request already has.
        Stop strings are dropped: the grammar decides where the answer ends.

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
        if importlib.util.find_spec("xgrammar") is None:
            raise CapabilityError(f"JSON output needs the xgrammar package: {INSTALL_HINT}")
        arguments = dict(arguments)

        def build(vocab_size: int) -> LogitsProcessor:  # on the worker thread
            return self._grammar_cache().processor(schema_json, vocab_size, self._stops(arguments))

        existing = arguments.get("logits_processor") or []
        if not isinstance(existing, (list, tuple)):
            existing = [existing]
        grammar_processor = LazyLogitsProcessor(build)
        arguments["logits_processor"] = LogitsProcessorList([*existing, grammar_processor])
        return settings.model_copy(update={"stop": []}), arguments

    def _stops(self, arguments: dict[str, Any]) -> set[int]:
        """The tokens that end this request: the grammar allows them once the JSON is complete."""
        stops = eos_token_ids(self._model(), arguments)
        if not stops and self._tokenizer.eos_token_id is not None:
            stops = {self._tokenizer.eos_token_id}
        if not stops:
            raise CapabilityError("JSON output needs an end-of-sequence token: set eos_token_id.")
        return stops

    def _grammar_cache(self) -> GrammarCache:  # on the worker thread
        if self._grammars is None:
            try:
                from ._grammar import GrammarCache
            except ImportError as error:
                raise CapabilityError(
                    f"JSON output needs a working xgrammar ({error}): {INSTALL_HINT}"
                ) from error
            self._grammars = GrammarCache(self._tokenizer)
        return self._grammars

