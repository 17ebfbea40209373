"""Baking with and without tool calling: its files, config field, extra and README section."""

from __future__ import annotations

import tomllib

import pytest

from conftest import Bake, is_stand_in

PACKAGE = "src/autogen_huggingface_client"
TOOL_FILES = [
    f"{PACKAGE}/_core/_tool_format.py",
    f"{PACKAGE}/_core/_tool_parsers.py",
    "tests/test_tools.py",
    "tests/test_tool_format.py",
    "tests/tool_templates.py",
    "tests/chat_templates/gemma4_tools.jinja",
    "tests/chat_templates/llama3_tools.jinja",
    "tests/chat_templates/mistral_tools.jinja",
    "tests/chat_templates/no_tools.jinja",
    "benchmarks/bench_tools.py",
]


@pytest.mark.parametrize("function_calling", [True, False])
def test_function_calling_answer_selects_the_tool_files(bake: Bake, function_calling: bool) -> None:
    project = bake(function_calling=function_calling, json_output=False, structured_output=False)
    for relative in TOOL_FILES:
        assert (project / relative).is_file() is function_calling, relative
    assert (project / "tests/test_tools_disabled.py").is_file() is not function_calling
    tool_templates = list((project / "tests/chat_templates").glob("*_tools.jinja"))
    assert bool(tool_templates) is function_calling  # only the tool tests read them
    config = (project / PACKAGE / "_core" / "_config.py").read_text("utf-8")
    assert ("tool_call_format" in config) is function_calling
    assert is_stand_in(project / PACKAGE / "_core" / "_tools.py") is not function_calling
    assert not (project / PACKAGE / "_core" / "_no_tools.py").exists()
    readme = (project / "README.md").read_text("utf-8")
    assert ("## Tool calling" in readme) is function_calling
    assert "{%" not in readme
    pyproject = tomllib.loads((project / "pyproject.toml").read_text("utf-8"))
    extras = pyproject["project"]["optional-dependencies"]
    assert ("constrained" in extras) is function_calling
    if function_calling:
        assert any(dependency.startswith("llguidance") for dependency in extras["constrained"])
        assert "autogen-huggingface-client[constrained]" in extras["test"]


def test_install_hint_names_the_project_extra(bake: Bake) -> None:
    project = bake(project_name="Tools Client")
    constrained = (project / "src/tools_client/_core/_constrained.py").read_text("utf-8")
    assert "INSTALL_HINT = \"pip install 'tools-client[constrained]'\"" in constrained


@pytest.mark.parametrize(
    ("function_calling", "json_output"), [(True, False), (False, True), (False, False)]
)
def test_the_constrained_module_exists_when_a_capability_uses_it(
    bake: Bake, function_calling: bool, json_output: bool
) -> None:
    project = bake(
        function_calling=function_calling, json_output=json_output, structured_output=False
    )
    used = function_calling or json_output
    assert (project / PACKAGE / "_core" / "_constrained.py").is_file() is used
