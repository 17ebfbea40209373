"""Baking: the files each answer produces, and answers rendered safely as data."""

from __future__ import annotations

import ast
import itertools
import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml

from conftest import FLAGS, TEMPLATE, Bake, answers_of, check_baked_project, is_stand_in, load_hook

post = load_hook("post_gen_project")

DEFAULT_PACKAGE = "autogen_huggingface_client"


def python_files(project: Path) -> list[Path]:
    return sorted(project.rglob("*.py"))


def test_defaults_bake_a_complete_project(bake: Bake) -> None:
    project = bake()
    assert project.name == "autogen-huggingface-client"
    package = project / "src" / DEFAULT_PACKAGE
    for relative in [
        "pyproject.toml",
        "README.md",
        "LICENSE",
        ".gitignore",
        ".cruft.json",
        ".pre-commit-config.yaml",
        ".github/dependabot.yml",
        ".github/workflows/ci.yml",
        ".github/workflows/release.yml",
        "tests/conftest.py",
        "tests/tiny_models.py",
        "benchmarks/_report.py",
        "benchmarks/bench_client.py",
        "benchmarks/bench_json.py",
        "benchmarks/bench_tools.py",
    ]:
        assert (project / relative).is_file(), relative
    for module in [
        "__init__.py",
        "__main__.py",
        "_autogen/_client.py",
        "_autogen/_config.py",
        "_autogen/_demo.py",
        "_core/_chat.py",
        "_core/_tiny_models.py",
        "_core/tiny_model_chat_template.jinja",
        "py.typed",
    ]:
        assert (package / module).is_file(), module
    pyproject = tomllib.loads((project / "pyproject.toml").read_text("utf-8"))
    assert pyproject["project"]["name"] == "autogen-huggingface-client"
    assert pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == [
        f"src/{DEFAULT_PACKAGE}"
    ]
    assert not any("torch==" in dep for dep in pyproject["project"]["dependencies"])
    assert (
        post.TORCH_REQUIREMENT in pyproject["project"]["dependencies"]
    )  # what verification installs
    assert "{{" not in (project / "README.md").read_text("utf-8")
    for path in python_files(project):
        ast.parse(path.read_text("utf-8"), str(path))
    assert answers_of(project)["model_name"] == "Qwen/Qwen3-0.6B"
    assert "_output_dir" not in answers_of(project)
    assert not (project / ".ruff_cache").exists()


def test_default_model_is_a_tool_calling_instruct_model(bake: Bake) -> None:
    cookiecutter_json = json.loads((Path(__file__).parent.parent / "cookiecutter.json").read_text())
    assert "DialoGPT" not in cookiecutter_json["model_name"]
    assert cookiecutter_json["function_calling"] is True
    assert all(isinstance(cookiecutter_json[flag], bool) for flag in FLAGS)
    assert set(cookiecutter_json["__prompts__"]) >= {
        key for key in cookiecutter_json if not key.startswith("_")
    }


@pytest.mark.parametrize("license_name", ["MIT", "Apache-2.0", "BSD-3-Clause", "Proprietary"])
def test_license_file_and_metadata_follow_the_answer(bake: Bake, license_name: str) -> None:
    project = bake(license=license_name, author_name="Ada Lovelace")
    text = (project / "LICENSE").read_text("utf-8")
    expected_heading = {
        "MIT": "MIT License",
        "Apache-2.0": "Apache License",
        "BSD-3-Clause": "BSD 3-Clause License",
        "Proprietary": "All rights reserved",
    }[license_name]
    assert expected_heading in text
    assert "Ada Lovelace" in text
    assert "{%" not in text
    assert "{{" not in text
    pyproject = tomllib.loads((project / "pyproject.toml").read_text("utf-8"))
    expected = "LicenseRef-Proprietary" if license_name == "Proprietary" else license_name
    assert pyproject["project"]["license"] == expected


AWKWARD = [
    "Quote \"double\" and 'single'",
    "Back\\slash \\n not a newline \\u0041",
    "Ünïcödé Ça va? 日本語 🙂",
    "Two\nlines",
    "Triple \"\"\" and ''' quotes",
]


@pytest.mark.parametrize("text", AWKWARD)
def test_awkward_free_text_is_rendered_as_data(bake: Bake, text: str) -> None:
    project = bake(
        project_name=text, author_name=text, project_slug="awkward", package_name="awkward"
    )
    pyproject = tomllib.loads((project / "pyproject.toml").read_text("utf-8"))
    assert pyproject["project"]["authors"][0]["name"] == text
    workflow = yaml.safe_load((project / ".github/workflows/ci.yml").read_text("utf-8"))
    assert workflow["name"] == f"CI {text}"
    for path in python_files(project):
        compile(path.read_text("utf-8"), str(path), "exec")
    assert answers_of(project)["project_name"] == text
    assert " ".join(text.split()) in (project / "README.md").read_text("utf-8")


