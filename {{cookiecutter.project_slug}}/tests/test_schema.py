"""Schema rewriting for constrained decoding: refusals, and random walks through the grammars.

A random walk picks any token the grammar allows at each step, so it explores far more of the
grammar than a model does: every finished walk must validate against the original model.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
import xgrammar as xgr
from pydantic import BaseModel, TypeAdapter, ValidationError, constr
from schema_models import SUPPORTED, UNSUPPORTED
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from {{ cookiecutter.package_name }} import UnsupportedSchemaError
from {{ cookiecutter.package_name }}._constrained import Compilers, Grammar, tokenizer_info
from {{ cookiecutter.package_name }}._schema import enforceable_schema, pattern_problem, string_schema


@pytest.fixture(scope="module")
def tokenizer(tiny_model_path: Path) -> PreTrainedTokenizerBase:
    loaded: PreTrainedTokenizerBase = AutoTokenizer.from_pretrained(tiny_model_path)
    return loaded


def random_walks(
    tokenizer: PreTrainedTokenizerBase, schema: dict[str, object], count: int, seed: int = 0
) -> tuple[list[str], int]:
    """Decoded texts of ``count`` random walks through the schema's grammar, and how many ran
    out of steps before the grammar could end."""
    eos = tokenizer.eos_token_id
    assert isinstance(eos, int)
    vocab_size = len(tokenizer)
    grammar = Grammar("json_schema", json.dumps(schema), tokenizer)
    compiled = Compilers.of(tokenizer).compile(grammar, vocab_size)
    rng = random.Random(seed)
    texts: list[str] = []
    unfinished = 0
    for _ in range(count):
        matcher = xgr.GrammarMatcher(compiled, override_stop_tokens=[eos])
        bitmask = xgr.allocate_token_bitmask(1, vocab_size)
        token_ids: list[int] = []
        for _step in range(400):
            matcher.fill_next_token_bitmask(bitmask)
            scores = torch.zeros(1, vocab_size)
            xgr.apply_token_bitmask_inplace(scores, bitmask)
            allowed = torch.nonzero(scores[0] == 0).flatten().tolist()
            if eos in allowed and (len(allowed) == 1 or rng.random() < 0.5):
                text = tokenizer.decode(token_ids, skip_special_tokens=True)
                assert isinstance(text, str)
                texts.append(text)
                break
            token = rng.choice([t for t in allowed if t != eos])
            assert matcher.accept_token(token)
            token_ids.append(token)
        else:
            unfinished += 1
    return texts, unfinished


@pytest.mark.parametrize("name", sorted(SUPPORTED))
def test_every_grammar_match_validates(tokenizer: PreTrainedTokenizerBase, name: str) -> None:
    model = SUPPORTED[name]
    texts, unfinished = random_walks(tokenizer, enforceable_schema(model.model_json_schema()), 120)
    assert len(texts) >= 40, f"only {len(texts)} walks finished ({unfinished} ran out of steps)"
    for text in texts:
        model.model_validate_json(text)


def test_strings_are_valid_json_with_exact_lengths(tokenizer: PreTrainedTokenizerBase) -> None:
    """xgrammar's own minLength lets raw control characters and lone surrogates through."""
    adapter = TypeAdapter(constr(min_length=2, max_length=5))
    texts, _ = random_walks(tokenizer, string_schema(2, 5), 300, seed=1)
    assert len(texts) == 300
    escapes = 0
    for text in texts:
        adapter.validate_json(text)
        escapes += "\\" in text
    assert escapes > 0, "escapes (\\n, \\u00e9, ...) should be reachable"


def test_unbounded_object_is_any_json_object(tokenizer: PreTrainedTokenizerBase) -> None:
    texts, _ = random_walks(tokenizer, enforceable_schema({"type": "object"}), 150, seed=2)
    assert len(texts) >= 50
    for text in texts:
        assert isinstance(json.loads(text), dict)
        TypeAdapter(dict[str, object]).validate_json(text)  # strict JSON: no lone surrogates


@pytest.mark.parametrize("name", sorted(UNSUPPORTED))
def test_unenforceable_features_are_refused(name: str) -> None:
    model, expected = UNSUPPORTED[name]
    with pytest.raises(UnsupportedSchemaError) as caught:
        enforceable_schema(model.model_json_schema())
    assert expected in str(caught.value)


def test_all_problems_are_listed_at_once() -> None:
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": "array", "items": {"type": "integer"}, "uniqueItems": True},
            "b": {"type": "string", "format": "date-time"},
        },
    }
    with pytest.raises(UnsupportedSchemaError) as caught:
        enforceable_schema(schema)
    assert len(caught.value.problems) == 2


@pytest.mark.parametrize(
    "pattern", [r"^[a-z]{2,4}-\d+$", r"ab|cd", r"^(?:x[0-9])+$", r"^[A-Fa-f0-9_]*$", "^[é-ü]+$"]
)
def test_safe_patterns_are_accepted(pattern: str) -> None:
    assert pattern_problem(pattern) is None


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        (r"^a.c$", "'.'"),
        (r"^[^a]+$", "negated"),
        (r"^\D$", "\\D"),
        (r"^(?!x)y$", "lookaround"),
        (r"^(a)\1$", "backreference"),
        (r'^a"b$', "escaping"),
        (r"^a\\b$", "escaping"),
        (r"^[ -~]+$", "range"),
        (r"(?i)^ab$", "flags"),
        (r"^a\bb$", "anchor"),
        (r"a^b", "anchor"),
        (r"^a\nb$", "escaping"),
        (r"(", "cannot be parsed"),
    ],
)
def test_unsafe_patterns_are_refused(pattern: str, reason: str) -> None:
    problem = pattern_problem(pattern)
    assert problem is not None
    assert reason in problem


def test_tokenizer_info_blanks_special_tokens_but_stop_and_kept_ones(
    tokenizer: PreTrainedTokenizerBase,
) -> None:
    eos = tokenizer.eos_token_id
    assert isinstance(eos, int)
    info = tokenizer_info(tokenizer, len(tokenizer))
    start = tokenizer.convert_tokens_to_ids("<|im_start|>")
    think = tokenizer.convert_tokens_to_ids("<think>")
    assert start in info.special_token_ids
    assert eos not in info.special_token_ids
    assert think not in info.special_token_ids  # an added token, but not special: ordinary text
    assert info.stop_token_ids == [eos]
    kept = tokenizer_info(tokenizer, len(tokenizer), ["<|im_start|>"])  # a format's marker
    assert start not in kept.special_token_ids


def test_rewrite_keeps_property_order_and_strictness() -> None:
    class Model(BaseModel):
        zebra: int
        apple: int

    schema = enforceable_schema(Model.model_json_schema())
    assert list(schema["properties"]) == ["zebra", "apple"]
    assert "additionalProperties" not in schema  # strict: no properties beyond the model's


def test_invalid_json_rejected_by_the_rewritten_string() -> None:
    """The rewritten string pattern refuses what plain xgrammar strings allow."""
    import re

    pattern = re.compile(string_schema()["pattern"])
    assert pattern.fullmatch(r"ok \" \n \u00e9 \ud83d\ude00")
    assert not pattern.fullmatch("\x07")  # raw control character
    assert not pattern.fullmatch(r"\udc3c")  # lone surrogate escape
    with pytest.raises(ValidationError):
        TypeAdapter(str).validate_json('"\\udc3c"')
