"""The template's own code (hooks, filters, these tests) is ruff clean, like what it generates."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import TEMPLATE

OWN_CODE = ["hooks", "tests", "local_extensions.py"]


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=["check", "format"])
def test_template_code_is_ruff_clean(command: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ruff", *command, *OWN_CODE],
        cwd=TEMPLATE,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