def test_model_name_with_quotes_reaches_python_intact(bake: Bake) -> None:
    name = './models/it\'s "quoted"\\path'
    project = bake(model_name=name)
    module = project / "src" / DEFAULT_PACKAGE / "_core" / "_defaults.py"
    tree = ast.parse(module.read_text("utf-8"))
    values = [
        node.value.value
        for node in ast.walk(tree)
        if isinstance(node, ast.AnnAssign) and isinstance(node.value, ast.Constant)
    ]
    assert name in values


def test_names_flow_into_the_code(bake: Bake) -> None:
    project = bake(project_name="My Local Llm", client_class_name="LocalLlmClient")
    assert project.name == "my-local-llm"
    package = project / "src" / "my_local_llm"
    client_source = (package / "_autogen" / "_client.py").read_text("utf-8")
    assert "class LocalLlmClient(ChatCompletionClient, Component[Config])" in client_source
    assert 'component_provider_override = "my_local_llm.LocalLlmClient"' in client_source
    config_source = (package / "_autogen" / "_config.py").read_text("utf-8")
    assert "class LocalLlmClientConfig(" in config_source


VISION_FILES = [
    f"src/{DEFAULT_PACKAGE}/_core/_vision_chat.py",
    "tests/test_vision.py",
    "tests/tiny_vision_models.py",
    "tests/chat_templates/vision_chatml.jinja",
    "tests/chat_templates/vision_rejects_system.jinja",
]


@pytest.mark.parametrize("vision", [False, True], ids=["no-vision", "vision"])
def test_vision_answer_decides_files_dependency_and_readme(bake: Bake, vision: bool) -> None:
    project = bake(vision=vision)
    for relative in VISION_FILES:
        assert (project / relative).is_file() is vision, relative
    pyproject = tomllib.loads((project / "pyproject.toml").read_text("utf-8"))
    dependencies = pyproject["project"]["dependencies"]
    assert any(dependency.startswith("pillow") for dependency in dependencies) is vision
    assert ("## Images" in (project / "README.md").read_text("utf-8")) is vision
    package = project / "src" / DEFAULT_PACKAGE
    assert is_stand_in(package / "_core" / "_vision.py") is not vision
    assert not (package / "_core" / "_no_vision.py").exists()
    assert ("UnreadableImageError" in (package / "__init__.py").read_text("utf-8")) is vision
    for path in [package / "_autogen" / "_client.py", package / "__init__.py"]:
        source = path.read_text("utf-8")
        assert "{%" not in source
        assert "{{" not in source
        ast.parse(source)


def test_client_module_is_the_same_for_every_capability_answer(bake: Bake) -> None:
    """Capabilities come in whole modules (or their stand-ins), never as template branches."""
    everything = bake(vision=True)
    nothing = bake(vision=False, function_calling=False, json_output=False, structured_output=False)
    relative = f"src/{DEFAULT_PACKAGE}/_autogen/_client.py"
    assert (everything / relative).read_text("utf-8") == (nothing / relative).read_text("utf-8")


AGENT_FRAMEWORK_FILES = [
    f"src/{DEFAULT_PACKAGE}/_agent_framework/__init__.py",
    f"src/{DEFAULT_PACKAGE}/_agent_framework/_client.py",
    f"src/{DEFAULT_PACKAGE}/_agent_framework/_messages.py",
    "tests/test_agent_framework.py",
]


@pytest.mark.parametrize("front", [False, True], ids=["autogen-only", "agent-framework"])
def test_agent_framework_answer_decides_the_front_and_its_dependency(
    bake: Bake, front: bool
) -> None:
    project = bake(agent_framework=front, min_python_version="3.11")
    for relative in AGENT_FRAMEWORK_FILES:
        assert (project / relative).is_file() is front, relative
    assert (project / "src" / DEFAULT_PACKAGE / "_agent_framework").is_dir() is front
    pyproject = tomllib.loads((project / "pyproject.toml").read_text("utf-8"))
    dependencies = pyproject["project"]["dependencies"]
    assert any(dep.startswith("agent-framework-core") for dep in dependencies) is front
    init = (project / "src" / DEFAULT_PACKAGE / "__init__.py").read_text("utf-8")
    assert ("HuggingFaceChatClient" in init) is front
    assert ("## Agent Framework" in (project / "README.md").read_text("utf-8")) is front


def test_the_core_imports_no_framework(bake: Bake) -> None:
    """The core is framework-free: only the fronts import AutoGen or Agent Framework."""
    core = bake(agent_framework=True, min_python_version="3.11") / "src" / DEFAULT_PACKAGE / "_core"
    for path in core.glob("*.py"):
        tree = ast.parse(path.read_text("utf-8"))
        imported = {
            name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for name in (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
            )
        }
        assert not {n for n in imported if n.startswith(("autogen", "agent_framework"))}, path


ALL_FLAGS = (*FLAGS, "agent_framework")
"""The capability answers and the Agent Framework front's."""
VALID_FLAG_COMBINATIONS = [
    {**dict(zip(FLAGS, values, strict=True)), "agent_framework": False}
    for values in itertools.product([False, True], repeat=4)
    if not (values[3] and not values[2])  # structured output needs JSON output
]
DEFAULT_ANSWERS = json.loads((TEMPLATE / "cookiecutter.json").read_text("utf-8"))
DEFAULT_FLAGS = {flag: DEFAULT_ANSWERS[flag] for flag in ALL_FLAGS}


