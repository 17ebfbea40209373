"""Finish the new project: drop what was answered "no", then verify that it works.

Verification creates ``.venv`` in the project (uv when present, else venv and pip), installs
the project with its development extras, formats it with ruff, and runs its tests, ruff and
mypy. It never downloads a model, never waits for input, and honours pip's constraint and
find-links settings from the environment. When the Python that runs cookiecutter already has
torch, the new environment reuses it instead of downloading it again.

This hook always exits 0: a failing hook makes cookiecutter delete the project. A failed
verification is reported instead, with the command to re-run. Set
``AUTOGEN_HF_CLIENT_SKIP_VERIFY=1`` (or answer no to ``verify_generated_project``) to skip it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

SKIP_VARIABLE = "AUTOGEN_HF_CLIENT_SKIP_VERIFY"
MIN_TORCH = (2, 4)
STEP_TIMEOUT_SECONDS = 45 * 60
BANNER = "=" * 72

# Files that exist only when a capability was answered "yes" ({package} is the package dir).
OPTIONAL_FILES: dict[str, list[str]] = {
    "vision": [
        "{package}/_vision.py",
        "{package}/_vision_chat.py",
        "tests/test_vision.py",
        "tests/tiny_vision_models.py",
        "tests/chat_templates/vision_chatml.jinja",
        "tests/chat_templates/vision_rejects_system.jinja",
    ],
    "function_calling": [
        "{package}/_tool_format.py",
        "{package}/_tool_parsers.py",
        "{package}/_tools.py",
        "benchmarks/bench_tools.py",
        "tests/chat_templates/gemma4_tools.jinja",
        "tests/chat_templates/glm_tools.jinja",
        "tests/chat_templates/llama3_tools.jinja",
        "tests/chat_templates/mistral_tools.jinja",
        "tests/chat_templates/mistral_v11_tools.jinja",
        "tests/chat_templates/mistral_v13_tools.jinja",
        "tests/chat_templates/no_tools.jinja",
        "tests/chat_templates/qwen3_coder_tools.jinja",
        "tests/test_tool_format.py",
        "tests/test_tools.py",
        "tests/tool_templates.py",
    ],
    "json_output": [
        "{package}/_json_output.py",
        "{package}/_schema.py",
        "tests/test_json_output.py",
        "tests/test_schema.py",
        "tests/schema_models.py",
        "benchmarks/bench_json.py",
    ],
    "structured_output": ["tests/test_structured_output.py"],
}
# Files that several capabilities use: they exist when any of these was answered "yes".
SHARED_FILES: dict[str, list[str]] = {
    "{package}/_constrained.py": ["function_calling", "json_output"],
}
# Files that exist only when a capability was answered "no".
DISABLED_FILES: dict[str, list[str]] = {
    "vision": [],
    "function_calling": ["tests/test_tools_disabled.py"],
    "json_output": ["tests/test_json_output_disabled.py"],
    "structured_output": ["tests/test_structured_output_disabled.py"],
}


# Modules that take an optional module's place when its capability was answered "no". They
# have the same interface and refuse the capability clearly, so the client imports the same
# names either way and holds no template conditionals.
STAND_INS: dict[str, dict[str, str]] = {
    "vision": {"{package}/_no_vision.py": "{package}/_vision.py"},
    "function_calling": {"{package}/_no_tools.py": "{package}/_tools.py"},
    "json_output": {"{package}/_no_json_output.py": "{package}/_json_output.py"},
}


def _package(answers: Mapping[str, Any]) -> str:
    return f"src/{answers['package_name']}"


def unselected_files(answers: Mapping[str, Any]) -> list[str]:
    """Relative paths to delete for these answers (stand-ins of chosen capabilities too)."""
    package = _package(answers)
    paths: list[str] = []
    for capability in OPTIONAL_FILES:
        chosen = OPTIONAL_FILES if not answers[capability] else DISABLED_FILES
        paths.extend(path.format(package=package) for path in chosen[capability])
        if answers[capability]:
            paths.extend(path.format(package=package) for path in STAND_INS.get(capability, {}))
    paths.extend(
        path.format(package=package)
        for path, capabilities in SHARED_FILES.items()
        if not any(answers[capability] for capability in capabilities)
    )
    return paths


def stand_in_moves(answers: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(stand-in, the module it replaces) for each capability answered "no"."""
    package = _package(answers)
    return [
        (source.format(package=package), target.format(package=package))
        for capability, moves in STAND_INS.items()
        if not answers[capability]
        for source, target in moves.items()
    ]


