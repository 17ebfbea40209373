"""JSON schemas as users bring them: made ready for the grammar, and answers checked.

The JSON Schema specification, not a whitelist, decides: unknown keywords and annotations are
ignored (validators ignore them), a schema without ``type`` allows any value, and in drafts 4
to 7 a ``$ref`` replaces its sibling keywords. llguidance enforces most of the rest exactly;
what it cannot (``uniqueItems``, ``not``, ``if``/``then``, ``dependencies``, ``contains``,
``oneOf``'s "exactly one", unknown ``format``s, patterns with look-arounds or other constructs
its regex engine lacks, ...) it leaves out of the grammar, which then allows every valid
answer and some invalid ones. Every answer is therefore checked against the original schema
with ``jsonschema`` (the schema's own draft, formats checked), and the client samples again or
raises :class:`InvalidAnswerError`: what it returns always validates.

Refused (:class:`UnsupportedSchemaError`) is only what no valid answer can be guaranteed for:
a schema that is no schema (not an object or a boolean, ``false``), references that cannot be
resolved, and grammars llguidance cannot build at all (recursive references next to other
keywords in draft 2019-09 and later).
"""

from __future__ import annotations

import copy
import functools
import json
import re
from decimal import Decimal
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._errors import CapabilityError

Schema = dict[str, Any]

_OLD_DRAFTS = ("draft-04", "draft-06", "draft-07")  # "$ref" overrides its siblings there


class UnsupportedSchemaError(CapabilityError):
    """A JSON schema that no grammar can guarantee a valid answer for."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(
            "The JSON schema cannot be used for constrained decoding:\n  " + "\n  ".join(problems)
        )
        self.problems = problems


@dataclass(frozen=True)
class PreparedSchema:
    """A schema ready for the grammar, and what is checked after generation."""

    grammar_schema: Schema
    """What llguidance compiles: the original, with what it cannot read taken out."""
    approximated: tuple[str, ...]
    """Keywords the grammar does not enforce exactly (checked on the answer instead)."""
    original: Any

    @property
    def exact(self) -> bool:
        """Whether every answer the grammar allows is valid (nothing needs checking)."""
        return not self.approximated

    def errors(self, value: Any) -> list[str]:
        """What is wrong with ``value`` against the original schema (empty when it is valid)."""
        return validation_errors(self.original, value)


def validation_errors(schema: Any, value: Any) -> list[str]:
    """``value`` checked against ``schema`` by ``jsonschema`` (its draft, formats checked)."""
    validator = _validator(json.dumps(schema, sort_keys=True))
    try:
        return [
            f"{'/'.join(map(str, error.absolute_path)) or '(root)'}: {error.message}"
            for error in validator.iter_errors(value)
            if not _decimal_multiple(error)
        ][:5]
    except re.error:
        return []  # a pattern Python cannot read; llguidance compiled and enforced it


def _decimal_multiple(error: Any) -> bool:
    """Whether a ``multipleOf`` error is float rounding (0.07 of 0.01): the JSON text of the
    number is a multiple in decimal, as the specification means it."""
    if error.validator != "multipleOf" or isinstance(error.instance, bool):
        return False
    try:
        return Decimal(repr(error.instance)) % Decimal(repr(error.validator_value)) == 0
    except (ArithmeticError, ValueError):
        return False


@functools.lru_cache(maxsize=64)
def _validator(schema_json: str) -> Any:
    import jsonschema

    schema = json.loads(schema_json)
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def prepare_schema(schema: Any) -> PreparedSchema:
    """``schema`` made ready for llguidance, with what its grammar only approximates.

    Raises:
        UnsupportedSchemaError: no grammar can guarantee a valid answer (see the module).
    """
    if schema is True:
        schema = {}
    if not isinstance(schema, Mapping):
        raise UnsupportedSchemaError(
            [f"a schema must be a JSON object or true, not {json.dumps(schema)[:80]}"]
        )
    prepared: Schema = copy.deepcopy(dict(schema))
    draft = str(prepared.get("$schema", ""))
    if any(name in draft for name in _OLD_DRAFTS):
        prepared = _ref_overrides_siblings(prepared)
    dropped = _drop_unreadable_patterns(prepared)
    error, warnings = _compile(prepared)
    if error:
        raise UnsupportedSchemaError([error])
    _validator(json.dumps(schema, sort_keys=True))  # built now, off the event loop
    if _uses(prepared, "propertyNames"):  # llguidance ignores it without a word
        _property_names_as_patterns(prepared)
        warnings.append("propertyNames: checked after generation")
    return PreparedSchema(prepared, tuple(dropped + warnings), schema)


def _property_names_as_patterns(node: Any) -> None:
    """Where an object's extra keys must follow ``propertyNames`` (lengths, a pattern or an
    enum of strings), say so with ``patternProperties``, which the grammar enforces (in place).
    """
    if isinstance(node, list):
        for item in node:
            _property_names_as_patterns(item)
        return
    if not isinstance(node, dict):
        return
    names = node.get("propertyNames")
    extra = node.get("additionalProperties", True)
    if isinstance(names, dict) and "patternProperties" not in node and extra is not False:
        if isinstance(names.get("pattern"), str):
            pattern = names["pattern"]
        elif isinstance(names.get("enum"), list) and all(isinstance(v, str) for v in names["enum"]):
            pattern = "^(" + "|".join(re.escape(v) for v in names["enum"]) + ")$"
        elif {"minLength", "maxLength"} & set(names):
            high = names.get("maxLength")
            upper = "" if high is None else str(int(high))
            pattern = "^.{" + str(int(names.get("minLength", 0))) + "," + upper + "}$"
        else:
            pattern = None
        if pattern is not None and not _pattern_problem(pattern):
            node["patternProperties"] = {pattern: {} if extra is True else extra}
            node["additionalProperties"] = False
    for key, value in node.items():
        if key not in ("enum", "const", "default", "examples"):
            _property_names_as_patterns(value)


def _uses(node: Any, keyword: str) -> bool:
    """Whether ``keyword`` is a key anywhere in ``node`` (enum and const values aside)."""
    if isinstance(node, list):
        return any(_uses(item, keyword) for item in node)
    if not isinstance(node, dict):
        return False
    return keyword in node or any(
        _uses(value, keyword) for key, value in node.items() if key not in ("enum", "const")
    )


def _compile(schema: Schema) -> tuple[str | None, list[str]]:
    """llguidance's error for ``schema`` (None when it compiles), and its warnings."""
    import llguidance

    from ._constrained import grammar_definition

    grammar = grammar_definition("json_schema", json.dumps(schema))
    is_error, messages = llguidance.LLMatcher.validate_grammar_with_warnings(grammar)
    if is_error:
        return messages[0].split("\n")[0] if messages else "llguidance refused it", []
    return None, [message.split("\n")[0] for message in messages]