def _flags(*on: str) -> dict[str, bool]:
    return {flag: flag in on for flag in ALL_FLAGS}


def _answers(flags: dict[str, bool]) -> dict[str, object]:
    """``flags`` as a bake's answers (Agent Framework needs Python 3.11)."""
    return {**flags, "min_python_version": "3.11"} if flags["agent_framework"] else dict(flags)


# All-pairs testing: the whole test suite of a baked project runs on these answers, on the
# awkward names project's and on the defaults (test_verification, through the real hook), which
# between them set every pair of answers (capabilities and the Agent Framework front) in every
# way the template accepts (test_every_pair_of_answers_is_tested).
# Every other capability combination is linted, type-checked and runs the tests that read the
# answers.
FULLY_TESTED_FLAGS = [
    _flags(),
    _flags("vision", "function_calling", "agent_framework"),
    _flags("vision", "json_output"),
    _flags("json_output", "agent_framework"),
]
AWKWARD_NAMES_FLAGS = _flags("vision", "json_output", "structured_output", "agent_framework")
CHECKED_FLAGS = [
    *VALID_FLAG_COMBINATIONS,
    *(flags for flags in FULLY_TESTED_FLAGS if flags not in VALID_FLAG_COMBINATIONS),
]
ANSWER_TESTS = ("-k", "disabled or config or model_info or capabilit")


def _flag_id(flags: dict[str, bool]) -> str:
    return "-".join(name for name, on in flags.items() if on) or "none"


@pytest.mark.parametrize("flags", VALID_FLAG_COMBINATIONS, ids=_flag_id)
def test_capability_answers_set_model_info(bake: Bake, flags: dict[str, bool]) -> None:
    project = bake(**_answers(flags))
    source = (project / "src" / DEFAULT_PACKAGE / "_core" / "_defaults.py").read_text("utf-8")
    for flag in FLAGS:
        assert re.search(rf'^\s+"{flag}": {flags[flag]},$', source, re.MULTILINE), flag


def test_every_pair_of_answers_is_tested() -> None:
    def pairs(flags: dict[str, bool]) -> set[tuple[tuple[str, bool], tuple[str, bool]]]:
        return set(itertools.combinations(flags.items(), 2))

    valid = [
        dict(zip(ALL_FLAGS, values, strict=True))
        for values in itertools.product([False, True], repeat=5)
        if not (values[3] and not values[2])
    ]
    tested = [*FULLY_TESTED_FLAGS, AWKWARD_NAMES_FLAGS, DEFAULT_FLAGS]
    assert all(flags in valid for flags in tested)
    wanted = set().union(*map(pairs, valid))
    assert set().union(*map(pairs, tested)) == wanted
    assert len(wanted) == 39  # 10 pairs of answers, 4 settings each, less structured without JSON


@pytest.mark.slow
@pytest.mark.parametrize("flags", CHECKED_FLAGS, ids=_flag_id)
def test_every_capability_combination_passes_its_own_checks(
    bake: Bake, flags: dict[str, bool], mypy_cache: Path
) -> None:
    project = bake(**_answers(flags))
    answer_tests = () if flags in FULLY_TESTED_FLAGS else ANSWER_TESTS
    output = check_baked_project(project, mypy_cache, *answer_tests)
    assert re.search(r"\d+ passed", output)
    assert "failed" not in output


@pytest.mark.slow
def test_awkward_names_project_passes_its_own_checks(bake: Bake, mypy_cache: Path) -> None:
    project = bake(
        project_name='Ça "marche" \\ 🙂',
        client_class_name="ZetaClient",
        author_name='O\'Brien "Bob"',
        min_python_version="3.11",
        **AWKWARD_NAMES_FLAGS,
    )
    output = check_baked_project(project, mypy_cache)
    assert re.search(r"\d+ passed", output)


def test_the_template_tests_install_what_every_bake_needs(bake: Bake) -> None:
    """Baked suites run in the template's environment: requirements-test.txt holds the
    dependencies (and test extra) of a project with every answer on."""
    project = bake(vision=True, agent_framework=True, min_python_version="3.11")
    pyproject = tomllib.loads((project / "pyproject.toml").read_text("utf-8"))
    wanted = [*pyproject["project"]["dependencies"]]
    extras = pyproject["project"]["optional-dependencies"]
    wanted += [*extras["test"], *extras["constrained"], *extras["vllm"]]
    installed = {
        re.split(r"[<>=!~\[; ]", line.strip())[0].lower()
        for line in (TEMPLATE / "requirements-test.txt").read_text("utf-8").splitlines()
        if line.strip() and not line.startswith(("#", "-"))
    }
    names = {re.split(r"[<>=!~\[; ]", requirement)[0].lower() for requirement in wanted}
    names.discard(answers_of(project)["project_slug"])  # the project's own extras
    assert names - installed == set()
