"""Bad answers are refused before anything is written, with one line naming field, value, rule."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cookiecutter.exceptions import FailedHookException
from cookiecutter.main import cookiecutter

from conftest import TEMPLATE, load_hook

post = load_hook("post_gen_project")

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


def _cookiecutter_cli(*arguments: str) -> subprocess.CompletedProcess[str]:
    """Cookiecutter's own command line, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "cookiecutter", *arguments],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
    )


def test_a_refused_answer_is_its_own_line_without_a_traceback(tmp_path: Path) -> None:
    done = _cookiecutter_cli("--no-input", "-o", str(tmp_path), str(TEMPLATE), "package_name=json")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "ERROR: package_name 'json' shadows the standard library module of that name"
    ]
    # Cookiecutter's command line ends with this line of its own; the template cannot drop it.
    assert done.stdout.splitlines() == ["Hook script failed (exit status: 1)"]
    assert list(tmp_path.iterdir()) == []


def test_the_regenerate_advice_works_when_pasted(tmp_path: Path) -> None:
    first = _cookiecutter_cli(
        "--no-input", "-o", str(tmp_path), str(TEMPLATE), "project_name=Again"
    )
    assert first.returncode == 0, first.stderr
    answers = {"_template": str(TEMPLATE), "_output_dir": str(tmp_path), "_checkout": None}
    again = post.regenerate_command(answers, TEMPLATE)
    assert again.startswith("cookiecutter --replay --overwrite-if-exists ")
    pasted = shlex.split(again)[1:]
    (tmp_path / "again" / "README.md").write_text("changed")
    done = _cookiecutter_cli(*pasted)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Again" in (tmp_path / "again" / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "payload",
    [
        "{{ cycler.__init__.__globals__.os.system('touch MARKER') }}",
        "{{ (cycler|attr('__init__')|attr('__globals__'))['os'].system('touch MARKER') }}",
        "{{ (cookiecutter.items()|map('first')).gi_frame.f_globals }}",
        "{{ lipsum['__globals__']['os'].system('touch MARKER') }}",
    ],
)
def test_answers_that_reach_python_internals_are_refused(tmp_path: Path, payload: str) -> None:
    marker = tmp_path / "ran"
    answer = payload.replace("MARKER", str(marker))
    done = _cookiecutter_cli(
        "--no-input", "-o", str(tmp_path), str(TEMPLATE), f"project_name={answer}"
    )
    assert done.returncode == 1
    assert "Unable to render variable 'project_name'" in done.stdout
    assert not marker.exists()
    assert list(tmp_path.iterdir()) == []
