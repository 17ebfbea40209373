"""The hooks' logic, unit by unit, and the filters that render answers."""

from __future__ import annotations

import ast
import importlib.util
import sys
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

import local_extensions
from conftest import TEMPLATE


def load_hook(name: str) -> ModuleType:
    """Import a hook file as a module (its Jinja line only runs under ``__main__``)."""
    spec = importlib.util.spec_from_file_location(name, TEMPLATE / "hooks" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


pre = load_hook("pre_gen_project")
post = load_hook("post_gen_project")

GOOD: dict[str, Any] = {
    "project_name": "Good",
    "project_slug": "good",
    "package_name": "good",
    "client_class_name": "GoodClient",
    "model_name": "org/model",
    "model_family": "unknown",
    "vision": False,
    "function_calling": True,
    "json_output": True,
    "structured_output": True,
    "author_name": "A",
    "author_email": "a@example.com",
    "license": "MIT",
    "min_python_version": "3.10",
    "verify_generated_project": True,
}


def test_good_answers_pass() -> None:
    assert pre.check_answers(GOOD) == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("vision", "yes"),
        ("license", "GPL"),
        ("min_python_version", "2.7"),
        ("project_name", "bad\x00name"),
        ("author_name", "lone \ud800 surrogate"),
        ("package_name", "Tokenizers"),
        ("package_name", "tests"),
    ],
)
def test_each_rule_names_its_field(field: str, value: Any) -> None:
    problems = pre.check_answers({**GOOD, field: value})
    assert len(problems) == 1
    assert problems[0].startswith(field)


def test_main_prints_one_line_per_problem(capsys: pytest.CaptureFixture[str]) -> None:
    assert pre.main({**GOOD, "package_name": "os", "client_class_name": "a b"}) == 1
    assert len(capsys.readouterr().err.strip().splitlines()) == 2
    assert pre.main(GOOD) == 0


def test_unselected_capability_files_are_listed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(post, "OPTIONAL_FILES", {"vision": ["{package}/_vision.py"]})
    monkeypatch.setattr(post, "DISABLED_FILES", {"vision": ["tests/test_vision_disabled.py"]})
    monkeypatch.setattr(post, "STAND_INS", {"vision": {"{package}/_no_vision.py": "x"}})
    monkeypatch.setattr(post, "SHARED_FILES", {"{package}/_shared.py": ["vision", "json_output"]})
    assert post.unselected_files({**GOOD, "vision": False}) == ["src/good/_vision.py"]
    assert post.unselected_files({**GOOD, "vision": True}) == [
        "tests/test_vision_disabled.py",
        "src/good/_no_vision.py",
    ]
    neither = {**GOOD, "vision": False, "json_output": False}
    assert post.unselected_files(neither) == ["src/good/_vision.py", "src/good/_shared.py"]


def test_stand_ins_take_the_place_of_unchosen_modules(tmp_path: Path) -> None:
    package = tmp_path / "src/good"
    package.mkdir(parents=True)
    for name in ("_tools.py", "_no_tools.py", "_vision.py", "_no_vision.py"):
        (package / name).write_text(f"# {name}\n", "utf-8")
    answers = {**GOOD, "function_calling": False, "vision": True}
    post.apply_capability_answers(tmp_path, answers)
    assert (package / "_tools.py").read_text("utf-8") == "# _no_tools.py\n"
    assert (package / "_vision.py").read_text("utf-8") == "# _vision.py\n"
    assert not (package / "_no_tools.py").exists()
    assert not (package / "_no_vision.py").exists()


def test_recorded_answers_leave_out_machine_paths(tmp_path: Path) -> None:
    post.record_answers(tmp_path, {**GOOD, "_output_dir": "/home/me", "_template": "gh:org/t"})
    recorded = (tmp_path / ".cookiecutter.json").read_text("utf-8")
    assert "/home/me" not in recorded
    assert '"_template": "gh:org/t"' in recorded


def test_verification_can_be_turned_off() -> None:
    assert post.verification_wanted(GOOD, {}) is None
    assert post.verification_wanted({**GOOD, "verify_generated_project": False}, {})
    assert post.verification_wanted(GOOD, {post.SKIP_VARIABLE: "1"})
    assert post.verification_wanted(GOOD, {post.SKIP_VARIABLE: "0"}) is None


def test_pip_install_honours_constraints_and_pins_a_shared_torch(tmp_path: Path) -> None:
    torch = post.TorchInstall("2.13.0+cpu", tmp_path, ["torch"])
    step = post.install_step(tmp_path, {"PIP_CONSTRAINT": "a.txt b.txt"}, None, torch)
    assert step.command[1:5] == ["-m", "pip", "install", "--no-input"]
    constraints = [
        step.command[i + 1] for i, part in enumerate(step.command) if part == "--constraint"
    ]
    assert constraints == ["a.txt", "b.txt", str(post.torch_constraint_file(tmp_path))]


