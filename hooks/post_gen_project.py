"""Finish the new project: drop what was answered "no", tidy, link it for cruft, verify it.

Verification creates ``.venv`` in the project (uv when it is on ``PATH``, else venv and pip),
installs torch on its own step (the CPU build unless told otherwise), then the project with its
development extras, tidies the code with that environment's ruff and runs the tests, ruff and
mypy. The console shows each step with its time and the outcome; the tools' full output goes
to ``verification.log`` in the project. Nothing is downloaded but packages, nothing waits for
input, and the new environment holds its own copy of everything.

Where torch comes from (``AUTOGEN_HF_CLIENT_TORCH``): ``cpu`` (the default) takes the CPU build
from PyTorch's CPU index; another PyTorch index name (``cu128``, ``rocm6.4``, ...) that build; a
URL that index; ``index`` whatever your package index gives (on Linux, PyPI's CUDA build).
Without the variable, any pip or uv setting that says where torch comes from (an index or a
constraint) replaces the default CPU index; find-links only add wheels to choose from. An
index that does not answer within ``PROBE_TIMEOUT_SECONDS`` fails the torch step at once,
saying what to do.

Cruft renders the template again in temporary folders (``cruft create``, ``diff``, ``update``)
and puts ``_commit`` in the context: those renders are neither linked nor verified.

This hook always exits 0: a failing hook makes cookiecutter delete the project. A failed
verification is reported instead, with the log and the command to re-run. Set
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
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SKIP_VARIABLE = "AUTOGEN_HF_CLIENT_SKIP_VERIFY"
TORCH_VARIABLE = "AUTOGEN_HF_CLIENT_TORCH"
TORCH_REQUIREMENT = "torch>=2.4"  # the generated pyproject's (a template test checks)
PYTORCH_INDEX = "https://download.pytorch.org/whl/"
PROBE_TIMEOUT_SECONDS = 10
STEP_TIMEOUT_SECONDS = 45 * 60
LOG_NAME = "verification.log"
FAILED_OUTPUT_LINES = 25
BANNER = "=" * 72

# pip's settings, handed to uv as options (uv does not read pip's environment) and shown in
# the command that re-runs a pip step.
UV_OPTIONS = {
    "PIP_INDEX_URL": "--index-url",
    "PIP_EXTRA_INDEX_URL": "--extra-index-url",
    "PIP_FIND_LINKS": "--find-links",
    "PIP_CONSTRAINT": "--constraint",
}
# Settings that say where torch comes from: any of them replaces the default CPU index. Find-links
# only add wheels to choose from (the CPU index stays), so they are not among them.
TORCH_SOURCES = (
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
    "PIP_CONSTRAINT",
    "UV_DEFAULT_INDEX",
    "UV_INDEX",
    "UV_INDEX_URL",
    "UV_EXTRA_INDEX_URL",
    "UV_CONSTRAINT",
    "UV_TORCH_BACKEND",
)
# Context keys that describe this machine, not the project: never recorded.
MACHINE_KEYS = frozenset({"_output_dir", "_repo_dir", "_checkout"})

# Files that exist only when a capability was answered "yes" ({package} is the package dir).
OPTIONAL_FILES: dict[str, list[str]] = {
    "vision": [
        "{package}/_core/_vision.py",
        "{package}/_core/_vision_chat.py",
        "tests/test_vision.py",
        "tests/tiny_vision_models.py",
        "tests/chat_templates/vision_chatml.jinja",
        "tests/chat_templates/vision_rejects_system.jinja",
    ],
    "function_calling": [
        "{package}/_core/_tool_format.py",
        "{package}/_core/_tool_parsers.py",
        "{package}/_core/_tools.py",
        "benchmarks/bench_tools.py",
        "tests/chat_templates/atem_tools.jinja",
        "tests/chat_templates/command_r_tools.jinja",
        "tests/chat_templates/deepseek_r1_tools.jinja",
        "tests/chat_templates/dsml_tools.jinja",
        "tests/chat_templates/functionary_v32_tools.jinja",
        "tests/chat_templates/gemma4_tools.jinja",
        "tests/chat_templates/glm_tools.jinja",
        "tests/chat_templates/hermes3_tools.jinja",
        "tests/chat_templates/hy3_tools.jinja",
        "tests/chat_templates/kimi_k2_tools.jinja",
        "tests/chat_templates/kimi_k3_tools.jinja",
        "tests/chat_templates/lfm2_tools.jinja",
        "tests/chat_templates/llama3_tools.jinja",
        "tests/chat_templates/llama4_tools.jinja",
        "tests/chat_templates/minicpm5_tools.jinja",
        "tests/chat_templates/minimax_m2_tools.jinja",
        "tests/chat_templates/minimax_m3_tools.jinja",
        "tests/chat_templates/mistral_tools.jinja",
        "tests/chat_templates/mistral_v11_tools.jinja",
        "tests/chat_templates/mistral_v13_tools.jinja",
        "tests/chat_templates/no_tools.jinja",
        "tests/chat_templates/qwen3_coder_tools.jinja",
        "tests/test_tool_choice.py",
        "tests/test_tool_format.py",
        "tests/test_tools.py",
        "tests/tool_templates.py",
    ],
    "json_output": [
        "{package}/_core/_json_output.py",
        "tests/test_json_output.py",
        "benchmarks/bench_json.py",
        "benchmarks/bench_schemas.py",
    ],
    "structured_output": ["tests/test_structured_output.py"],
    "agent_framework": [
        "{package}/_agent_framework/__init__.py",
        "{package}/_agent_framework/_client.py",
        "{package}/_agent_framework/_messages.py",
        "tests/test_agent_framework.py",
    ],
}
# Files that several capabilities use: they exist when any of these was answered "yes".
SHARED_FILES: dict[str, list[str]] = {
    "{package}/_core/_constrained.py": ["function_calling", "json_output"],
    "{package}/_core/_schema.py": ["function_calling", "json_output"],
    "tests/test_schema.py": ["function_calling", "json_output"],
    "tests/schema_models.py": ["function_calling", "json_output"],
}
# Files that exist only when a capability was answered "no".
DISABLED_FILES: dict[str, list[str]] = {
    "vision": [],
    "function_calling": ["tests/test_tools_disabled.py"],
    "json_output": ["tests/test_json_output_disabled.py"],
    "structured_output": ["tests/test_structured_output_disabled.py"],
    "agent_framework": [],
}


# Modules that take an optional module's place when its capability was answered "no". They
# have the same interface and refuse the capability clearly, so the client imports the same
# names either way and holds no template conditionals.
STAND_INS: dict[str, dict[str, str]] = {
    "vision": {"{package}/_core/_no_vision.py": "{package}/_core/_vision.py"},
    "function_calling": {"{package}/_core/_no_tools.py": "{package}/_core/_tools.py"},
    "json_output": {"{package}/_core/_no_json_output.py": "{package}/_core/_json_output.py"},
}


# Files that exist only for an open-source license: a proprietary package is not published.
PUBLISHING_FILES = [".github/workflows/release.yml"]


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
    if answers["license"] == "Proprietary":
        paths.extend(PUBLISHING_FILES)
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
    """Delete the files of capabilities not chosen (and of publishing, for a proprietary
    license), and move the stand-ins into place."""
    emptied: set[Path] = set()
    for relative in unselected_files(answers):
        (project / relative).unlink(missing_ok=True)
        emptied.add((project / relative).parent)
    for folder in sorted(emptied, key=lambda path: len(path.parts), reverse=True):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()  # a whole module folder unselected (the Agent Framework front)
    for source, target in stand_in_moves(answers):
        (project / source).replace(project / target)


# -- Tidying ---------------------------------------------------------------------------------


def tidy_commands(ruff: list[str]) -> list[tuple[str, list[str]]]:
    """(name, command) that sort imports and format the code with the ``ruff`` command given.

    Names chosen in the answers change line lengths and import order, so the generated code
    is tidied after rendering. Cruft's renders are tidied the same way, so with the same ruff
    (the project's own, when cruft runs from the project's environment) they match.
    """
    return [
        (
            "tidy (ruff import sorting)",
            [*ruff, "check", "--fix", "--quiet", "--no-cache", "--select", "I,RUF022", "."],
        ),
        ("tidy (ruff format)", [*ruff, "format", "--quiet", "--no-cache", "."]),
    ]


def available_ruff() -> list[str] | None:
    """A ruff command next to this Python or on PATH, if any."""
    if importlib.util.find_spec("ruff") is not None:
        return [sys.executable, "-m", "ruff"]
    found = shutil.which("ruff")
    return [found] if found else None


def tidy(project: Path, quiet: bool = False) -> bool:
    """Tidy the code with an available ruff; False when it could not (said on stderr unless
    ``quiet``: verification tidies with the project's own ruff anyway)."""
    ruff = available_ruff()
    if ruff is None:
        if not quiet:
            print("[tidy] no ruff here: the code is left as rendered.", file=sys.stderr)
        return False
    for name, command in tidy_commands(ruff):
        done = subprocess.run(
            command, cwd=project, capture_output=True, text=True, stdin=subprocess.DEVNULL
        )
        if done.returncode != 0:
            print(f"[tidy] {name} failed:\n{done.stdout}{done.stderr}", file=sys.stderr)
            return False
    return True


# -- Linking for cruft -----------------------------------------------------------------------


def rendered_by_cruft(answers: Mapping[str, Any]) -> bool:
    """Whether cruft is rendering (it adds ``_commit``; cookiecutter never does)."""
    return "_commit" in answers


def _git(checkout: Path, *arguments: str) -> str | None:
    """Output of a git command in ``checkout``, or None when it fails (or git is missing)."""
    try:
        done = subprocess.run(
            ["git", *arguments],
            cwd=checkout,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except OSError:
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def template_source(template: str, checkout: Path) -> str:
    """The template as cruft clones it: its repository URL (abbreviations such as ``gh:``
    expanded), or for a local template the top folder of its git checkout."""
    from cookiecutter.config import get_user_config
    from cookiecutter.repository import expand_abbreviations, is_repo_url

    expanded = expand_abbreviations(template, get_user_config()["abbreviations"])
    if is_repo_url(expanded):
        return expanded
    return _git(checkout, "rev-parse", "--show-toplevel") or str(checkout)


def cruft_state(answers: Mapping[str, Any], checkout: Path) -> dict[str, Any] | None:
    """What ``cruft create`` would record for this bake, or None when the template is not a
    git checkout (cruft needs one)."""
    commit = _git(checkout, "rev-parse", "HEAD")
    if commit is None:
        return None
    template = template_source(str(answers.get("_template", checkout)), checkout)
    context = {key: value for key, value in answers.items() if key not in MACHINE_KEYS}
    context.update(_template=template, _commit=commit)
    return {
        "template": template,
        "commit": commit,
        "checkout": answers.get("_checkout"),
        "context": {"cookiecutter": context},
        "directory": (_git(checkout, "rev-parse", "--show-prefix") or "").rstrip("/") or None,
    }


def link_for_cruft(project: Path, answers: Mapping[str, Any], checkout: Path) -> str:
    """Write ``.cruft.json`` (as ``cruft create`` does); return a line saying what was done."""
    state = cruft_state(answers, checkout)
    if state is None:
        return (
            f"not linked for cruft: the template at {checkout} is not a git checkout; "
            "link later with `cruft link <template git URL>`"
        )
    text = json.dumps(state, ensure_ascii=False, indent=2, separators=(",", ": "))
    (project / ".cruft.json").write_text(text + "\n", encoding="utf-8")
    line = f"linked for cruft updates: {state['template']} at {state['commit'][:12]}"
    if _git(checkout, "status", "--porcelain", "--untracked-files=no"):
        line += " (the template has uncommitted changes: `cruft diff` will show them)"
    return line


# -- Verification ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TorchSource:
    """Where verification takes torch from."""

    description: str
    index: str | None = None
    """A package index added for torch (pip: an extra index; uv: ``--index``)."""
    backend: str | None = None
    """A PyTorch index name for uv's ``--torch-backend``."""


def torch_source(env: Mapping[str, str]) -> TorchSource:
    """The torch build that verification installs, by ``AUTOGEN_HF_CLIENT_TORCH`` and the
    user's own package settings."""
    chosen = env.get(TORCH_VARIABLE, "").strip()
    if chosen == "index":
        return TorchSource("as your package index gives it")
    if "://" in chosen:
        return TorchSource(f"from {chosen}", index=chosen)
    if chosen:
        index = PYTORCH_INDEX + chosen
        return TorchSource(f"{chosen} build from {index}", index, chosen)
    given = [name for name in TORCH_SOURCES if env.get(name, "").strip()]
    if given:
        return TorchSource(f"from where {', '.join(given)} say")
    index = PYTORCH_INDEX + "cpu"
    return TorchSource(f"CPU build from {index}", index, "cpu")


def unreachable(index: str, timeout: float = PROBE_TIMEOUT_SECONDS) -> str | None:
    """Why the package index ``index`` does not answer within ``timeout`` s, or None."""
    if not index.startswith(("http://", "https://")):
        return None
    try:
        with urllib.request.urlopen(index.rstrip("/") + "/torch/", timeout=timeout):
            return None
    except urllib.error.HTTPError:
        return None  # it answered: pip or uv report what it said
    except (OSError, ValueError) as error:
        return str(getattr(error, "reason", error))


@dataclass
class Step:
    """One verification command."""

    name: str
    command: list[str]
    env: dict[str, str] = field(default_factory=dict)
    index: str | None = None
    """A package index that must answer before the command runs."""
    hint: str = ""
    """What to do when the step fails."""
    alongside: bool = False
    """Runs while the steps after it do (its own output apart); awaited after them."""

    def shell(self, project: Path) -> str:
        """The command as a user would type it to re-run this step."""
        assignments = [f"{key}={shlex.quote(value)}" for key, value in self.env.items()]
        return f"cd {shlex.quote(str(project))} && " + " ".join(
            [*assignments, *(shlex.quote(part) for part in self.command)]
        )


def venv_python(project: Path) -> Path:
    """The interpreter of the project's ``.venv``."""
    if os.name == "nt":
        return project / ".venv" / "Scripts" / "python.exe"
    return project / ".venv" / "bin" / "python"


def _split_setting(value: str | None) -> list[str]:
    return value.split() if value else []


def uv_options(env: Mapping[str, str]) -> list[str]:
    """pip's settings from the environment, as uv options."""
    options: list[str] = []
    for variable, option in UV_OPTIONS.items():
        for value in _split_setting(env.get(variable)):
            options += [option, value]
    return options


def create_step(uv: str | None) -> Step:
    """The command that creates ``.venv`` with the Python running this hook."""
    if uv:  # an environment left by an earlier bake over this folder is reused
        command = [uv, "venv", "--allow-existing", "--python", sys.executable, ".venv"]
        return Step("create environment (uv)", command)
    return Step("create environment (venv)", [sys.executable, "-m", "venv", ".venv"])


def _install(project: Path, env: Mapping[str, str], uv: str | None) -> list[str]:
    python = str(venv_python(project))
    if uv:
        return [uv, "pip", "install", "--python", python, *uv_options(env)]
    # pip reads its settings itself. No byte-compiling of every installed file (thousands in
    # torch and transformers): Python compiles what it imports, as uv leaves it to do.
    return [python, "-m", "pip", "install", "--no-input", "--no-compile"]


def _pip_settings(env: Mapping[str, str], uv: str | None) -> dict[str, str]:
    """pip's settings from the environment, shown in the command that re-runs a pip step."""
    return {} if uv else {name: env[name] for name in UV_OPTIONS if env.get(name)}


def torch_step(project: Path, env: Mapping[str, str], uv: str | None) -> Step:
    """The command that installs torch, from where ``torch_source`` says."""
    source = torch_source(env)
    command = [*_install(project, env, uv), TORCH_REQUIREMENT]
    if uv and source.backend:
        command += ["--torch-backend", source.backend]
    elif source.index:
        command += ["--index" if uv else "--extra-index-url", source.index]
    hint = ""
    if source.index:
        hint = "\n".join(
            [
                f"If {source.index} cannot be reached from here, set {TORCH_VARIABLE} to a mirror "
                "of it (a URL), or to 'index', then generate the project again (below), such as:",
                f"  {TORCH_VARIABLE}=index cookiecutter --replay ... (the command below)",
                "'index' takes torch from your package index as it is: on Linux PyPI's CUDA build "
                "(about 2.7 GB), on macOS and Windows the CPU build. PIP_INDEX_URL or "
                "PIP_CONSTRAINT (uv: UV_DEFAULT_INDEX, UV_CONSTRAINT) say where torch comes from "
                f"too; {SKIP_VARIABLE}=1 skips verification (install by hand: README, Install).",
            ]
        )
    return Step(
        f"install torch ({source.description})",
        command,
        _pip_settings(env, uv),
        index=source.index,
        hint=hint,
    )


def project_step(project: Path, env: Mapping[str, str], uv: str | None) -> Step:
    """The command that installs the project with its development extras (torch is in).

    uv leaves the project's ``tool.uv.sources`` aside here: torch came from the step before.
    """
    sources = ["--no-sources"] if uv else []
    command = [*_install(project, env, uv), *sources, "-e", ".[dev]"]
    return Step("install project", command, _pip_settings(env, uv))


def check_steps(project: Path) -> list[Step]:
    """Tidy with the environment's ruff, then test and lint the installed project."""
    python = str(venv_python(project))
    offline = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "RUN_HUB_TESTS": "0"}
    return [
        *(Step(name, command) for name, command in tidy_commands([python, "-m", "ruff"])),
        # mypy is single-threaded, as the tests mostly are: on two cores they run side by side.
        Step("types (mypy --strict)", [python, "-m", "mypy"], offline, alongside=True),
        Step("tests (pytest)", [python, "-m", "pytest", "-q"], offline),
        Step("lint (ruff check)", [python, "-m", "ruff", "check", "."]),
        Step("format (ruff format --check)", [python, "-m", "ruff", "format", "--check", "."]),
    ]


def verification_steps(project: Path, env: Mapping[str, str], uv: str | None) -> list[Step]:
    """Every verification step, in order."""
    return [
        create_step(uv),
        torch_step(project, env, uv),
        project_step(project, env, uv),
        *check_steps(project),
    ]


Runner = Callable[[Step, Path, Path], int]


def run_step(step: Step, project: Path, log: Path) -> int:
    """Run one step in the project, its output appended to ``log``, input closed, timed out."""
    env = {**os.environ, "PIP_NO_INPUT": "1", **step.env}
    with log.open("a", encoding="utf-8") as output:
        output.write(f"\n$ {step.shell(project)}\n")
        output.flush()
        if step.index and (problem := unreachable(step.index)):
            output.write(f"{step.index} does not answer: {problem}\n")
            return 1
        try:
            return subprocess.run(
                step.command,
                cwd=project,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                timeout=STEP_TIMEOUT_SECONDS,
            ).returncode
        except subprocess.TimeoutExpired:
            output.write(f"timed out after {STEP_TIMEOUT_SECONDS} s\n")
            return 124
        except OSError as error:
            output.write(f"{error}\n")
            return 127


def _tail(log: Path, start: int) -> list[str]:
    """The last lines that ``log`` gained after byte ``start``."""
    with log.open("rb") as text:
        text.seek(start)
        lines = text.read().decode("utf-8", "replace").splitlines()
    return lines[-FAILED_OUTPUT_LINES:]


def _reported(step: Step, code: int, elapsed: float, log: Path, start: int) -> bool:
    """Print the step's outcome (its last output from ``log`` when it failed); True if ok."""
    if code != 0:
        print(f" FAILED (exit code {code}, {elapsed:.1f} s); its last output:", flush=True)
        for line in _tail(log, start):
            print(f"    {line}")
        return False
    print(f" ok ({elapsed:.1f} s)", flush=True)
    return True


def run_steps(
    steps: Sequence[Step], project: Path, log: Path, runner: Runner = run_step
) -> Step | None:
    """Run the steps in order, printing each with its time; return the one that failed.

    A step ``alongside`` starts in its turn with its own log and is reported, its log appended
    to ``log``, once the steps after it are done."""

    def timed(step: Step, output: Path) -> tuple[int, float]:
        started = time.monotonic()
        return runner(step, project, output), time.monotonic() - started

    failed: Step | None = None
    with ThreadPoolExecutor() as pool:
        pending: list[tuple[Step, Future[tuple[int, float]], Path]] = []
        for step in steps:
            if step.alongside:
                part = log.with_name(f"{log.name}.{len(pending)}")
                part.write_text("", encoding="utf-8")
                pending.append((step, pool.submit(timed, step, part), part))
                continue
            print(f"[verify] {step.name} ...", end="", flush=True)
            start = log.stat().st_size
            if not _reported(step, *timed(step, log), log, start):
                failed = step
                break
        for step, outcome, part in pending:
            code, elapsed = outcome.result()
            if failed is None:
                print(f"[verify] {step.name} ...", end="", flush=True)
                failed = None if _reported(step, code, elapsed, part, 0) else step
            with log.open("a", encoding="utf-8") as whole:
                whole.write(part.read_text(encoding="utf-8"))
            part.unlink()
    return failed


def regenerate_command(answers: Mapping[str, Any], checkout: Path) -> str:
    """The command that generates this project again over its folder, with the same answers
    (cookiecutter's replay file of this bake): pasted as is, it works."""
    template = str(answers.get("_template") or checkout)
    if Path(template).expanduser().exists():
        template = str(checkout)  # a local template, perhaps given as a relative path
    command = ["cookiecutter", "--replay", "--overwrite-if-exists"]
    if answers.get("_checkout"):
        command += ["--checkout", str(answers["_checkout"])]
    command += ["--output-dir", str(answers.get("_output_dir") or "."), template]
    return " ".join(shlex.quote(part) for part in command)


def verify(
    project: Path,
    env: Mapping[str, str],
    runner: Runner = run_step,
    uv: str | None = None,
    again: str = "",
) -> bool:
    """Create the environment, install, test and lint; report the outcome. True when all passed.

    ``again`` is the command that generates the project again, shown after a failure."""
    log = project / LOG_NAME
    log.write_text("", encoding="utf-8")
    started = time.monotonic()
    print(f"[verify] verifying {project} in .venv; full output in {log}", flush=True)
    failed = run_steps(verification_steps(project, env, uv), project, log, runner)
    elapsed = time.monotonic() - started
    print(BANNER, flush=True)
    if failed is None:
        print(f"VERIFIED: {project.name} installs; its tests, ruff and mypy pass ({elapsed:.0f} s)")
        print(f"Its environment: {venv_python(project).parent}")
    else:
        print(f"VERIFICATION FAILED at step '{failed.name}' after {elapsed:.0f} s.")
        if failed.hint:
            print(failed.hint)
        print(f"The project was generated and kept at: {project}")
        print(f"Full output of every step: {log}")
        print("Re-run the failed step with:")
        print(f"  {failed.shell(project)}")
        if again:
            print("Or generate the project again over this folder, with the same answers:")
            print(f"  {again}")
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


def main(answers: Mapping[str, Any], project: Path, checkout: Path) -> int:
    apply_capability_answers(project, answers)
    reason = verification_wanted(answers, os.environ)
    tidy(project, quiet=reason is None and not rendered_by_cruft(answers))
    if rendered_by_cruft(answers):
        print("[verify] skipped: cruft is rendering the template.", file=sys.stderr)
        return 0
    try:
        linked = link_for_cruft(project, answers, checkout)
    except Exception as error:  # a convenience: never lose the project over it
        linked = f"not linked for cruft: {type(error).__name__}: {error}"
    print(f"[cruft] {linked}")
    if reason is not None:
        print(f"[verify] skipped: {reason}.")
        return 0
    try:
        again = regenerate_command(answers, checkout)
        verify(project, os.environ, uv=shutil.which("uv"), again=again)
    except Exception as error:  # a failing hook would make cookiecutter delete the project
        print(BANNER)
        print(f"VERIFICATION FAILED: {type(error).__name__}: {error}")
        print(f"The project is kept in {project}; verify it by hand (see its README).")
        print(BANNER)
    return 0


if __name__ == "__main__":
    # Cookiecutter renders this file inside the template's checkout: template_directory() is
    # that folder's absolute path (``_repo_dir`` may be relative to where cookiecutter started).
    sys.exit(
        main(
            json.loads({{cookiecutter | jsonify | tojson}}),
            Path.cwd(),
            Path({{template_directory() | tojson}}),
        )
    )
