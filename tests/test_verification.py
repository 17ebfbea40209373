"""The real post-generation verification hook, end to end."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from conftest import Bake, load_hook

post = load_hook("post_gen_project")


@pytest.mark.slow
def test_verification_installs_tests_and_lints_the_new_project(
    bake: Bake, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AUTOGEN_HF_CLIENT_SKIP_VERIFY")
    project = bake(verify_generated_project=True)
    out = capfd.readouterr().out
    assert "VERIFIED" in out, out
    for step in post.verification_steps(project, os.environ, None):
        assert f"[verify] {step.name} ... ok (" in out
    assert len(out.splitlines()) < 30, "tool output belongs in the log, not on the console"
    log = (project / post.LOG_NAME).read_text("utf-8")
    assert " passed" in log
    assert "Success: no issues found" in log
    # The project's own torch (no link to this environment's), and the CPU build.
    where = "import torch; print(torch.__file__, torch.version.cuda)"
    found = subprocess.run(
        [str(post.venv_python(project)), "-c", where], capture_output=True, text=True, check=True
    ).stdout.split()
    assert Path(found[0]).resolve().is_relative_to((project / ".venv").resolve())
    assert found[1] == "None"


@pytest.mark.slow
def test_failed_verification_keeps_the_project_and_says_how_to_rerun(
    bake: Bake, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.delenv("AUTOGEN_HF_CLIENT_SKIP_VERIFY")
    impossible = tmp_path / "impossible.txt"
    impossible.write_text("torch==2.13.0\npydantic<0.0.1\n")
    monkeypatch.setenv("PIP_CONSTRAINT", str(impossible))
    project = bake(verify_generated_project=True)
    out = capfd.readouterr().out
    assert "VERIFICATION FAILED at step 'install project'" in out
    assert "pydantic" in out  # pip's own words, from the failed step's output
    assert f"The project was generated and kept at: {project}" in out
    assert f"Full output of every step: {project / post.LOG_NAME}" in out
    assert str(impossible) in out  # the re-run command carries the same constraint
    assert (project / "pyproject.toml").is_file()
    assert (project / "src").is_dir()


@pytest.mark.slow
def test_an_unreachable_torch_index_fails_fast_saying_what_to_do(
    bake: Bake, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AUTOGEN_HF_CLIENT_SKIP_VERIFY")
    monkeypatch.setenv(post.TORCH_VARIABLE, "http://127.0.0.1:9/whl/cpu")
    bake(verify_generated_project=True)
    out = capfd.readouterr().out
    assert "VERIFICATION FAILED at step 'install torch (from http://127.0.0.1:9/whl/cpu)'" in out
    assert "http://127.0.0.1:9/whl/cpu does not answer" in out
    assert f"set {post.TORCH_VARIABLE} to a mirror of it (a URL), or to 'index'" in out


def test_verification_answer_no_skips_it(
    bake: Bake, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AUTOGEN_HF_CLIENT_SKIP_VERIFY")  # the answer alone must skip it
    project = bake(verify_generated_project=False)
    assert "[verify] skipped: verify_generated_project is no." in capfd.readouterr().out
    assert not (project / ".venv").exists()
