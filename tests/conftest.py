"""Baking helpers for the template's tests."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from cookiecutter.main import cookiecutter

TEMPLATE = Path(__file__).resolve().parent.parent
VLLM_PYTHON = os.environ.get("VLLM_TEST_PYTHON") or None
"""A Python with vLLM (``.ci/run`` installs one): only the vLLM tests hand it to a bake."""
CONSTRAINTS = TEMPLATE / "constraints.txt"
FLAGS = ("vision", "function_calling", "json_output", "structured_output")

Bake = Callable[..., Path]


LONGEST_FIRST = (
    "test_verification.py",
    "test_real_models.py",
    "test_vllm.py",
    "test_bake.py",
    "test_uv.py",
    "test_benchmarks.py",
)
"""Modules by the time their tests take, longest first (the rest come after them)."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the longest tests first: pytest-xdist hands them out in this order, and one long
    test collected last would otherwise run alone at the end."""

    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)


def load_hook(name: str) -> ModuleType:
    """Import a hook file as a module (its Jinja line only runs under ``__main__``)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, TEMPLATE / "hooks" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session", autouse=True)
def cookiecutter_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Cookiecutter's config, replay files and clones in a temporary folder, never in ``~``."""
    home = tmp_path_factory.mktemp("cookiecutter-home")
    config = home / "config.yaml"
    settings = {"replay_dir": str(home / "replay"), "cookiecutters_dir": str(home / "clones")}
    config.write_text(json.dumps(settings), encoding="utf-8")  # JSON is YAML
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COOKIECUTTER_CONFIG", str(config))
        yield home


@pytest.fixture(autouse=True)
def _no_verification_and_pinned_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bakes skip the verification hook unless a test turns it back on; pip stays on CPU torch;
    baked test suites run without vLLM unless a test hands it over."""
    monkeypatch.setenv("AUTOGEN_HF_CLIENT_SKIP_VERIFY", "1")
    monkeypatch.setenv("PIP_CONSTRAINT", str(CONSTRAINTS))
    monkeypatch.delenv("VLLM_TEST_PYTHON", raising=False)  # a server start per bake is too slow


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


def git_commit(repository: Path, message: str) -> str:
    """Commit everything in ``repository`` (a git repository from then on); return the commit."""
    git = ["git", "-c", "user.name=Tests", "-c", "user.email=tests@example.com"]
    for command in (
        ["init", "-q"],
        ["add", "-A"],
        ["commit", "-q", "--no-gpg-sign", "-m", message],
    ):
        subprocess.run([*git, *command], cwd=repository, check=True, capture_output=True)
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repository, check=True, capture_output=True, text=True
    ).stdout.strip()


def check_baked_project(project: Path, mypy_cache: Path, *pytest_args: str) -> str:
    """Run the baked project's tests (all, or those ``pytest_args`` select), ruff and mypy on
    its sources; return pytest's output."""
    source = {"PYTHONPATH": str(project / "src"), "MYPYPATH": str(project / "src")}
    pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *pytest_args]
    tests = run(pytest, project, **source)
    run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], project)
    run([sys.executable, "-m", "ruff", "format", "--check", "--no-cache", "."], project)
    run([sys.executable, "-m", "mypy", "--cache-dir", str(mypy_cache)], project, **source)
    return tests.stdout


def answers_of(project: Path) -> dict[str, Any]:
    """The answers recorded in the baked project (for cruft, in ``.cruft.json``)."""
    state = json.loads((project / ".cruft.json").read_text("utf-8"))
    answers: dict[str, Any] = state["context"]["cookiecutter"]
    return answers


@pytest.fixture(scope="session")
def mypy_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One mypy cache for every baked project: torch and transformers are analysed once."""
    return tmp_path_factory.mktemp("mypy-cache")


def is_stand_in(module: Path) -> bool:
    """Whether ``module`` is the stand-in for a capability answered "no" (its first line says)."""
    return "stand-in" in module.read_text("utf-8").splitlines()[0]
