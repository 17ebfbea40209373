"""JSON schemas rewritten into what xgrammar 0.2.8 enforces exactly, or refused.

xgrammar turns a JSON schema into a grammar, but it silently ignores some keywords
(``uniqueItems``, ``contains``, ``not``, ``multipleOf`` on numbers, lengths next to a
``pattern`` or ``format``, ...) and lets some values through that are not valid: strings
with raw control characters where ``minLength`` is set, lone ``\\udXXX`` surrogate escapes in
any string, ``2024-02-30`` for ``format: date``. ``enforceable_schema`` therefore accepts a
known-good subset of JSON Schema, lists everything else in one ``UnsupportedSchemaError``, and
rewrites what remains into a schema whose every match is valid for the original: strings
become patterns over characters that need no escaping (plus well-formed escapes), and values
of any type become a recursive definition built from those strings.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from ._constrained import string_pattern
from ._errors import CapabilityError

with warnings.catch_warnings():  # deprecated aliases of re._parser; the only typed way in
    warnings.simplefilter("ignore", DeprecationWarning)
    import sre_constants as sre
    import sre_parse

Schema = dict[str, Any]


class UnsupportedSchemaError(CapabilityError):
    """A structured-output schema uses features that constrained decoding cannot enforce."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(
            "The JSON schema cannot be enforced by constrained decoding; change the model:\n  "
            + "\n  ".join(problems)
        )
        self.problems = problems


ANNOTATIONS = frozenset(
    {
        "title",
        "description",
        "default",
        "examples",
        "deprecated",
        "readOnly",
        "writeOnly",
        "$comment",
        "$schema",
    }
)
"""Keywords that describe values without constraining them."""

ENFORCED_FORMATS = frozenset({"uuid", "ipv6"})
"""String formats whose grammar admits only valid values (``date``, ``email``, ... do not)."""

UNCONSTRAINED_FORMATS = frozenset({"password", "binary"})
"""Formats that pydantic emits for any string (``SecretStr``, ``bytes``)."""

_TYPE_KEYWORDS: dict[str, frozenset[str]] = {
    "string": frozenset({"minLength", "maxLength", "pattern", "format"}),
    "integer": frozenset(
        {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}
    ),
    "number": frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}),
    "array": frozenset({"items", "prefixItems", "minItems", "maxItems", "uniqueItems"}),
    "object": frozenset(
        {
            "properties",
            "required",
            "additionalProperties",
            "propertyNames",
            "minProperties",
            "maxProperties",
        }
    ),
    "boolean": frozenset(),
    "null": frozenset(),
}
_GENERAL_KEYWORDS = frozenset(
    {
        "type",
        "enum",
        "const",
        "$ref",
        "anyOf",
        "oneOf",
        "allOf",
        "discriminator",
        "$defs",
        "definitions",
    }
)
_NUMBER_DECIMALS = 6  # xgrammar writes bounded numbers with at most this many decimals

def string_schema(min_length: int = 0, max_length: int | None = None) -> Schema:
    """A string of ``min_length`` to ``max_length`` characters that is always valid JSON."""
    return {"type": "string", "pattern": string_pattern(min_length, max_length)}


def _unsafe(code: int) -> bool:
    """Whether xgrammar could emit this character raw where JSON needs an escape, or garble it."""
    return code < 0x20 or code in (0x22, 0x5C) or 0x7F <= code <= 0x9F or 0xD800 <= code <= 0xDFFF


def _range_unsafe(low: int, high: int) -> bool:
    unsafe = ((0, 0x1F), (0x22, 0x22), (0x5C, 0x5C), (0x7F, 0x9F), (0xD800, 0xDFFF))
    return any(low <= end and start <= high for start, end in unsafe)


