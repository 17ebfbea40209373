"""The real post-generation verification hook, end to end."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import Bake


@pytest.mark.slow
def test_verification_installs_tests_and_lints_the_new_project(
    bake: Bake, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AUTOGEN_HF_CLIENT_SKIP_VERIFY")
    project = bake(verify_generated_project=True)
    out = capfd.readouterr().out
    assert "VERIFIED" in out, out
    for step in [
        "create environment",
        "install project",
        "tests (pytest)",
        "lint (ruff check)",
        "types (mypy --strict)",
    ]:
        assert f"[verify] {step}" in out
    assert "reusing torch" in out, "the installed torch should be shared, not downloaded"
    assert (project / ".venv").is_dir()


@pytest.mark.slow
def test_failed_verification_keeps_the_project_and_says_how_to_rerun(
    bake: Bake, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.delenv("AUTOGEN_HF_CLIENT_SKIP_VERIFY")
    impossible = tmp_path / "impossible.txt"
    impossible.write_text("pydantic<0.0.1\n")
    monkeypatch.setenv("PIP_CONSTRAINT", str(impossible))
    project = bake(verify_generated_project=True)
    out = capfd.readouterr().out
    assert "VERIFICATION FAILED at step 'install project'" in out
    assert f"The project was generated and kept at: {project}" in out
    assert str(impossible) in out  # the re-run command carries the same constraint
    assert (project / "pyproject.toml").is_file()
    assert (project / "src").is_dir()


def test_verification_answer_no_skips_it(
    bake: Bake, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AUTOGEN_HF_CLIENT_SKIP_VERIFY")  # the answer alone must skip it
    project = bake(verify_generated_project=False)
    assert "[verify] skipped: verify_generated_project is no." in capfd.readouterr().out
    assert not (project / ".venv").exists()
