"""The baked client on a corpus of real chat templates, opt-in: set
``AUTOGEN_HF_TEMPLATE_CORPUS`` to a directory of ``*.jinja`` files (llama.cpp's
``models/templates``, vLLM's ``examples/tool_chat_template_*.jinja``). The corpus is not part of
this repository; without it the module is skipped, with the reason.

``template_corpus_check.py`` builds a tiny model per template and prints its table (the log
shows it); the tests hold it to the issue's bar: no template makes the constructor raise, and
the families the issue names read one and two native calls, force a valid call in their own
syntax and render a tool history.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import TEMPLATE, bake_default_once, project_environment, run

CORPUS = os.environ.get("AUTOGEN_HF_TEMPLATE_CORPUS", "")
CHECKS = ("read1", "read2", "forced", "own", "history")
FAMILIES = (
    "hermes-3",
    "command-r-plus",
    "llama-4",
    "deepseek-r1",
    "functionary-medium-v3.2",
    "minimax-m2",
    # the markup syntaxes learnt since (issue 19)
    "deepseek-v3.2",
    "deepseek-v4",
    "kimi-k3",
    "lfm2.5-8b",
    "minimax-m3",
    "minicpm5",
    "muse-glimmer",
    "hy3",
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CORPUS or not any(Path(CORPUS).glob("*.jinja")),
        reason="set AUTOGEN_HF_TEMPLATE_CORPUS to a directory of real chat templates (*.jinja)",
    ),
]


@pytest.fixture(scope="module")
def rows(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    baked = bake_default_once(tmp_path_factory, "corpus-bake")
    script = TEMPLATE / "tests" / "template_corpus_check.py"
    output = run([sys.executable, str(script), CORPUS], baked, **project_environment(baked))
    print(output.stdout)  # the table, for the log
    result: list[dict[str, Any]] = json.loads(output.stdout.strip().splitlines()[-1])
    return result


def test_no_template_makes_the_constructor_raise(rows: list[dict[str, Any]]) -> None:
    assert rows
    assert [row["template"] for row in rows if row["ctor"] != "ok"] == []


def test_the_issue_families_read_force_and_render_history(rows: list[dict[str, Any]]) -> None:
    """Hermes 3, Command R+, Llama 4, DeepSeek R1, Functionary v3.2 and MiniMax-M2, and the
    families whose argument markup is learnt (DeepSeek V3.2/V4's DSML, Kimi K3, LFM2.5,
    MiniMax-M3, MiniCPM5, Muse Glimmer's ATEM, Hunyuan 3), where the corpus holds them and
    their template writes calls through transformers: every check that applies passes.
    ``None`` is "does not apply" (a template that refuses two calls)."""
    families = [
        row
        for row in rows
        if any(family in row["template"].lower() for family in FAMILIES)
        and "C" in row.get("renders", "")
    ]
    failed = {
        row["template"]: [check for check in CHECKS if row.get(check) is False or "error" in row]
        for row in families
    }
    assert {name: checks for name, checks in failed.items() if checks} == {}