def pattern_problem(pattern: str) -> str | None:
    """Why xgrammar would not enforce ``pattern`` exactly, or None.

    xgrammar matches a pattern against the raw JSON text of the string and ignores some
    constructs, so only a safe subset is accepted: literal characters and positive classes
    that need no escaping, ``\\d`` and ``\\w``, groups, alternation, repetition, and ``^``/``$``
    at the ends. ``.`` and negated classes may produce invalid UTF-8 (surrogates).
    """
    try:
        parsed = sre_parse.parse(pattern)
    except Exception as error:  # re.error, or anything the private parser raises
        return f"cannot be parsed ({error})"
    if parsed.state.flags & ~sre.SRE_FLAG_UNICODE:
        return "uses inline flags such as (?i)"
    branches: list[Any] = [parsed]
    first: Any = parsed.data[0] if len(parsed.data) == 1 else None
    if first is not None and first[0] is sre.BRANCH:
        branches = list(first[1][1])
    for branch in branches:
        items = list(branch.data)
        if items and items[0] == (sre.AT, sre.AT_BEGINNING):
            items = items[1:]
        if items and items[-1] == (sre.AT, sre.AT_END):
            items = items[:-1]
        if problem := _sequence_problem(items):
            return problem
    return None


_NEGATED = "uses a negated class '[^...]', which xgrammar may fill with invalid UTF-8"
_CONSTRUCTS = {
    "ASSERT": "a lookaround",
    "ASSERT_NOT": "a negative lookaround",
    "GROUPREF": "a backreference",
    "GROUPREF_EXISTS": "a conditional group",
    "ATOMIC_GROUP": "an atomic group",
    "POSSESSIVE_REPEAT": "a possessive repeat",
}


def _sequence_problem(items: Sequence[tuple[Any, Any]]) -> str | None:
    for op, argument in items:
        problem: str | None = None
        if op is sre.LITERAL:
            problem = (
                f"matches {chr(argument)!r}, which needs escaping in JSON"
                if _unsafe(argument)
                else None
            )
        elif op is sre.IN:
            problem = _class_problem(argument)
        elif op is sre.SUBPATTERN:
            _group, add_flags, del_flags, inner = argument
            problem = (
                "uses inline flags" if add_flags or del_flags else _sequence_problem(inner.data)
            )
        elif op is sre.BRANCH:
            problem = next(filter(None, (_sequence_problem(b.data) for b in argument[1])), None)
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
            problem = _sequence_problem(argument[2].data)
        elif op is sre.NOT_LITERAL:
            problem = _NEGATED
        elif op is sre.ANY:
            problem = "uses '.', which xgrammar may fill with invalid UTF-8; use a character class"
        elif op is sre.AT:
            problem = "uses an anchor or boundary other than a leading '^' and a trailing '$'"
        else:
            problem = f"uses {_CONSTRUCTS.get(str(op), str(op))}, which xgrammar does not enforce"
        if problem:
            return problem
    return None


def _class_problem(items: Sequence[tuple[Any, Any]]) -> str | None:
    for op, argument in items:
        if op is sre.NEGATE:
            return _NEGATED
        if op is sre.LITERAL and _unsafe(argument):
            return f"matches {chr(argument)!r}, which needs escaping in JSON"
        if op is sre.RANGE and _range_unsafe(*argument):
            return "has a range that includes a quote, backslash or control character"
        if op is sre.CATEGORY and argument not in (sre.CATEGORY_DIGIT, sre.CATEGORY_WORD):
            return "uses \\D, \\W, \\s or \\S (only \\d and \\w are enforced)"
    return None


def _integer_bounds(bounds: Mapping[str, float]) -> tuple[int | None, int | None]:
    """The least and greatest integers within ``bounds`` (None where unbounded)."""
    lows = [
        math.floor(v) + 1 if k == "exclusiveMinimum" else math.ceil(v)
        for k, v in bounds.items()
        if k in ("minimum", "exclusiveMinimum")
    ]
    highs = [
        math.ceil(v) - 1 if k == "exclusiveMaximum" else math.floor(v)
        for k, v in bounds.items()
        if k in ("maximum", "exclusiveMaximum")
    ]
    return max(lows, default=None), min(highs, default=None)


def _decimal_bounds(bounds: Mapping[str, float]) -> tuple[float | None, float | None]:
    """The least and greatest six-decimal numbers within ``bounds`` (xgrammar writes those)."""
    scale = 10**_NUMBER_DECIMALS
    low, high = _integer_bounds({k: round(v * scale, 6) for k, v in bounds.items()})
    return (None if low is None else low / scale), (None if high is None else high / scale)