def apply_capability_answers(project: Path, answers: Mapping[str, Any]) -> None:
    """Delete the files of capabilities not chosen, and move their stand-ins into place."""
    for relative in unselected_files(answers):
        (project / relative).unlink(missing_ok=True)
    for source, target in stand_in_moves(answers):
        (project / source).replace(project / target)


@dataclass
class Step:
    """One verification command."""

    name: str
    command: list[str]
    env: dict[str, str] = field(default_factory=dict)

    def shell(self, project: Path) -> str:
        """The command as a user would type it to re-run this step."""
        assignments = [f"{key}={shlex.quote(value)}" for key, value in self.env.items()]
        return f"cd {shlex.quote(str(project))} && " + " ".join(
            [*assignments, *(shlex.quote(part) for part in self.command)]
        )


@dataclass
class TorchInstall:
    """A torch already installed for the Python running this hook."""

    version: str
    site_packages: Path
    top_level: list[str]


def installed_torch() -> TorchInstall | None:
    """The torch next to this Python, if it is recent enough for the generated project."""
    try:
        distribution = metadata.distribution("torch")
    except metadata.PackageNotFoundError:
        return None
    version = distribution.version
    try:
        major, minor = (int(part) for part in version.split(".")[:2])
    except ValueError:
        return None
    if (major, minor) < MIN_TORCH:
        return None
    top_level = sorted(
        {
            Path(str(file)).parts[0]
            for file in distribution.files or []
            if not str(file).startswith("..") and Path(str(file)).parts
        }
    )
    if "torch" not in top_level:  # no file record (some conda or distro builds): cannot link
        return None
    return TorchInstall(version, Path(str(distribution.locate_file(""))), top_level)


def venv_python(project: Path) -> Path:
    """The interpreter of the project's ``.venv``."""
    if os.name == "nt":
        return project / ".venv" / "Scripts" / "python.exe"
    return project / ".venv" / "bin" / "python"


def share_torch(project: Path, torch: TorchInstall) -> bool:
    """Make the new environment see the installed torch through links and a ``.pth`` file.

    Only torch's own files are linked, so nothing else leaks from the outer environment.
    Returns False (and changes nothing that matters) where links cannot be made.
    """
    links = project / ".venv" / "shared-torch"
    try:
        links.mkdir(parents=True, exist_ok=True)
        for name in torch.top_level:
            target = links / name
            if not target.exists():
                target.symlink_to(
                    torch.site_packages / name,
                    target_is_directory=(torch.site_packages / name).is_dir(),
                )
    except OSError:
        shutil.rmtree(links, ignore_errors=True)
        return False
    purelib = subprocess.run(
        [
            str(venv_python(project)),
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        ],
        capture_output=True,
        text=True,
        check=True,
        stdin=subprocess.DEVNULL,
    ).stdout.strip()
    Path(purelib, "_shared_torch.pth").write_text(f"{links}\n", encoding="utf-8")
    return True


def _split_setting(value: str | None) -> list[str]:
    return value.split() if value else []


def create_step(uv: str | None) -> Step:
    """The command that creates ``.venv`` with the Python running this hook."""
    if uv:
        return Step("create environment (uv)", [uv, "venv", "--python", sys.executable, ".venv"])
    return Step("create environment (venv)", [sys.executable, "-m", "venv", ".venv"])


