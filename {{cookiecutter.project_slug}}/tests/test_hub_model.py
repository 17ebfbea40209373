"""Opt-in: the real default model from the HuggingFace hub (downloads it).

Run with ``RUN_HUB_TESTS=1 pytest -m hub``; skipped otherwise.
"""

from __future__ import annotations

import os

import pytest
from autogen_core.models import CreateResult, UserMessage

from {{ cookiecutter.package_name }} import DEFAULT_MODEL_NAME
from {{ cookiecutter.package_name }} import {{ cookiecutter.client_class_name }} as Client

pytestmark = [
    pytest.mark.hub,
    pytest.mark.skipif(
        os.environ.get("RUN_HUB_TESTS") != "1", reason="set RUN_HUB_TESTS=1 to use the hub"
    ),
]


@pytest.fixture(autouse=True)
def _online(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)


async def test_default_model_answers_and_counts_exactly() -> None:
    client = Client(model_name=DEFAULT_MODEL_NAME, max_new_tokens=32, do_sample=False)
    messages = [UserMessage(content="What is the capital of France? One word.", source="user")]
    result = await client.create(messages)
    assert isinstance(result.content, str)
    assert result.content.strip()
    assert result.usage.prompt_tokens == client.count_tokens(messages)
    chunks: list[str] = []
    async for item in client.create_stream(messages):
        if isinstance(item, CreateResult):
            assert "".join(chunks) == item.content == result.content
        else:
            chunks.append(item)
    await client.close()