def _ref_overrides_siblings(node: Any) -> Any:
    """Drafts 4 to 7: "All other properties in a "$ref" object MUST be ignored"."""
    if isinstance(node, list):
        return [_ref_overrides_siblings(item) for item in node]
    if not isinstance(node, dict):
        return node
    if isinstance(node.get("$ref"), str):
        kept = {"$ref": node["$ref"]}
        for key in ("definitions", "$defs"):  # where other references may point
            if key in node:
                kept[key] = _ref_overrides_siblings(node[key])
        return kept
    return {key: _ref_overrides_siblings(value) for key, value in node.items()}


@functools.lru_cache(maxsize=1024)
def _pattern_problem(pattern: str) -> str | None:
    """Why llguidance cannot read ``pattern`` (a look-around, ``\\p{...}``), or None."""
    import llguidance

    from ._constrained import grammar_definition

    schema = json.dumps({"type": "string", "pattern": pattern})
    problem = llguidance.LLMatcher.validate_grammar(grammar_definition("json_schema", schema))
    return problem.split("\n")[-1] if problem and not problem.startswith("WARNING") else None


_LOOKAROUND = re.compile(r"\(\?<?[=!]")


def _without_lookarounds(pattern: str) -> str:
    """``pattern`` without its look-around groups: a pattern that matches more strings."""
    while match := _LOOKAROUND.search(pattern):
        depth, position, in_class = 0, match.start(), False
        while position < len(pattern):
            character = pattern[position]
            if character == "\\":
                position += 2
                continue
            if in_class:
                in_class = character != "]"
            elif character == "[":
                in_class = True
            elif character == "(":
                depth += 1
            elif character == ")":
                depth -= 1
                if depth == 0:
                    break
            position += 1
        pattern = pattern[: match.start()] + pattern[position + 1 :]
    return pattern


def _drop_unreadable_patterns(node: Any, path: str = "#") -> list[str]:
    """Take the patterns llguidance cannot read out of ``node`` (in place); say which.

    A string without its pattern, or an object without a ``patternProperties`` entry, allows
    more than the schema does, never less of what it allows for known properties: the answer
    is checked against the original.
    """
    dropped: list[str] = []
    if isinstance(node, list):
        for index, item in enumerate(node):
            dropped += _drop_unreadable_patterns(item, f"{path}/{index}")
        return dropped
    if not isinstance(node, dict):
        return dropped
    pattern = node.get("pattern")
    if isinstance(pattern, str) and (problem := _pattern_problem(pattern)):
        looser = _without_lookarounds(pattern)
        if looser != pattern and not _pattern_problem(looser):
            node["pattern"] = looser  # a look-around only ever rules strings out
        else:
            del node["pattern"]
        dropped.append(f"{path}/pattern {pattern!r} ({problem}): checked after generation")
    properties = node.get("patternProperties")
    if isinstance(properties, dict):
        for key in [key for key in properties if _pattern_problem(key)]:
            del properties[key]
            dropped.append(f"{path}/patternProperties {key!r}: checked after generation")
    for key, value in node.items():
        if key not in ("enum", "const", "default", "examples"):
            dropped += _drop_unreadable_patterns(value, f"{path}/{key}")
    return dropped