def install_step(
    project: Path, env: Mapping[str, str], uv: str | None, torch: TorchInstall | None
) -> Step:
    """The command that installs the project with its development extras.

    pip reads ``PIP_CONSTRAINT`` and ``PIP_FIND_LINKS`` itself; uv is handed them as options.
    A shared torch is pinned by a constraint so that pip never replaces it.
    """
    python = str(venv_python(project))
    constraints = _split_setting(env.get("PIP_CONSTRAINT"))
    if uv:
        command = [uv, "pip", "install", "--python", python, "-e", ".[dev]"]
        for link in _split_setting(env.get("PIP_FIND_LINKS")):
            command += ["--find-links", link]
    else:
        command = [python, "-m", "pip", "install", "--no-input", "-e", ".[dev]"]
    if torch is not None:
        constraints.append(str(torch_constraint_file(project)))
    for constraint in constraints:
        command += ["--constraint", constraint]
    return Step("install project", command)


def torch_constraint_file(project: Path) -> Path:
    """Where the pin of a shared torch is written."""
    return project / ".venv" / "torch-constraint.txt"


def tidy_steps(ruff: list[str]) -> list[Step]:
    """Sort imports and format the code, with the ``ruff`` command given.

    Names chosen in the answers change line lengths and import order, so the generated code
    is tidied once after rendering.
    """
    return [
        Step(
            "tidy (ruff import sorting)",
            [*ruff, "check", "--fix", "--quiet", "--select", "I,RUF022", "."],
        ),
        Step("tidy (ruff format)", [*ruff, "format", "--quiet", "."]),
    ]


def available_ruff() -> list[str] | None:
    """A ruff command next to this Python or on PATH, if any."""
    if importlib.util.find_spec("ruff") is not None:
        return [sys.executable, "-m", "ruff"]
    found = shutil.which("ruff")
    return [found] if found else None


def check_steps(project: Path, *, tidy: bool) -> list[Step]:
    """The commands that test and lint the installed project (tidying it first if asked)."""
    python = str(venv_python(project))
    offline = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "RUN_HUB_TESTS": "0"}
    steps = tidy_steps([python, "-m", "ruff"]) if tidy else []
    return [
        *steps,
        Step("tests (pytest)", [python, "-m", "pytest", "-q"], offline),
        Step("lint (ruff check)", [python, "-m", "ruff", "check", "."]),
        Step("format (ruff format --check)", [python, "-m", "ruff", "format", "--check", "."]),
        Step("types (mypy --strict)", [python, "-m", "mypy"], offline),
    ]


Runner = Callable[[Step, Path], int]


def run_step(step: Step, project: Path) -> int:
    """Run one step in the project, output shown, input closed, with a time limit."""
    env = {**os.environ, "PIP_NO_INPUT": "1", **step.env}
    try:
        return subprocess.run(
            step.command,
            cwd=project,
            env=env,
            stdin=subprocess.DEVNULL,
            timeout=STEP_TIMEOUT_SECONDS,
        ).returncode
    except subprocess.TimeoutExpired:
        print(f"[verify] {step.name}: timed out after {STEP_TIMEOUT_SECONDS} s", flush=True)
        return 124
    except OSError as error:
        print(f"[verify] {step.name}: {error}", flush=True)
        return 127


def run_steps(steps: Sequence[Step], project: Path, runner: Runner = run_step) -> Step | None:
    """Run the steps in order, printing each with its time; return the one that failed."""
    for step in steps:
        print(f"[verify] {step.name} ...", flush=True)
        started = time.monotonic()
        code = runner(step, project)
        elapsed = time.monotonic() - started
        if code != 0:
            print(f"[verify] {step.name}: FAILED (exit code {code}, {elapsed:.1f} s)", flush=True)
            return step
        print(f"[verify] {step.name}: ok ({elapsed:.1f} s)", flush=True)
    return None


