"""Shared fixtures: tiny models built offline, once per test session."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from tiny_models import build_tiny_model
from vllm_server import PYTHON_VARIABLE, vllm_python, vllm_server

from {{ cookiecutter.package_name }} import {{ cookiecutter.client_class_name }} as Client
from {{ cookiecutter.package_name }}._core._generation import GenerationOutput
from {{ cookiecutter.package_name }}._core._local_engine import LocalGeneration

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Qwen2 model whose tokenizer has a ChatML chat template with tools."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-chat"))


@pytest.fixture(scope="session")
def tiny_model_without_template_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same kind of model, with a tokenizer that has no chat template (like GPT-2)."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-plain"), chat_template=None, seed=1)


@pytest.fixture(scope="session")
async def client(tiny_model_path: Path) -> AsyncIterator[Client]:
    """A greedy client on the tiny chat model, shared by the tests that do not configure one."""
    shared = Client(model_name=str(tiny_model_path), max_new_tokens=24, do_sample=False)
    yield shared
    await shared.close()


@pytest.fixture(scope="session")
def vllm_url(
    tiny_model_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A vLLM server on loopback serving the tiny chat model (skipped without vLLM)."""
    python = vllm_python()
    if python is None:
        pytest.skip(f"no vLLM to test against: set {PYTHON_VARIABLE} to a Python with vllm")
    log = tmp_path_factory.mktemp("vllm") / "server.log"
    with vllm_server(python, tiny_model_path, log) as url:
        yield url


@pytest.fixture(scope="session", params=["local", "vllm"])
async def engine_client(
    request: pytest.FixtureRequest, tiny_model_path: Path
) -> AsyncIterator[Client]:
    """A greedy client on the tiny chat model, on each engine: in this process, and on a
    vLLM server (its tests are skipped where there is no vLLM)."""
    server = {"base_url": request.getfixturevalue("vllm_url")} if request.param == "vllm" else {}
    shared = Client(model_name=str(tiny_model_path), max_new_tokens=24, do_sample=False, **server)
    yield shared
    await shared.close()


@pytest.fixture
def outputs(monkeypatch: pytest.MonkeyPatch) -> list[GenerationOutput]:
    """Every output the local engine hands over, in order."""
    seen: list[GenerationOutput] = []
    original = LocalGeneration.finish

    def finish(self: LocalGeneration, output: GenerationOutput) -> None:
        seen.append(output)
        original(self, output)

    monkeypatch.setattr(LocalGeneration, "finish", finish)
    return seen
