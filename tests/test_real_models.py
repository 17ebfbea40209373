"""The baked client on real tokenizers with their real chat templates (Qwen3, Llama 3.1, Mistral
v0.3, Gemma 4) and tiny random weights, built offline once per session by
``<repo>/../shared/real-models/build.py``.

A public clone has no ``../shared``: the module is skipped there, with the reason. The
expected formats below are what each model's own template writes, so the tests check the
learning, not a list of formats.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import TEMPLATE, bake_default_once, project_environment, run

REAL_MODELS = TEMPLATE.parent / "shared" / "real-models"
NAMES = ("qwen3-0.6b", "llama-3.1-8b-instruct", "mistral-7b-instruct-v0.3", "gemma-4-it")
ID = "\ue000"  # the format's stand-in for a call id

pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("real_models"),  # one worker: the models are built once
    pytest.mark.skipif(
        not (REAL_MODELS / "build.py").is_file(),
        reason=f"no real-model builder at {REAL_MODELS} (a public clone has no ../shared)",
    ),
]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The four real tokenizers and templates on tiny random weights."""
    output = tmp_path_factory.mktemp("real-models")
    build = [sys.executable, str(REAL_MODELS / "build.py"), str(output), "--quiet", "--no-verify"]
    run(build, REAL_MODELS)
    return {name: output / name for name in NAMES}


@pytest.fixture(scope="module")
def baked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bake_default_once(tmp_path_factory, "real-models-bake")


@pytest.fixture(scope="module")
def checks(baked: Path, models: dict[str, Path]) -> dict[str, Any]:
    script = TEMPLATE / "tests" / "real_models_check.py"
    command = [sys.executable, str(script), *map(str, models.values())]
    output = run(command, baked, **project_environment(baked))
    result: dict[str, Any] = json.loads(output.stdout.strip().splitlines()[-1])
    return result


@pytest.fixture(scope="module")
def bench(baked: Path, models: dict[str, Path]) -> dict[str, Any]:
    """The tool benchmark on the four models, briefly: three seeds, a small token budget (the
    random models' strings then always need closing)."""
    results = baked / "bench_tools.json"
    command = [
        sys.executable,
        "benchmarks/bench_tools.py",
        "--seeds",
        "3",
        "--max-new-tokens",
        "48",
    ]
    for model in models.values():
        command += ["--model", str(model)]
    run([*command, "--json", str(results)], baked, **project_environment(baked))
    return {Path(entry["model"]).name: entry for entry in json.loads(results.read_text("utf-8"))}


def test_formats_are_learnt_from_the_real_templates(checks: dict[str, Any]) -> None:
    qwen, llama = checks["qwen3-0.6b"]["format"], checks["llama-3.1-8b-instruct"]["format"]
    mistral, gemma = checks["mistral-7b-instruct-v0.3"]["format"], checks["gemma-4-it"]["format"]
    assert (qwen["json_open"], qwen["json_close"], qwen["separator"]) == (
        "<tool_call>\n",
        "\n</tool_call>",
        "\n",
    )
    assert qwen["json_keys"] == ["name", "arguments"]
    assert (llama["call_open"], llama["json_keys"], llama["separator"]) == (
        '{"name": "',
        ["name", "parameters"],
        None,  # the template refuses two calls in one answer
    )
    assert (mistral["calls_open"], mistral["separator"], mistral["calls_close"]) == (
        "[TOOL_CALLS] [",
        ", ",
        "]",
    )
    assert mistral["call_close"] == ', "id": "' + ID + '"}'
    assert (gemma["call_open"], gemma["call_close"], gemma["calls_close"]) == (
        "<|tool_call>call:",
        "<tool_call|>",
        "<|tool_response>",
    )
    assert (gemma["arguments"], gemma["sorted_keys"]) == ("gemma", True)
    for name in NAMES:
        assert checks[name]["renders"] == [True, True, True], name
        assert checks[name]["problem"] is None, name
    assert checks["gemma-4-it"]["markers"] == [
        "<tool_call|>",
        '<|"|>',
        "<|tool_call>",
        "<|tool_response>",
    ]
    assert checks["gemma-4-it"]["hold_from"] == ["<|tool_call>"]
    assert checks["llama-3.1-8b-instruct"]["hold_from"] == ['{"name"', '{ "name"']


def test_forced_calls_are_what_each_models_own_template_writes(checks: dict[str, Any]) -> None:
    """A forced call, read back, and written again by the model's own chat template: the
    same text (the model's own syntax), markers as its special tokens."""
    for name in NAMES:
        assert checks[name]["forced_read"], name
        forced, written = (
            re.sub(r'"id": "[A-Za-z0-9]{9}"', '"id": ID', checks[name][key]).strip()
            for key in ("forced_text", "template_writes")
        )
        assert forced, name
        assert forced in written, (name, forced, written)
    mistral = checks["mistral-7b-instruct-v0.3"]
    assert mistral["forced_text"].startswith('[TOOL_CALLS] [{"name": "get_weather", "arguments": ')


def test_llama_python_tag_is_no_text(checks: dict[str, Any]) -> None:
    tagged = checks["llama-3.1-8b-instruct"]["python_tag"]
    assert tagged == {"calls": [["get_weather", {"city": "Oslo"}]], "thought": None}


def test_a_refused_later_system_message_leaves_the_leading_one_alone(
    checks: dict[str, Any],
) -> None:
    for name in NAMES:  # Mistral v0.3 refuses a later system message, and only that
        assert checks[name]["later_system_tokens"] > checks[name]["leading_system_tokens"]
        assert (
            checks[name]["leading_system_tokens"] == checks[name]["leading_system_template_tokens"]
        )


def test_forced_calls_are_valid_and_native_calls_read_back(bench: dict[str, Any]) -> None:
    for name in NAMES:
        entry = bench[name]
        assert (entry["required_valid"], entry["named_valid"]) == (3, 3), (name, entry)
        assert entry["read_one"] == "PASS", name
        assert entry["read_two"] == ("n/a" if name.startswith("llama") else "PASS"), name
