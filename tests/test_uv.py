"""The generated project with uv: `uv sync --extra dev`, then `uv run`, on the CPU torch wheel.

Offline from PyTorch's index: the project's `pytorch-cpu` index is pointed at a local index
holding the CPU wheel that pip finds here (never a CUDA build), and the lock is limited to
this platform and Python, the only ones that wheel serves.
"""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from conftest import Bake, run

pytestmark = pytest.mark.slow
CPU_TORCH = "torch==2.13.0+cpu"  # a CPU build by its very version: no CUDA download possible


@pytest.fixture(scope="module")
def cpu_torch_index(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A package index (PEP 503) with the local CPU torch wheel; skip when there is none."""
    root = tmp_path_factory.mktemp("pytorch-cpu")
    wheels = root / "wheels"
    fetched = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--dest",
         str(wheels), CPU_TORCH],
        capture_output=True,
        text=True,
    )  # fmt: skip
    if fetched.returncode != 0:
        pytest.skip(f"no {CPU_TORCH} wheel reachable for pip here")
    (wheel,) = wheels.glob("torch-*.whl")
    (root / "simple" / "torch").mkdir(parents=True)
    link = f'<a href="{wheel.as_uri()}">{wheel.name}</a>'
    (root / "simple" / "torch" / "index.html").write_text(f"<html><body>{link}</body></html>")
    return (root / "simple").as_uri()


def test_uv_sync_and_uv_run(bake: Bake, cpu_torch_index: str) -> None:
    uv = pytest.importorskip("uv").find_uv_bin()
    project = bake()
    here = (
        f"sys_platform == '{sys.platform}' and platform_machine == '{platform.machine()}' "
        f"and python_version == '{sys.version_info.major}.{sys.version_info.minor}'"
    )
    with (project / "pyproject.toml").open("a", encoding="utf-8") as pyproject:
        pyproject.write(f'\n[tool.uv]\nenvironments = ["{here}"]\n')
    env = {
        "UV_INDEX": f"pytorch-cpu={cpu_torch_index}",
        "UV_PYTHON": sys.executable,
        "VIRTUAL_ENV": "",  # uv's environment is the project's .venv
    }
    run([uv, "sync", "--extra", "dev"], project, **env)
    version = "import torch; print(torch.__version__)"
    torch = run([uv, "run", "python", "-c", version], project, **env)
    assert torch.stdout.strip() == CPU_TORCH.removeprefix("torch==")
    demo = run([uv, "run", "python", "-m", "autogen_huggingface_client", "demo"], project, **env)
    assert "count_tokens says" in demo.stdout
    tests = run([uv, "run", "pytest", "-q", "tests/test_config.py"], project, **env)
    assert " passed" in tests.stdout
