"""The answers checked against the model's own files, found locally or in the HF cache."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conftest import TEMPLATE, load_hook

model_checks = load_hook("model_checks")

ANSWERS: dict[str, Any] = {
    "model_name": "org/model",
    "model_family": "unknown",
    "vision": False,
    "function_calling": True,
}
TOOLS_TEMPLATE = "{% if tools %}{{ tools | tojson }}{% endif %}<think>{{ messages }}"


def _model(folder: Path, *, template: str | None = TOOLS_TEMPLATE, **config: Any) -> Path:
    folder.mkdir(parents=True)
    config = {"model_type": "qwen2", "max_position_embeddings": 4096, **config}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 10**30}))
    if template is not None:
        (folder / "chat_template.jinja").write_text(template)
    return folder


def test_a_model_in_the_hub_cache_is_found_by_its_main_ref(tmp_path: Path) -> None:
    repository = tmp_path / "hub" / "models--org--model"
    snapshot = _model(repository / "snapshots" / "abc123")
    (repository / "refs").mkdir()
    (repository / "refs" / "main").write_text("abc123")
    env = {"HF_HOME": str(tmp_path)}
    assert model_checks.model_directory("org/model", env) == snapshot
    assert model_checks.model_directory("org/other", env) is None
    assert model_checks.check_model(ANSWERS, {"HF_HOME": str(tmp_path / "empty")}) == ([], [])


def test_contradictions_are_refused_one_line_each(tmp_path: Path) -> None:
    base = _model(tmp_path / "base", template=None, max_position_embeddings=256)
    answers = {**ANSWERS, "model_name": str(base), "vision": True}
    problems, _ = model_checks.check_model(answers, {})
    assert [problem.split(",")[0] for problem in problems] == [
        "vision True",
        "function_calling True",
        f"model_name {str(base)!r} has a context window of 256 tokens",
    ]
    assert all("\n" not in problem for problem in problems)
    assert "no image processor" in problems[0]
    assert "no chat template" in problems[1]


def test_a_good_model_passes_with_what_it_suggests(tmp_path: Path) -> None:
    model = _model(tmp_path / "mistral", model_type="mistral")
    (model / "preprocessor_config.json").write_text("{}")
    problems, notes = model_checks.check_model({**ANSWERS, "model_name": str(model)}, {})
    assert problems == []
    assert any("model_family 'mistral'" in note for note in notes)
    assert any("thinks" in note for note in notes)
    assert any("answer vision yes" in note for note in notes)


@pytest.mark.parametrize(
    ("files", "renders_tools"),
    [
        ({"chat_template.jinja": "{{ messages }}"}, False),
        ({"tokenizer_config.json": json.dumps({"chat_template": TOOLS_TEMPLATE})}, True),
        (
            {
                "tokenizer_config.json": json.dumps(
                    {"chat_template": [{"name": "tool_use", "template": TOOLS_TEMPLATE}]}
                )
            },
            True,
        ),
    ],
)
def test_templates_are_read_where_transformers_reads_them(
    tmp_path: Path, files: dict[str, str], renders_tools: bool
) -> None:
    model = _model(tmp_path / "m", template=None)
    for name, text in files.items():
        (model / name).write_text(text)
    _, notes = model_checks.check_model({**ANSWERS, "model_name": str(model)}, {})
    assert any("renders no tools" in note for note in notes) is not renders_tools


def test_the_checks_default_matches_the_generated_config() -> None:
    config = TEMPLATE / "{{cookiecutter.project_slug}}" / "src" / "{{cookiecutter.package_name}}"
    text = (config / "_core" / "_config.py").read_text(encoding="utf-8")
    assert f"max_new_tokens: int = Field(default={model_checks.DEFAULT_MAX_NEW_TOKENS}," in text
