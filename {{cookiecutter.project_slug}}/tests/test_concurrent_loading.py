"""Clients created together load their models at the same time, each on its own thread."""

from __future__ import annotations

import asyncio
from pathlib import Path

from transformers import PreTrainedModel

from scripting import local_engine

from {{ cookiecutter.package_name }} import {{ cookiecutter.client_class_name }} as Client


async def test_models_loaded_at_once_are_complete(tiny_model_path: Path) -> None:
    """transformers swaps global functions while loading; overlapping loads must not break it."""
    clients = [Client(model_name=str(tiny_model_path)) for _ in range(4)]
    try:
        models = [await asyncio.wrap_future(local_engine(client).model) for client in clients]
    finally:
        for client in clients:
            await client.close()
    for model in models:
        # Tied as configured: the output layer shares the embedding's parameter.
        assert "lm_head.weight" not in dict(model.named_parameters())
    assert PreTrainedModel.tie_weights.__name__ == "tie_weights"