class _Rewriter:
    """Walks one schema, collecting problems and building the enforceable schema."""

    def __init__(self, any_ref: str) -> None:
        self.problems: list[str] = []
        self.any_ref = any_ref
        self.uses_any = False

    def problem(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}")

    def any_value(self) -> Schema:
        self.uses_any = True
        return {"$ref": self.any_ref}

    def node(self, schema: Any, path: str) -> Schema:
        if schema is True:
            return self.any_value()
        if not isinstance(schema, Mapping):
            self.problem(path, f"expected a schema object, got {schema!r}")
            return {}
        keys = set(schema) - ANNOTATIONS
        if not keys:
            return self.any_value()
        unknown = keys - _GENERAL_KEYWORDS - frozenset().union(*_TYPE_KEYWORDS.values())
        for keyword in sorted(unknown):
            self.problem(path, f"'{keyword}' is not enforced by xgrammar 0.2.8")
        if unknown:
            return {}
        for keyword in ("$defs", "definitions"):
            if keyword in schema and path != "$":
                self.problem(path, f"'{keyword}' is only supported at the root")
        keys -= {"$defs", "definitions"}
        if "$ref" in keys:
            return self._reference(schema, keys, path)
        if "enum" in keys or "const" in keys:
            return self._constant(schema, keys, path)
        combinators = keys & {"anyOf", "oneOf", "allOf"}
        if combinators:
            return self._combination(schema, keys, combinators, path)
        if "discriminator" in keys:
            self.problem(path, "'discriminator' is enforced only with 'oneOf'")
        return self._typed(schema, keys - {"discriminator"}, path)

    def _reference(self, schema: Mapping[str, Any], keys: set[str], path: str) -> Schema:
        reference = schema["$ref"]
        if keys != {"$ref"}:
            self.problem(path, f"'$ref' next to {sorted(keys - {'$ref'})} is not enforced")
        if not isinstance(reference, str) or not reference.startswith("#/"):
            self.problem(path, f"only local references ('#/...') are supported, got {reference!r}")
        return {"$ref": reference}

    def _constant(self, schema: Mapping[str, Any], keys: set[str], path: str) -> Schema:
        extra = keys - {"enum", "const", "type"}
        if extra:
            self.problem(path, f"'enum'/'const' next to {sorted(extra)} is not enforced")
        if "const" in schema:
            if "enum" in schema and schema["const"] not in schema["enum"]:
                self.problem(path, "'const' is not among the 'enum' values")
            return {"const": schema["const"]}
        values = schema["enum"]
        if not isinstance(values, list) or not values:
            self.problem(path, "'enum' must be a non-empty list")
            return {}
        return {"enum": values}

    def _combination(
        self, schema: Mapping[str, Any], keys: set[str], combinators: set[str], path: str
    ) -> Schema:
        extra = keys - combinators - {"discriminator"}
        if len(combinators) > 1 or extra:
            self.problem(
                path,
                f"{sorted(keys)} together are not enforced; use one of anyOf/oneOf/allOf alone",
            )
        keyword = sorted(combinators)[0]
        options = schema[keyword]
        if not isinstance(options, list) or not options:
            self.problem(path, f"'{keyword}' must be a non-empty list")
            return {}
        if keyword == "allOf" and len(options) > 1:
            self.problem(path, "'allOf' with several schemas is not enforced by xgrammar 0.2.8")
        if keyword == "oneOf" and "discriminator" not in keys:
            self.problem(
                path,
                "'oneOf' is enforced only as 'anyOf'; use anyOf (a plain Union) or a "
                "discriminated union (Field(discriminator=...))",
            )
        rewritten = [
            self.node(option, f"{path}.{keyword}[{i}]") for i, option in enumerate(options)
        ]
        return rewritten[0] if keyword == "allOf" else {"anyOf": rewritten}

    def _typed(self, schema: Mapping[str, Any], keys: set[str], path: str) -> Schema:
        kind = schema.get("type")
        given: list[Any] = kind if isinstance(kind, list) else [kind]
        kinds = [k for k in given if isinstance(k, str) and k in _TYPE_KEYWORDS]
        if not kinds or len(kinds) != len(given):
            self.problem(path, f"needs a 'type' (one of {', '.join(_TYPE_KEYWORDS)}), got {kind!r}")
            return {}
        allowed = frozenset({"type"}).union(*(_TYPE_KEYWORDS[k] for k in kinds))
        for keyword in sorted(keys - allowed):
            self.problem(path, f"'{keyword}' does not apply to type {kind!r}")
        branches = [self._single_type(k, schema, path) for k in kinds]
        return branches[0] if len(branches) == 1 else {"anyOf": branches}

    def _single_type(self, kind: str, schema: Mapping[str, Any], path: str) -> Schema:
        if kind == "string":
            return self._string(schema, path)
        if kind in ("integer", "number"):
            return self._number(kind, schema, path)
        if kind == "array":
            return self._array(schema, path)
        if kind == "object":
            return self._object(schema, path)
        return {"type": kind}

    def _string(self, schema: Mapping[str, Any], path: str) -> Schema:
        format_ = schema.get("format")
        if format_ in UNCONSTRAINED_FORMATS:
            format_ = None
        pattern = schema.get("pattern")
        minimum, maximum = schema.get("minLength", 0), schema.get("maxLength")
        has_length = "minLength" in schema or "maxLength" in schema
        if format_ is not None:
            if format_ not in ENFORCED_FORMATS:
                self.problem(
                    path,
                    f"format {format_!r} is not enforced exactly by xgrammar 0.2.8 (supported: "
                    f"{', '.join(sorted(ENFORCED_FORMATS))}); use a plain string and parse it",
                )
            if has_length or pattern is not None:
                self.problem(
                    path, "'format' next to 'pattern', 'minLength' or 'maxLength' is not enforced"
                )
            return {"type": "string", "format": format_}
        if pattern is not None:
            if has_length:
                self.problem(path, "'pattern' next to 'minLength'/'maxLength' is not enforced")
            problem = pattern_problem(pattern) if isinstance(pattern, str) else "is not a string"
            if problem:
                self.problem(path, f"pattern {pattern!r} {problem}")
            return {"type": "string", "pattern": pattern}
        if not isinstance(minimum, int) or not (maximum is None or isinstance(maximum, int)):
            self.problem(path, "'minLength' and 'maxLength' must be integers")
            return {}
        if maximum is not None and maximum < minimum:
            self.problem(path, f"no string has at least {minimum} and at most {maximum} characters")
        return string_schema(minimum, maximum)

    def _number(self, kind: str, schema: Mapping[str, Any], path: str) -> Schema:
        bounds = {k: schema[k] for k in _TYPE_KEYWORDS["number"] if k in schema}
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in bounds.values()):
            self.problem(path, "bounds must be numbers")
            return {}
        result: Schema = {"type": kind}
        low: float | None
        high: float | None
        if kind == "integer":
            low, high = _integer_bounds(bounds)
            result.update({"minimum": low} if low is not None else {})
            result.update({"maximum": high} if high is not None else {})
        else:
            low, high = _decimal_bounds(bounds)
            result.update(bounds)
        if low is not None and high is not None and low > high:
            self.problem(
                path, f"no {kind} with at most {_NUMBER_DECIMALS} decimals lies within {bounds}"
            )
        if "multipleOf" in schema:
            step = schema["multipleOf"]
            if bounds:
                self.problem(path, "'multipleOf' next to bounds is not enforced by xgrammar 0.2.8")
            if isinstance(step, bool) or not isinstance(step, int) or step <= 0:
                self.problem(path, "'multipleOf' must be a positive integer")
            result["multipleOf"] = step
        return result

    def _array(self, schema: Mapping[str, Any], path: str) -> Schema:
        result: Schema = {"type": "array"}
        if schema.get("uniqueItems", False) is not False:
            self.problem(
                path, "'uniqueItems' is not enforced by xgrammar 0.2.8 (use a list, not a set)"
            )
        if "prefixItems" in schema:
            prefix = schema["prefixItems"]
            if not isinstance(prefix, list):
                self.problem(path, "'prefixItems' must be a list")
                prefix = []
            result["prefixItems"] = [
                self.node(s, f"{path}.prefixItems[{i}]") for i, s in enumerate(prefix)
            ]
        items = schema.get("items", "prefixItems" not in schema or None)
        if items is False:
            result["items"] = False
        elif items is not None:
            result["items"] = self.node(items, f"{path}.items")
        for keyword in ("minItems", "maxItems"):
            if keyword in schema:
                result[keyword] = schema[keyword]
        if result.get("maxItems", math.inf) < result.get("minItems", 0):
            self.problem(path, "'maxItems' is below 'minItems'")
        return result

    def _object(self, schema: Mapping[str, Any], path: str) -> Schema:
        result: Schema = {"type": "object"}
        properties = schema.get("properties", {})
        if not isinstance(properties, Mapping):
            self.problem(path, "'properties' must be an object")
            properties = {}
        if properties:
            result["properties"] = {
                name: self.node(value, f"{path}.properties.{name}")
                for name, value in properties.items()
            }
        required = schema.get("required", [])
        missing = [name for name in required if name not in properties]
        if missing:
            self.problem(path, f"required {missing} are not among the properties")
        if required:
            result["required"] = list(required)
        extra = schema.get("additionalProperties", not properties)
        if extra is not False:
            result["additionalProperties"] = self.node(extra, f"{path}.additionalProperties")
            result["propertyNames"] = self._property_names(schema.get("propertyNames", {}), path)
        map_keywords = {"minProperties", "maxProperties", "propertyNames"} & set(schema)
        if map_keywords and properties:
            self.problem(
                path, f"{sorted(map_keywords)} are enforced only on maps (no 'properties')"
            )
        result.update({k: schema[k] for k in ("minProperties", "maxProperties") if k in schema})
        return result

    def _property_names(self, names: Any, path: str) -> Schema:
        """Keys of a map: strings given by a pattern, lengths, an enum or a const."""
        path = f"{path}.propertyNames"
        if not isinstance(names, Mapping):
            self.problem(path, "must be a schema object")
            return {}
        if not {"type", "enum", "const", "$ref"} & set(names):
            names = {**names, "type": "string"}
        rewritten = self.node(names, path)
        if not {"pattern", "enum", "const"} & set(rewritten):
            self.problem(path, "only a pattern, lengths, an enum or a const are enforced for keys")
        return rewritten


