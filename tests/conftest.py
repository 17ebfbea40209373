"""Baking helpers for the template's tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cookiecutter.main import cookiecutter

TEMPLATE = Path(__file__).resolve().parent.parent
CONSTRAINTS = TEMPLATE / "constraints.txt"
FLAGS = ("vision", "function_calling", "json_output", "structured_output")

Bake = Callable[..., Path]


@pytest.fixture(autouse=True)
def _no_verification_and_pinned_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bakes skip the verification hook unless a test turns it back on; pip stays on CPU torch."""
    monkeypatch.setenv("AUTOGEN_HF_CLIENT_SKIP_VERIFY", "1")
    monkeypatch.setenv("PIP_CONSTRAINT", str(CONSTRAINTS))


@pytest.fixture
def bake(tmp_path: Path) -> Bake:
    """Bake the template with ``answers`` (no prompts) into a fresh folder; return the project."""

    def _bake(**answers: Any) -> Path:
        output = tmp_path / f"out{len(list(tmp_path.iterdir()))}"
        output.mkdir()
        return Path(
            cookiecutter(
                str(TEMPLATE), no_input=True, extra_context=answers, output_dir=str(output)
            )
        )

    return _bake


def bake_default_once(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """The default project, baked without verification (for module-scoped fixtures, which
    run before the autouse fixture that turns verification off)."""
    output = tmp_path_factory.mktemp(name)
    no_verification = {"verify_generated_project": False}
    return Path(
        cookiecutter(
            str(TEMPLATE), no_input=True, extra_context=no_verification, output_dir=str(output)
        )
    )


def project_environment(project: Path) -> dict[str, str]:
    """What runs a baked project's scripts in place: its sources and test helpers importable."""
    return {"PYTHONPATH": f"{project / 'src'}:{project / 'tests'}", "HF_HUB_OFFLINE": "1"}


def run(command: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run a command in a baked project; fail the test with its output when it fails."""
    result = subprocess.run(
        command,
        cwd=cwd,
        env={**os.environ, "HF_HUB_OFFLINE": "1", **env},
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=900,
    )
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def check_baked_project(project: Path, mypy_cache: Path) -> str:
    """Run the baked project's tests, ruff and mypy on its sources; return pytest's output."""
    source = {"PYTHONPATH": str(project / "src"), "MYPYPATH": str(project / "src")}
    tests = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], project, **source)
    run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], project)
    run([sys.executable, "-m", "ruff", "format", "--check", "--no-cache", "."], project)
    run([sys.executable, "-m", "mypy", "--cache-dir", str(mypy_cache)], project, **source)
    return tests.stdout


def answers_of(project: Path) -> dict[str, Any]:
    """The answers recorded in the baked project."""
    recorded: dict[str, Any] = json.loads((project / ".cookiecutter.json").read_text("utf-8"))
    return recorded


@pytest.fixture(scope="session")
def mypy_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One mypy cache for every baked project: torch and transformers are analysed once."""
    return tmp_path_factory.mktemp("mypy-cache")


def is_stand_in(module: Path) -> bool:
    """Whether ``module`` is the stand-in for a capability answered "no" (its first line says)."""
    return "stand-in" in module.read_text("utf-8").splitlines()[0]
