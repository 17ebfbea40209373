"""The JSON-output and structured-output answers: which files, extras and docs they produce."""

from __future__ import annotations

import tomllib

import pytest

from conftest import Bake, is_stand_in

PACKAGE = "src/autogen_huggingface_client"
JSON_FILES = [
    f"{PACKAGE}/_core/_schema.py",
    "tests/test_json_output.py",
    "tests/test_schema.py",
    "tests/schema_models.py",
    "benchmarks/bench_json.py",
]


@pytest.mark.parametrize(
    ("json_output", "structured_output"), [(True, True), (True, False), (False, False)]
)
def test_files_extras_and_readme_follow_the_answers(
    bake: Bake, json_output: bool, structured_output: bool
) -> None:
    project = bake(
        json_output=json_output, structured_output=structured_output, function_calling=False
    )
    for relative in JSON_FILES:
        assert (project / relative).is_file() == json_output, relative
    assert (project / "tests/test_json_output_disabled.py").is_file() == (not json_output)
    assert (project / "tests/test_structured_output.py").is_file() == structured_output
    assert (project / "tests/test_structured_output_disabled.py").is_file() == (
        not structured_output
    )

    extras = tomllib.loads((project / "pyproject.toml").read_text("utf-8"))["project"][
        "optional-dependencies"
    ]
    assert ("constrained" in extras) == json_output
    assert ("autogen-huggingface-client[constrained]" in extras["test"]) == json_output
    if json_output:
        assert any(requirement.startswith("llguidance") for requirement in extras["constrained"])

    assert is_stand_in(project / PACKAGE / "_core" / "_json_output.py") == (not json_output)
    assert not (project / PACKAGE / "_core" / "_no_json_output.py").exists()

    readme = (project / "README.md").read_text("utf-8")
    assert ("## JSON output" in readme) == json_output
    assert ("output_content_type=Verdict" in readme) == structured_output
