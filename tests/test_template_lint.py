"""The template's own code (hooks, filters, these tests) is ruff clean, like what it generates."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

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


def test_xdist_groups_keep_their_tests_on_one_worker(tmp_path: Path) -> None:
    """The slow tests build what they share once per group (``xdist_group``), which this
    pytest and pytest-xdist must honour (pytest 9.2 does not: requirements-test.txt)."""
    (tmp_path / "test_grouped.py").write_text(
        "import os, pytest\n"
        "pytestmark = pytest.mark.xdist_group('shared')\n"
        "def test_a(): print(os.environ['PYTEST_XDIST_WORKER'])\n"
        "def test_b(): print(os.environ['PYTEST_XDIST_WORKER'])\n"
        "def test_c(): print(os.environ['PYTEST_XDIST_WORKER'])\n"
        "def test_d(): print(os.environ['PYTEST_XDIST_WORKER'])\n",
        encoding="utf-8",
    )
    command = ["-m", "pytest", "-n", "2", "--dist", "loadgroup", "-v", "-p", "no:cacheprovider"]
    result = subprocess.run(
        [
            sys.executable,
            *command,
            "-c",
            "/dev/null",
            "--rootdir",
            str(tmp_path),
            "test_grouped.py",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    workers = set(re.findall(r"^\[(gw\d)\] .* PASSED test_grouped\.py::", result.stdout, re.M))
    assert len(workers) == 1, result.stdout
