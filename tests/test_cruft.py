"""Every bake is linked for cruft: nothing differs right after, and template changes apply."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cookiecutter.main import cookiecutter

from conftest import TEMPLATE, answers_of, git_commit

README = "{{cookiecutter.project_slug}}/README.md"


@pytest.fixture
def template_repository(tmp_path: Path) -> Path:
    """A git repository holding the template's files as they are now (changes included)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=TEMPLATE,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split("\0")
    repository = tmp_path / "template"
    for relative in filter(None, listed):
        source = TEMPLATE / relative
        if source.is_file():
            (repository / relative).parent.mkdir(parents=True, exist_ok=True)
            (repository / relative).write_bytes(source.read_bytes())
    git_commit(repository, "the template")
    return repository


def _cruft(project: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cruft", *arguments],
        cwd=project,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
    )


def test_a_bake_is_linked_and_cruft_sees_no_difference(
    template_repository: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(template_repository.parent)  # the template given by a relative path
    project = Path(cookiecutter("template", no_input=True, output_dir=str(tmp_path / "out")))
    state = json.loads((project / ".cruft.json").read_text("utf-8"))
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=template_repository, capture_output=True, text=True
    ).stdout.strip()
    assert Path(state["template"]).resolve() == template_repository.resolve()
    assert state["commit"] == head
    assert answers_of(project)["_commit"] == head
    assert answers_of(project)["package_name"] == "autogen_huggingface_client"
    assert not {"_output_dir", "_repo_dir"} & set(answers_of(project))

    diff = _cruft(project, "diff", "--exit-code")
    assert diff.returncode == 0, diff.stdout + diff.stderr
    assert diff.stdout == ""
    assert _cruft(project, "check").returncode == 0


def test_cruft_update_applies_a_template_change_without_verifying(
    template_repository: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = Path(
        cookiecutter(str(template_repository), no_input=True, output_dir=str(tmp_path / "out"))
    )
    git_commit(project, "baked")
    readme = template_repository / README
    readme.write_text(readme.read_text("utf-8") + "\nA line the template gained.\n", "utf-8")
    changed = git_commit(template_repository, "a template change")
    monkeypatch.delenv("AUTOGEN_HF_CLIENT_SKIP_VERIFY")  # the answers ask for verification

    update = _cruft(project, "update", "--skip-apply-ask")

    assert update.returncode == 0, update.stdout + update.stderr
    assert "A line the template gained." in (project / "README.md").read_text("utf-8")
    assert json.loads((project / ".cruft.json").read_text("utf-8"))["commit"] == changed
    assert "[verify] skipped: cruft is rendering the template." in update.stderr
    assert "[verify] create environment" not in update.stdout + update.stderr
    assert not (project / ".venv").exists()
    assert _cruft(project, "diff", "--exit-code").stdout == ""


def test_a_template_outside_git_is_baked_but_not_linked(
    template_repository: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    plain = tmp_path / "plain-copy"
    subprocess.run(["git", "clone", "-q", str(template_repository), str(plain)], check=True)
    shutil.rmtree(plain / ".git")
    project = Path(cookiecutter(str(plain), no_input=True, output_dir=str(tmp_path / "out")))
    assert (project / "pyproject.toml").is_file()
    assert not (project / ".cruft.json").exists()
    assert f"[cruft] not linked for cruft: the template at {plain} is not a git checkout" in (
        capfd.readouterr().out
    )