def test_uv_install_is_handed_pip_settings(tmp_path: Path) -> None:
    step = post.install_step(
        tmp_path, {"PIP_CONSTRAINT": "c.txt", "PIP_FIND_LINKS": "/opt/wheels"}, "/bin/uv", None
    )
    assert step.command[:3] == ["/bin/uv", "pip", "install"]
    assert step.command[step.command.index("--find-links") + 1] == "/opt/wheels"
    assert step.command[step.command.index("--constraint") + 1] == "c.txt"
    assert post.create_step("/bin/uv").command[:2] == ["/bin/uv", "venv"]
    assert post.create_step(None).command[1:3] == ["-m", "venv"]


def test_installed_torch_is_found_with_its_files() -> None:
    torch = post.installed_torch()
    assert torch is not None
    assert "torch" in torch.top_level
    assert (torch.site_packages / "torch" / "__init__.py").is_file()


def test_shared_torch_is_visible_in_the_new_environment(tmp_path: Path) -> None:
    torch = post.installed_torch()
    assert torch is not None
    assert post.run_step(post.create_step(None), tmp_path) == 0
    assert post.share_torch(tmp_path, torch)
    python = post.venv_python(tmp_path)
    import subprocess

    found = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('torch'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert found == torch.version
    leaked = subprocess.run(
        [str(python), "-c", "import cookiecutter"], capture_output=True, text=True
    )
    assert leaked.returncode != 0, "only torch may be shared, not the rest of the environment"


def test_failed_step_stops_the_run_and_keeps_the_project(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "keep.txt").write_text("kept")
    seen: list[str] = []

    def runner(step: Any, project: Path) -> int:
        seen.append(step.name)
        return 1 if step.name.startswith("tests") else 0

    assert post.verify(tmp_path, {}, runner=runner) is False
    out = capsys.readouterr().out
    assert seen[-1].startswith("tests")
    assert not any(name.startswith("lint") for name in seen)
    assert "VERIFICATION FAILED at step 'tests (pytest)'" in out
    assert f"cd {tmp_path} && " in out
    assert "-m pytest -q" in out
    assert (tmp_path / "keep.txt").read_text() == "kept"


def test_successful_run_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert post.verify(tmp_path, {}, runner=lambda step, project: 0) is True
    out = capsys.readouterr().out
    assert "VERIFIED" in out
    assert "install project: ok" in out


def test_step_that_cannot_start_is_a_failure(tmp_path: Path) -> None:
    assert post.run_step(post.Step("missing", ["/no/such/program"]), tmp_path) == 127


def test_step_shell_quotes_for_rerunning(tmp_path: Path) -> None:
    step = post.Step("x", ["python", "-c", "print('hi there')"], {"A": "b c"})
    assert step.shell(tmp_path).endswith("A='b c' python -c 'print('\"'\"'hi there'\"'\"')'")


TEXTS = ["plain", "q\"uo'te", "back\\slash", "new\nline\ttab", "ünï 日本 🙂", "\x00\x7f\x85\u2028"]


@pytest.mark.parametrize("text", TEXTS)
def test_quoted_strings_are_valid_python_toml_and_yaml(text: str) -> None:
    assert ast.literal_eval(local_extensions.python_literal(text)) == text
    assert tomllib.loads(f"x = {local_extensions.quoted_string(text)}")["x"] == text
    assert yaml.safe_load(f"x: {local_extensions.quoted_string(text)}")["x"] == text


def test_python_literal_renders_booleans_and_refuses_other_types() -> None:
    assert local_extensions.python_literal(True) == "True"
    assert local_extensions.python_literal(None) == "None"
    with pytest.raises(TypeError):
        local_extensions.python_literal(["list"])


def test_an_error_during_verification_keeps_the_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AUTOGEN_HF_CLIENT_SKIP_VERIFY", raising=False)
    monkeypatch.setattr(post, "apply_capability_answers", lambda *args: None)
    monkeypatch.setattr(post, "tidy", lambda *args: True)

    def broken(*args: Any, **kwargs: Any) -> bool:
        raise OSError("disk full")

    monkeypatch.setattr(post, "verify", broken)
    assert post.main({**GOOD, "verify_generated_project": True}, tmp_path) == 0
    assert "VERIFICATION FAILED: OSError: disk full" in capsys.readouterr().out


def test_verification_runs_tests_offline_without_hub_tests(tmp_path: Path) -> None:
    steps = {step.name: step for step in post.check_steps(tmp_path, tidy=False)}
    assert steps["tests (pytest)"].env["HF_HUB_OFFLINE"] == "1"
    assert steps["tests (pytest)"].env["RUN_HUB_TESTS"] == "0"


def test_verification_is_skipped_on_a_python_older_than_the_project_needs() -> None:
    env: dict[str, str] = {}
    newer = f"{sys.version_info.major}.{sys.version_info.minor + 1}"
    reason = post.verification_wanted({**GOOD, "min_python_version": newer}, env)
    assert reason is not None
    assert f"Python >= {newer}" in reason
    current = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert post.verification_wanted({**GOOD, "min_python_version": current}, env) is None
