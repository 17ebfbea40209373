"""The hooks' logic, unit by unit, and the filters that render answers."""

from __future__ import annotations

import ast
import re
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

import local_extensions
from conftest import TEMPLATE, git_commit, load_hook

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
    "agent_framework": False,
    "agent_framework_client_class_name": "GoodChatClient",
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


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        ({"agent_framework_client_class_name": "GoodClient"}, "is the AutoGen client's name"),
        ({"agent_framework_client_class_name": "Chat Client"}, "not a valid ASCII Python"),
        ({"agent_framework_client_class_name": "Message"}, "already uses"),
        ({"min_python_version": "3.10"}, "needs min_python_version 3.11"),
    ],
)
def test_agent_framework_answers_are_checked_only_when_it_is_chosen(
    answers: dict[str, Any], expected: str
) -> None:
    chosen = {**GOOD, "agent_framework": True, "min_python_version": "3.11", **answers}
    problems = pre.check_answers(chosen)
    assert len(problems) == 1
    assert expected in problems[0]
    assert pre.check_answers({**chosen, "agent_framework": False}) == []


def test_main_prints_one_line_per_problem(capsys: pytest.CaptureFixture[str]) -> None:
    hooks = str(TEMPLATE / "hooks")
    assert pre.main({**GOOD, "package_name": "os", "client_class_name": "a b"}, hooks) == 1
    assert len(capsys.readouterr().err.strip().splitlines()) == 2
    assert pre.main(GOOD, hooks) == 0


def test_tidy_is_quiet_without_ruff_when_verification_tidies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(post, "available_ruff", lambda: None)
    assert post.tidy(tmp_path, quiet=True) is False
    assert capsys.readouterr().err == ""
    assert post.tidy(tmp_path) is False
    assert "[tidy] no ruff here" in capsys.readouterr().err


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
    package = tmp_path / "src/good/_core"
    package.mkdir(parents=True)
    for name in ("_tools.py", "_no_tools.py", "_vision.py", "_no_vision.py"):
        (package / name).write_text(f"# {name}\n", "utf-8")
    answers = {**GOOD, "function_calling": False, "vision": True}
    post.apply_capability_answers(tmp_path, answers)
    assert (package / "_tools.py").read_text("utf-8") == "# _no_tools.py\n"
    assert (package / "_vision.py").read_text("utf-8") == "# _vision.py\n"
    assert not (package / "_no_tools.py").exists()
    assert not (package / "_no_vision.py").exists()


def test_verification_can_be_turned_off() -> None:
    assert post.verification_wanted(GOOD, {}) is None
    assert post.verification_wanted({**GOOD, "verify_generated_project": False}, {})
    assert post.verification_wanted(GOOD, {post.SKIP_VARIABLE: "1"})
    assert post.verification_wanted(GOOD, {post.SKIP_VARIABLE: "0"}) is None


def test_failed_step_stops_the_run_keeps_the_project_and_points_at_the_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "keep.txt").write_text("kept")
    seen: list[str] = []

    def runner(step: Any, project: Path, log: Path) -> int:
        seen.append(step.name)
        with log.open("a") as output:
            output.write(f"output of {step.name}\n")
        return 1 if step.name.startswith("tests") else 0

    assert post.verify(tmp_path, {}, runner=runner) is False
    out = capsys.readouterr().out
    assert any(name.startswith("tests") for name in seen)
    assert not any(name.startswith("lint") for name in seen)
    assert "VERIFICATION FAILED at step 'tests (pytest)'" in out
    assert "    output of tests (pytest)" in out  # the failed step's own output, not earlier ones
    assert "    output of install project" not in out
    assert f"Full output of every step: {tmp_path / post.LOG_NAME}" in out
    assert f"cd {tmp_path} && " in out
    assert "-m pytest -q" in out
    assert (tmp_path / "keep.txt").read_text() == "kept"


