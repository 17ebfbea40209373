"""JSON schemas as users bring them: what the grammar enforces, what is checked afterwards,
and what is refused; random walks through the grammars.

A random walk picks any token the grammar allows at each step, so it explores far more of the
grammar than a model does: every finished walk of an exactly enforced schema must validate.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
import torch
from pydantic import BaseModel
from schema_models import SUPPORTED, UNSUPPORTED
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from {{ cookiecutter.package_name }} import UnsupportedSchemaError
from {{ cookiecutter.package_name }}._core._constrained import Compilers, Grammar
from {{ cookiecutter.package_name }}._core._schema import prepare_schema, validation_errors


@pytest.fixture(scope="module")
def tokenizer(tiny_model_path: Path) -> PreTrainedTokenizerBase:
    loaded: PreTrainedTokenizerBase = AutoTokenizer.from_pretrained(tiny_model_path)
    return loaded


def random_walks(
    tokenizer: PreTrainedTokenizerBase, schema: dict[str, Any], count: int, seed: int = 0
) -> tuple[list[str], int]:
    """Decoded texts of ``count`` random walks through the schema's grammar, and how many ran
    out of steps before the grammar could end."""
    eos = tokenizer.eos_token_id
    assert isinstance(eos, int)
    vocab_size = len(tokenizer)
    grammar = Grammar("json_schema", json.dumps(schema), tokenizer)
    rng = random.Random(seed)
    texts: list[str] = []
    unfinished = 0
    for _ in range(count):
        state = grammar.start(vocab_size, [eos])
        token_ids: list[int] = []
        for _step in range(400):
            scores = torch.zeros(vocab_size)
            state.mask(scores)
            allowed = torch.nonzero(scores == 0).flatten().tolist()
            if eos in allowed and (len(allowed) == 1 or rng.random() < 0.5):
                texts.append(str(tokenizer.decode(token_ids, skip_special_tokens=True)))
                break
            token = rng.choice([t for t in allowed if t != eos])
            state.accept(token)
            token_ids.append(token)
        else:
            unfinished += 1
    return texts, unfinished


@pytest.mark.parametrize("name", sorted(SUPPORTED))
def test_every_grammar_match_validates(tokenizer: PreTrainedTokenizerBase, name: str) -> None:
    model = SUPPORTED[name]
    prepared = prepare_schema(model.model_json_schema())
    texts, unfinished = random_walks(tokenizer, prepared.grammar_schema, 120)
    assert len(texts) >= 40, f"only {len(texts)} walks finished ({unfinished} ran out of steps)"
    for text in texts:
        if prepared.exact or not prepared.errors(json.loads(text)):
            model.model_validate_json(text)  # what the grammar (and its check) lets through


@pytest.mark.parametrize("name", sorted(UNSUPPORTED))
def test_keywords_the_grammar_cannot_enforce_are_named_and_checked(
    tokenizer: PreTrainedTokenizerBase, name: str
) -> None:
    """What a whitelist refused is now approximated by the grammar and checked afterwards."""
    model, _ = UNSUPPORTED[name]
    prepared = prepare_schema(model.model_json_schema())
    texts, _ = random_walks(tokenizer, prepared.grammar_schema, 40)
    for text in texts:  # what the check lets through validates
        if not prepared.errors(json.loads(text)):
            model.model_validate_json(text)


REAL_WORLD: dict[str, dict[str, Any]] = {
    "annotations and vendor keywords": {
        "type": "object",
        "propertyOrder": ["name"],
        "javaType": "com.example.Thing",
        "x-kubernetes-preserve-unknown-fields": True,
        "x-intellij-html-description": "<b>x</b>",
        "properties": {"name": {"type": "string", "readonly": True, "weight": 3, "_format": "x"}},
        "required": ["name"],
    },
    "no type at all": {"description": "anything goes"},
    "enum and const without type": {
        "type": "object",
        "properties": {"kind": {"enum": ["a", 1, None]}, "v": {"const": "fixed"}},
        "required": ["kind", "v"],
    },
    "draft-04 ref with siblings": {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "definitions": {"node": {"type": "object", "properties": {"next": {"$ref": "#/definitions/node", "description": "recursive", "type": "object"}}}},
        "$ref": "#/definitions/node",
    },
    "uniqueItems, not, dependencies, patternProperties": {
        "type": "object",
        "properties": {
            "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
            "other": {"not": {"type": "string"}},
        },
        "dependencies": {"tags": ["other"]},
        "patternProperties": {"^x-": {"type": "integer"}},
    },
    "look-around pattern": {"type": "string", "pattern": "^(?!mode).*$"},
    "mcp tool": {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "url": {"type": "string", "format": "uri", "description": "Where."},
            "limit": {"type": ["integer", "null"], "default": 10, "examples": [5]},
            "filter": {"$ref": "#/$defs/filter"},
        },
        "required": ["url"],
        "$defs": {"filter": {"type": "object", "properties": {"q": {"type": "string"}}}},
    },
}


@pytest.mark.parametrize("name", sorted(REAL_WORLD))
def test_real_world_schemas_are_accepted(tokenizer: PreTrainedTokenizerBase, name: str) -> None:
    schema = REAL_WORLD[name]
    prepared = prepare_schema(schema)
    texts, _ = random_walks(tokenizer, prepared.grammar_schema, 30, seed=2)
    assert texts, "no walk finished"
    for text in texts:
        value = json.loads(text)
        if prepared.exact:
            assert validation_errors(schema, value) == [], text


def test_what_the_grammar_only_approximates_is_listed() -> None:
    assert prepare_schema(REAL_WORLD["annotations and vendor keywords"]).exact
    loose = prepare_schema(REAL_WORLD["uniqueItems, not, dependencies, patternProperties"])
    listed = " ".join(loose.approximated)
    for keyword in ("uniqueItems", "not", "dependencies"):
        assert keyword in listed
    lookaround = prepare_schema(REAL_WORLD["look-around pattern"])
    assert lookaround.grammar_schema["pattern"] == "^.*$"  # the look-around left out
    assert "look-around" in " ".join(lookaround.approximated)
    assert lookaround.errors("mode on")
    assert not lookaround.errors("other")


def test_property_names_become_patterns_the_grammar_enforces(
    tokenizer: PreTrainedTokenizerBase,
) -> None:
    schema = {"type": "object", "propertyNames": {"maxLength": 3}, "maxProperties": 2}
    prepared = prepare_schema(schema)
    assert prepared.grammar_schema["patternProperties"] == {"^.{0,3}$": {}}
    texts, _ = random_walks(tokenizer, prepared.grammar_schema, 40, seed=3)
    assert texts
    for text in texts:
        assert all(len(key) <= 3 for key in json.loads(text)), text


def test_draft_04_references_replace_their_siblings() -> None:
    prepared = prepare_schema(REAL_WORLD["draft-04 ref with siblings"])
    node = prepared.grammar_schema["definitions"]["node"]["properties"]["next"]
    assert node == {"$ref": "#/definitions/node"}


def test_answers_are_checked_with_the_schemas_draft_and_formats() -> None:
    assert validation_errors({"type": "string", "format": "date"}, "2024-02-30")
    assert not validation_errors({"type": "string", "format": "date"}, "2024-02-29")
    errors = validation_errors({"type": "array", "uniqueItems": True}, [1, 1])
    assert errors
    assert "non-unique" in errors[0]


@pytest.mark.parametrize(
    ("schema", "reason"),
    [
        (False, "must be a JSON object or true"),
        ([{"type": "string"}], "must be a JSON object or true"),
        ({"$ref": "https://example.com/schema.json"}, "does not fetch"),
    ],
)
def test_schemas_no_grammar_can_serve_are_refused(schema: Any, reason: str) -> None:
    with pytest.raises(UnsupportedSchemaError, match=reason):
        prepare_schema(schema)


def test_pydantic_models_keep_their_property_order() -> None:
    class Ordered(BaseModel):
        zebra: int
        apple: str

    prepared = prepare_schema(Ordered.model_json_schema())
    assert list(prepared.grammar_schema["properties"]) == ["zebra", "apple"]


def test_an_answer_a_server_cut_off_is_completed_by_the_grammar(
    tokenizer: PreTrainedTokenizerBase,
) -> None:
    """A server cannot close a grammar in time: it gets a budget a few tokens short, and what
    it cut off is finished here, the grammar's shortest way."""
    eos = tokenizer.eos_token_id
    assert isinstance(eos, int)
    schema = {
        "type": "object",
        "properties": {"text": {"type": "string"}, "tags": {"type": "array"}},
        "required": ["text", "tags"],
        "additionalProperties": False,
    }
    grammar = Grammar("json_schema", json.dumps(schema), tokenizer, budget=64)
    assert grammar.server_reserve() == 16
    cut = tokenizer.encode('{"text": "hello wor', add_special_tokens=False)
    ending = grammar.completion(cut, [eos], 16)
    assert ending is not None
    assert len(ending) <= 16
    assert ending[-1] == eos
    value = json.loads(str(tokenizer.decode(cut + ending[:-1])))
    assert value["text"].startswith("hello wor")
    assert value["tags"] == []
    assert grammar.completion(cut, [eos], 2) is None  # no way to finish fits
    stray = tokenizer.encode('{"other', add_special_tokens=False)
    assert grammar.completion(stray, [eos], 16) is None  # not this grammar's answer
    assert Grammar("json_schema", json.dumps(schema), tokenizer).server_reserve() == 0


def test_the_ending_walks_share_nothing_with_the_requests_matcher(
    tokenizer: PreTrainedTokenizerBase,
) -> None:
    """A walk that fails (llguidance can panic in a state a walk reaches, poisoning what deep
    copies share) ends the planning, never the request: its matcher is not the walks'."""
    eos = tokenizer.eos_token_id
    assert isinstance(eos, int)
    schema = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}
    grammar = Grammar("json_schema", json.dumps(schema), tokenizer, budget=12)
    state = grammar.start(len(tokenizer), [eos])
    walks: list[Any] = []

    def failing_walks() -> Any:
        broken = Compilers.of(tokenizer).walk_start(grammar, len(tokenizer))
        broken.consume_token(eos)  # not this grammar's first token: the matcher is in error
        walks.append(broken)
        return broken

    state.walks = failing_walks
    for token in tokenizer.encode('{"text": "a', add_special_tokens=False):
        scores = torch.zeros(len(tokenizer))
        state.mask(scores)
        assert scores[token] == 0
        state.accept(token)
    assert len(walks) == 1  # planning stopped after the failed walk
    scores = torch.zeros(len(tokenizer))
    state.mask(scores)  # the request's own matcher still masks
    assert int((scores == 0).sum()) > 1
