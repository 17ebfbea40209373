"""Bad answers are refused before anything is written, with one line naming field, value, rule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cookiecutter.exceptions import FailedHookException
from cookiecutter.main import cookiecutter

from conftest import TEMPLATE

BAD_ANSWERS = [
    ({"package_name": "my-package"}, "package_name", "'my-package'", "not a valid"),
    ({"package_name": "class"}, "package_name", "'class'", "keyword"),
    ({"package_name": "match"}, "package_name", "'match'", "keyword"),
    ({"package_name": "json"}, "package_name", "'json'", "standard library"),
    ({"package_name": "asyncio"}, "package_name", "'asyncio'", "standard library"),
    ({"package_name": "torch"}, "package_name", "'torch'", "dependency"),
    ({"package_name": "transformers"}, "package_name", "'transformers'", "dependency"),
    ({"package_name": "autogen_core"}, "package_name", "'autogen_core'", "dependency"),
    ({"package_name": "pydantic"}, "package_name", "'pydantic'", "dependency"),
    ({"package_name": "2fast"}, "package_name", "'2fast'", "not a valid"),
    ({"client_class_name": "My Client"}, "client_class_name", "'My Client'", "not a valid"),
    ({"client_class_name": "1Client"}, "client_class_name", "'1Client'", "not a valid"),
    ({"client_class_name": "None"}, "client_class_name", "'None'", "keyword"),
    ({"client_class_name": "Config"}, "client_class_name", "'Config'", "already uses"),
    ({"client_class_name": "CreateResult"}, "client_class_name", "'CreateResult'", "already uses"),
    ({"package_name": "reference"}, "package_name", "'reference'", "shadows"),
    (
        {"project_slug": "-bad-", "package_name": "ok"},
        "project_slug",
        "'-bad-'",
        "distribution name",
    ),
    (
        {"project_slug": "two words", "package_name": "ok"},
        "project_slug",
        "'two words'",
        "distribution name",
    ),
    ({"model_name": ""}, "model_name", "''", "HuggingFace model"),
    ({"model_name": "   "}, "model_name", "'   '", "HuggingFace model"),
    ({"model_name": " Qwen/Qwen3-0.6B"}, "model_name", "' Qwen/Qwen3-0.6B'", "whitespace"),
    ({"model_family": "two words"}, "model_family", "'two words'", "one word"),
    (
        {"json_output": False, "structured_output": True},
        "structured_output",
        "True",
        "needs json_output",
    ),
    ({"author_email": "not-an-email"}, "author_email", "'not-an-email'", "email"),
    (
        {"project_name": "   ", "project_slug": "ok", "package_name": "ok"},
        "project_name",
        "'   '",
        "empty",
    ),
    ({"author_name": ""}, "author_name", "''", "empty"),
]


@pytest.mark.parametrize(
    ("answers", "field", "value", "rule"), BAD_ANSWERS, ids=[str(a[0]) for a in BAD_ANSWERS]
)
def test_bad_answer_is_refused_and_nothing_is_left(
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    answers: dict[str, Any],
    field: str,
    value: str,
    rule: str,
) -> None:
    with pytest.raises(FailedHookException):
        cookiecutter(str(TEMPLATE), no_input=True, extra_context=answers, output_dir=str(tmp_path))
    errors = [line for line in capfd.readouterr().err.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1, errors
    assert field in errors[0]
    assert value in errors[0]
    assert rule in errors[0]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ({"license": "GPL-3.0"}, "choice"),
        ({"min_python_version": "3.8"}, "choice"),
        ({"vision": "maybe"}, "boolean"),
    ],
)
def test_cookiecutter_refuses_answers_outside_choices_and_booleans(
    tmp_path: Path, answers: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        cookiecutter(str(TEMPLATE), no_input=True, extra_context=answers, output_dir=str(tmp_path))
    assert list(tmp_path.iterdir()) == []
