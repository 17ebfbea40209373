"""The generated repository's tooling: CI, release, dependabot, pre-commit, uv settings."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from cookiecutter.main import cookiecutter

from conftest import TEMPLATE, Bake


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text("utf-8"))


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:

    output = tmp_path_factory.mktemp("files")
    answers = {"verify_generated_project": False}  # module scope: before the autouse fixture
    return Path(
        cookiecutter(str(TEMPLATE), no_input=True, extra_context=answers, output_dir=str(output))
    )


def test_ci_installs_cpu_torch_tests_lints_and_runs_the_demo(project: Path) -> None:
    workflow = _yaml(project / ".github/workflows/ci.yml")
    assert workflow["permissions"] == {"contents": "read"}
    steps = [step.get("run", "") for step in workflow["jobs"]["test"]["steps"]]
    assert "python -m pip install torch --index-url https://download.pytorch.org/whl/cpu" in steps
    assert 'python -m pip install -e ".[dev]"' in steps
    assert {"mypy", "pytest", "ruff check . && ruff format --check ."} <= set(steps)
    assert "python -m autogen_huggingface_client demo" in steps


def test_release_builds_and_publishes_with_trusted_publishing(project: Path) -> None:
    workflow = _yaml(project / ".github/workflows/release.yml")
    assert workflow[True] == {"release": {"types": ["published"]}}  # YAML reads "on" as True
    assert workflow["permissions"] == {}
    build, publish = workflow["jobs"]["build"], workflow["jobs"]["publish"]
    assert any(step.get("run") == "python -m build" for step in build["steps"])
    assert publish["needs"] == "build"
    assert publish["permissions"] == {"id-token": "write"}
    assert publish["environment"]["url"] == "https://pypi.org/p/autogen-huggingface-client"
    (upload,) = [s for s in publish["steps"] if "pypi-publish" in s.get("uses", "")]
    assert upload["uses"].startswith("pypa/gh-action-pypi-publish@")
    assert upload["with"] == {"attestations": True}  # no password, no token: trusted publishing


@pytest.mark.parametrize("workflow", ["ci.yml", "release.yml"])
def test_actions_are_pinned_by_commit_with_their_release(project: Path, workflow: str) -> None:
    text = (project / ".github/workflows" / workflow).read_text("utf-8")
    uses = re.findall(r"uses: (\S+)(.*)", text)
    assert uses
    for action, comment in uses:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", action), action
        assert re.fullmatch(r" # v\d+\.\d+\.\d+", comment), (action, comment)
    assert text.count("persist-credentials: false") == text.count("actions/checkout@")


def test_ci_checks_the_workflows_with_zizmor(project: Path) -> None:
    workflow = _yaml(project / ".github/workflows/ci.yml")
    runs = [step.get("run", "") for step in workflow["jobs"]["zizmor"]["steps"]]
    assert "zizmor --offline .github" in runs


def test_dependabot_updates_actions_and_python_dependencies(project: Path) -> None:
    config = _yaml(project / ".github/dependabot.yml")
    assert config["version"] == 2
    assert {update["package-ecosystem"] for update in config["updates"]} == {
        "github-actions",
        "uv",
    }
    assert all(update["cooldown"]["default-days"] >= 1 for update in config["updates"])


def test_pre_commit_config_is_valid_and_runs_ruff_and_mypy(project: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit")}
    validated = subprocess.run(
        [sys.executable, "-m", "pre_commit", "validate-config", ".pre-commit-config.yaml"],
        cwd=project,
        capture_output=True,
        text=True,
        env=env,
    )
    assert validated.returncode == 0, validated.stdout + validated.stderr
    config = _yaml(project / ".pre-commit-config.yaml")
    hooks = {hook["id"] for repo in config["repos"] for hook in repo["hooks"]}
    assert hooks == {"ruff-check", "ruff-format", "mypy"}


def test_uv_takes_the_cpu_build_of_torch(project: Path) -> None:
    pyproject = tomllib.loads((project / "pyproject.toml").read_text("utf-8"))
    uv = pyproject["tool"]["uv"]
    assert uv["sources"]["torch"] == {"index": "pytorch-cpu"}
    assert uv["index"] == [
        {"name": "pytorch-cpu", "url": "https://download.pytorch.org/whl/cpu", "explicit": True}
    ]
    assert {"cruft>=2.15", "prek>=0.2"} <= set(pyproject["project"]["optional-dependencies"]["dev"])


def test_a_proprietary_project_is_never_published(bake: Bake) -> None:
    project = bake(license="Proprietary")
    assert not (project / ".github/workflows/release.yml").exists()
    pyproject = tomllib.loads((project / "pyproject.toml").read_text("utf-8"))
    assert "Private :: Do Not Upload" in pyproject["project"]["classifiers"]


def test_baking_leaves_the_home_directory_alone(
    bake: Bake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cookiecutter_home: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    bake(project_name="Home Check")
    assert list(home.iterdir()) == []
    assert list((cookiecutter_home / "replay").iterdir())  # the replay went to the test folder


@pytest.mark.parametrize(
    "answers",
    [{}, {"function_calling": False, "json_output": False, "structured_output": False}],
    ids=["default", "no-constraints"],
)
def test_readme_lists_every_benchmark_and_the_offline_demo(
    bake: Bake, answers: dict[str, bool]
) -> None:
    project = bake(**answers)
    readme = (project / "README.md").read_text("utf-8")
    benchmarks = TEMPLATE / "{{cookiecutter.project_slug}}" / "benchmarks"
    scripts = sorted(path.name for path in benchmarks.glob("bench_*.py"))
    assert len(scripts) == 6
    for script in scripts:
        assert (f"`benchmarks/{script}`" in readme) is (project / "benchmarks" / script).is_file()
    assert "python -m autogen_huggingface_client demo" in readme
    assert "## Updating your project" in readme