def test_successful_run_says_so_one_line_per_step(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert post.verify(tmp_path, {}, runner=lambda step, project, log: 0) is True
    out = capsys.readouterr().out
    assert "VERIFIED" in out
    assert re.search(r"^\[verify\] install project \.\.\. ok \(\d+\.\d s\)$", out, re.MULTILINE)
    assert len(out.splitlines()) == len(post.verification_steps(tmp_path, {}, None)) + 5


def test_steps_write_their_output_to_the_log_not_the_console(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "log"
    log.write_text("")
    step = post.Step("talk", [sys.executable, "-c", "import sys; print('out'); sys.exit('err')"])
    assert post.run_step(step, tmp_path, log) == 1
    assert capfd.readouterr().out == ""
    assert log.read_text().splitlines()[-2:] == ["out", "err"]
    assert post.run_step(post.Step("missing", ["/no/such/program"]), tmp_path, log) == 127


def test_step_shell_quotes_for_rerunning(tmp_path: Path) -> None:
    step = post.Step("x", ["python", "-c", "print('hi there')"], {"A": "b c"})
    assert step.shell(tmp_path).endswith("A='b c' python -c 'print('\"'\"'hi there'\"'\"')'")


def test_torch_is_the_cpu_build_unless_the_user_says_where_it_comes_from() -> None:
    default = post.torch_source({})
    assert default.index == "https://download.pytorch.org/whl/cpu"
    assert default.backend == "cpu"
    for setting in post.TORCH_SOURCES:
        given = post.torch_source({setting: "x"})
        assert given.index is None, setting
        assert given.backend is None, setting
        assert setting in given.description
    assert post.torch_source({"PIP_FIND_LINKS": "/w", "UV_FIND_LINKS": "/w"}) == default
    cuda = post.torch_source({post.TORCH_VARIABLE: "cu128", "PIP_CONSTRAINT": "c.txt"})
    assert cuda.index == "https://download.pytorch.org/whl/cu128"
    assert cuda.backend == "cu128"
    mirror = post.torch_source({post.TORCH_VARIABLE: "https://mirror.example/torch-cpu"})
    assert (mirror.index, mirror.backend) == ("https://mirror.example/torch-cpu", None)
    assert post.torch_source({post.TORCH_VARIABLE: "index"}).index is None


def test_pip_takes_the_cpu_index_as_an_extra_index_for_torch_only(tmp_path: Path) -> None:
    torch, project = post.verification_steps(tmp_path, {"PIP_CONSTRAINT": ""}, None)[1:3]
    python = str(post.venv_python(tmp_path))
    assert torch.command == [
        python, "-m", "pip", "install", "--no-input", "--no-compile", post.TORCH_REQUIREMENT,
        "--extra-index-url", "https://download.pytorch.org/whl/cpu",
    ]  # fmt: skip
    assert torch.index == "https://download.pytorch.org/whl/cpu"
    assert "download.pytorch.org" in torch.hint
    pip = [python, "-m", "pip", "install", "--no-input", "--no-compile"]
    assert project.command == [*pip, "-e", ".[dev]"]
    assert project.index is None
    given = post.verification_steps(tmp_path, {"PIP_CONSTRAINT": "c.txt", "HOME": "/h"}, None)
    for step in given[1:3]:  # the command that re-runs the step carries pip's settings
        assert step.env == {"PIP_CONSTRAINT": "c.txt"}
        assert "PIP_CONSTRAINT=c.txt " in step.shell(tmp_path)


def test_uv_is_handed_pip_settings_and_chooses_torch_by_backend(tmp_path: Path) -> None:
    env = {"PIP_CONSTRAINT": "c.txt", "PIP_FIND_LINKS": "/opt/wheels /more"}
    create, torch, project = post.verification_steps(tmp_path, env, "/bin/uv")[:3]
    assert create.command[:2] == ["/bin/uv", "venv"]
    handed = ["--find-links", "/opt/wheels", "--find-links", "/more", "--constraint", "c.txt"]
    assert torch.command[:3] == ["/bin/uv", "pip", "install"]
    assert torch.command[5:] == [*handed, post.TORCH_REQUIREMENT]  # no backend: settings given
    assert project.command[5:] == [*handed, "--no-sources", "-e", ".[dev]"]
    default = post.verification_steps(tmp_path, {}, "/bin/uv")[1]
    assert default.command[-2:] == ["--torch-backend", "cpu"]
    assert post.create_step(None).command[1:3] == ["-m", "venv"]


def test_an_unreachable_torch_index_fails_the_step_at_once(tmp_path: Path) -> None:
    assert post.unreachable("http://127.0.0.1:9/whl/cpu", timeout=5) is not None
    assert post.unreachable("file:///opt/wheels") is None
    log = tmp_path / "log"
    log.write_text("")
    marker = tmp_path / "ran"
    step = post.Step("t", ["touch", str(marker)], index="http://127.0.0.1:9/whl/cpu")
    started = time.monotonic()
    assert post.run_step(step, tmp_path, log) == 1
    assert time.monotonic() - started < post.PROBE_TIMEOUT_SECONDS
    assert not marker.exists()
    assert "http://127.0.0.1:9/whl/cpu does not answer" in log.read_text()


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


@pytest.fixture
def main_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """The post-generation hook's main() with verification wanted and the file work left out."""
    monkeypatch.delenv("AUTOGEN_HF_CLIENT_SKIP_VERIFY", raising=False)
    monkeypatch.setattr(post, "apply_capability_answers", lambda *args: None)
    monkeypatch.setattr(post, "tidy", lambda *args, **kwargs: True)


@pytest.mark.usefixtures("main_alone")
def test_an_error_during_verification_keeps_the_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(post, "link_for_cruft", lambda *args: "not linked")

    def broken(*args: Any, **kwargs: Any) -> bool:
        raise OSError("disk full")

    monkeypatch.setattr(post, "verify", broken)
    assert post.main({**GOOD, "verify_generated_project": True}, tmp_path, tmp_path) == 0
    assert "VERIFICATION FAILED: OSError: disk full" in capsys.readouterr().out


@pytest.mark.usefixtures("main_alone")
def test_a_failure_to_link_keeps_the_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*args: Any) -> str:
        raise ValueError("bad cookiecutter config")

    monkeypatch.setattr(post, "link_for_cruft", broken)
    answers = {**GOOD, "verify_generated_project": False}
    assert post.main(answers, tmp_path, tmp_path) == 0
    out = capsys.readouterr().out
    assert "[cruft] not linked for cruft: ValueError: bad cookiecutter config" in out
    assert "[verify] skipped: verify_generated_project is no." in out


@pytest.mark.usefixtures("main_alone")
def test_cruft_renders_are_neither_linked_nor_verified(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def must_not_run(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("cruft's renders must not be linked or verified")

    monkeypatch.setattr(post, "verify", must_not_run)
    monkeypatch.setattr(post, "link_for_cruft", must_not_run)
    answers = {**GOOD, "verify_generated_project": True, "_commit": "0" * 40}
    assert post.main(answers, tmp_path, tmp_path) == 0
    captured = capsys.readouterr()
    assert captured.out == ""  # cruft diff prints the diff on standard output
    assert "[verify] skipped: cruft is rendering the template." in captured.err


def _git_checkout(path: Path) -> str:
    """Make ``path`` a git repository with one commit; return the commit."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "cookiecutter.json").write_text("{}")
    return git_commit(path, "template")


def test_cruft_state_is_what_cruft_create_records(tmp_path: Path) -> None:
    commit = _git_checkout(tmp_path / "template")
    answers = {**GOOD, "_template": ".", "_output_dir": "/out", "_repo_dir": ".", "_checkout": None}
    state = post.cruft_state(answers, tmp_path / "template")
    assert state == {
        "template": str((tmp_path / "template").resolve()),
        "commit": commit,
        "checkout": None,
        "context": {
            "cookiecutter": {
                **GOOD,
                "_template": str((tmp_path / "template").resolve()),
                "_commit": commit,
            }
        },
        "directory": None,
    }
    nested = post.cruft_state(answers, _subfolder(tmp_path / "template"))
    assert nested is not None
    assert nested["directory"] == "sub"
    assert nested["template"] == str((tmp_path / "template").resolve())


def _subfolder(checkout: Path) -> Path:
    (checkout / "sub").mkdir()
    return checkout / "sub"


def test_a_template_from_a_url_is_recorded_by_its_url(tmp_path: Path) -> None:
    _git_checkout(tmp_path / "clone")
    answers = {**GOOD, "_template": "gh:someone/some-template"}
    state = post.cruft_state(answers, tmp_path / "clone")
    assert state is not None
    assert state["template"] == "https://github.com/someone/some-template.git"


def test_a_template_outside_git_is_not_linked(tmp_path: Path) -> None:
    line = post.link_for_cruft(tmp_path, {**GOOD, "_template": str(tmp_path)}, tmp_path)
    assert line.startswith("not linked for cruft: the template at")
    assert not (tmp_path / ".cruft.json").exists()


def test_verification_runs_tests_offline_without_hub_tests(tmp_path: Path) -> None:
    steps = {step.name: step for step in post.check_steps(tmp_path)}
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


def test_every_class_the_client_module_imports_is_refused_as_the_class_name(
    tmp_path: Path,
) -> None:
    """A client class named like something a front's ``_client.py`` imports would clobber it."""
    from cookiecutter.main import cookiecutter

    project = Path(
        cookiecutter(
            str(TEMPLATE),
            no_input=True,
            output_dir=str(tmp_path),
            extra_context={"agent_framework": True, "min_python_version": "3.11"},
        )
    )
    package = project / "src" / "autogen_huggingface_client"
    imported = {
        alias.asname or alias.name
        for front in ("_autogen", "_agent_framework")
        for node in ast.parse((package / front / "_client.py").read_text("utf-8")).body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    class_like = sorted(name for name in imported if name[:1].isupper())
    assert class_like
    assert [name for name in class_like if pre.check_class_name(name) is None] == []


def test_mypy_runs_alongside_the_tests_and_its_failure_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    steps = post.check_steps(tmp_path)
    assert [step.name for step in steps if step.alongside] == ["types (mypy --strict)"]

    def runner(step: Any, project: Path, log: Path) -> int:
        with log.open("a") as output:
            output.write(f"output of {step.name}\n")
        return 1 if step.alongside else 0

    log = tmp_path / "verification.log"
    log.write_text("")
    failed = post.run_steps(steps, tmp_path, log, runner)
    assert failed is not None
    assert failed.name == "types (mypy --strict)"
    out = capsys.readouterr().out.splitlines()
    assert out[-2].startswith("[verify] types (mypy --strict) ... FAILED (exit code 1")
    assert out[-1] == "    output of types (mypy --strict)"
    assert "output of types (mypy --strict)" in log.read_text()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["verification.log"]


def test_the_attribute_guard_keeps_data_and_refuses_internals() -> None:
    from jinja2 import Environment, StrictUndefined, UndefinedError

    env = Environment(undefined=StrictUndefined)
    local_extensions.guard_attributes(env)
    answers = {"_template": "gh:o/r", "name": "x"}
    assert (
        env.from_string("{{ c._template }}/{{ c['_template'] }}/{{ c.name }}").render(c=answers)
        == "gh:o/r/gh:o/r/x"
    )
    for source in ("{{ c.__class__ }}", "{{ c['__class__'] }}", "{{ (c|attr('__class__')) }}"):
        with pytest.raises(UndefinedError, match="answers are data, not code"):
            env.from_string(source).render(c=answers)
