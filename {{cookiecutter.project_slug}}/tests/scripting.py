"""Logits processors that let tests script or observe a random model's generation.

They go through the client's public ``extra_create_args={"logits_processor": ...}``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from typing import Any

import torch
from autogen_core.models import CreateResult, LLMMessage, UserMessage
from transformers import LogitsProcessor, LogitsProcessorList, PreTrainedTokenizerBase

from {{ cookiecutter.package_name }} import {{ cookiecutter.client_class_name }} as Client
from {{ cookiecutter.package_name }}._core._local_engine import LocalEngine

HELLO = UserMessage(content="Hello! How are you today?", source="user")


class ScriptedAnswer(LogitsProcessor):
    """Forces the model to emit exactly ``token_ids``, then ``eos_token_id``."""

    def __init__(self, token_ids: Sequence[int], eos_token_id: int) -> None:
        self._script = [*token_ids, eos_token_id]
        self.steps = 0

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        token = self._script[min(self.steps, len(self._script) - 1)]
        self.steps += 1
        forced = torch.full_like(scores, float("-inf"))
        forced[:, token] = 0.0
        return forced  # type: ignore[return-value]


class StepRecorder(LogitsProcessor):
    """Counts decoding steps and notes the thread they ran on; optional per-step hook."""

    def __init__(self, on_step: Callable[[int], object] | None = None) -> None:
        self.steps = 0
        self.threads: set[str] = set()
        self._on_step = on_step

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        self.steps += 1
        self.threads.add(threading.current_thread().name)
        if self._on_step is not None:
            self._on_step(self.steps)
        return scores


def script(tokenizer: PreTrainedTokenizerBase, *pieces: str) -> list[int]:
    """Token ids for the concatenated ``pieces``, each piece tokenized on its own.

    Tokenizing pieces separately lets a test choose where token boundaries fall, for
    example in the middle of a stop string.
    """
    ids: list[int] = []
    for piece in pieces:
        ids.extend(tokenizer.encode(piece, add_special_tokens=False))
    return ids


def scripted_args(tokenizer: PreTrainedTokenizerBase, *pieces: str) -> dict[str, object]:
    """``extra_create_args`` that make the model answer ``"".join(pieces)`` and stop."""
    eos = tokenizer.eos_token_id
    assert isinstance(eos, int)
    return {
        "logits_processor": LogitsProcessorList([ScriptedAnswer(script(tokenizer, *pieces), eos)])
    }


async def start_long_request(
    client: Client, messages: Sequence[LLMMessage] = (HELLO,), **extra: Any
) -> tuple[asyncio.Task[CreateResult], StepRecorder]:
    """A 5000-token request, returned once the model is generating it; its recorder counts
    its steps."""
    started = asyncio.Event()
    loop = asyncio.get_running_loop()
    recorder = StepRecorder(lambda step: step == 1 and loop.call_soon_threadsafe(started.set))
    task = asyncio.create_task(
        client.create(
            list(messages),
            extra_create_args={
                "max_new_tokens": 5000,
                "logits_processor": LogitsProcessorList([recorder]),
                **extra,
            },
        )
    )
    await started.wait()
    return task, recorder


def local_engine(client: Client) -> LocalEngine:
    """The client's local engine (tests and benchmarks look inside it)."""
    engine = client._chat.model.engine
    assert isinstance(engine, LocalEngine), "the client runs on a server"
    return engine