def verify(
    project: Path,
    env: Mapping[str, str],
    runner: Runner = run_step,
    uv: str | None = None,
    torch: TorchInstall | None = None,
) -> bool:
    """Create the environment, install, test and lint; report the outcome. True when all passed.

    With ``torch`` (an install to reuse), the environment is made with venv and pip, which see
    the linked torch; uv is used only when there is no torch to reuse.
    """
    started = time.monotonic()
    uv = None if torch is not None else uv
    print(f"[verify] verifying the new project in {project / '.venv'}", flush=True)
    failed = run_steps([create_step(uv)], project, runner)
    if failed is None and torch is not None:
        if share_torch(project, torch):
            torch_constraint_file(project).write_text(f"torch=={torch.version}\n", encoding="utf-8")
            print(f"[verify] reusing torch {torch.version} from {torch.site_packages}", flush=True)
        else:
            print(
                "[verify] cannot link the installed torch here: pip will install torch", flush=True
            )
            torch = None
    if failed is None:
        # Tidied again with the environment's ruff: the format check must agree with it.
        steps = [install_step(project, env, uv, torch), *check_steps(project, tidy=True)]
        failed = run_steps(steps, project, runner)
    elapsed = time.monotonic() - started
    print(BANNER, flush=True)
    if failed is None:
        print(
            f"VERIFIED: {project.name} installs; its tests, ruff and mypy pass ({elapsed:.1f} s)."
        )
        print(f"Its environment: {venv_python(project).parent}")
    else:
        print(f"VERIFICATION FAILED at step '{failed.name}' after {elapsed:.1f} s.")
        print(f"The project was generated and kept at: {project}")
        print("Fix the problem, then re-run the failed step with:")
        print(f"  {failed.shell(project)}")
    print(BANNER, flush=True)
    return failed is None


def verification_wanted(answers: Mapping[str, Any], env: Mapping[str, str]) -> str | None:
    """Why verification is skipped, or None when it should run."""
    if not answers.get("verify_generated_project"):
        return "verify_generated_project is no"
    if env.get(SKIP_VARIABLE, "").strip().lower() not in {"", "0", "false", "no"}:
        return f"{SKIP_VARIABLE} is set"
    needed = str(answers.get("min_python_version", "3.10"))
    if sys.version_info[:2] < tuple(int(part) for part in needed.split(".")):
        running = f"{sys.version_info.major}.{sys.version_info.minor}"
        return f"the project needs Python >= {needed} and this is Python {running}"
    return None


def record_answers(project: Path, answers: Mapping[str, Any]) -> None:
    """Write the answers to ``.cookiecutter.json``, so the project can be updated later.

    Keys that describe this machine rather than the project (output and checkout paths) are
    left out; ``_template`` stays, so ``cruft`` or ``cookiecutter --replay-file`` find it.
    """
    machine_specific = {"_output_dir", "_repo_dir", "_checkout"}
    recorded = {key: value for key, value in answers.items() if key not in machine_specific}
    text = json.dumps(recorded, indent=2, sort_keys=True, ensure_ascii=False)
    (project / ".cookiecutter.json").write_text(text + "\n", encoding="utf-8")


def tidy(project: Path, runner: Runner = run_step) -> bool:
    """Tidy the code with an available ruff; False when there is none or it failed."""
    ruff = available_ruff()
    if ruff is None:
        print("[tidy] ruff not found: the code is left as rendered (verification tidies it).")
        return False
    return all(runner(step, project) == 0 for step in tidy_steps(ruff))


def main(answers: Mapping[str, Any], project: Path) -> int:
    apply_capability_answers(project, answers)
    record_answers(project, answers)
    tidy(project)
    reason = verification_wanted(answers, os.environ)
    if reason is not None:
        print(f"[verify] skipped: {reason}.")
        return 0
    try:
        verify(project, os.environ, uv=shutil.which("uv"), torch=installed_torch())
    except Exception as error:  # a failing hook would make cookiecutter delete the project
        print(BANNER)
        print(f"VERIFICATION FAILED: {type(error).__name__}: {error}")
        print(f"The project is kept in {project}; verify it by hand (see its README).")
        print(BANNER)
    return 0


if __name__ == "__main__":
    sys.exit(main(json.loads({{cookiecutter | jsonify | tojson}}), Path.cwd()))