def enforceable_schema(schema: Mapping[str, Any]) -> Schema:
    """Rewrite ``schema`` into one that xgrammar 0.2.8 enforces exactly.

    Every value the result admits is valid for ``schema``; the result may admit fewer values
    (no extra properties unless allowed, strings without raw control characters, numbers with
    at most six decimals where bounded).

    Raises:
        UnsupportedSchemaError: listing every feature of ``schema`` that cannot be enforced.
    """
    definitions_key = (
        "definitions" if "definitions" in schema and "$defs" not in schema else "$defs"
    )
    definitions = dict(schema.get(definitions_key, {}))
    any_name = "JsonValue"
    while any_name in definitions:
        any_name += "_"
    rewriter = _Rewriter(f"#/{definitions_key}/{any_name}")
    result = rewriter.node(schema, "$")
    rewritten = {
        name: rewriter.node(value, f"$.{definitions_key}.{name}")
        for name, value in definitions.items()
    }
    if rewriter.uses_any:
        reference = {"$ref": rewriter.any_ref}
        rewritten[any_name] = {
            "anyOf": [
                {"type": "null"},
                {"type": "boolean"},
                {"type": "number"},
                string_schema(),
                {"type": "array", "items": reference},
                {
                    "type": "object",
                    "additionalProperties": reference,
                    "propertyNames": string_schema(),
                },
            ]
        }
    if rewriter.problems:
        raise UnsupportedSchemaError(rewriter.problems)
    if rewritten:
        result[definitions_key] = rewritten
    return result
