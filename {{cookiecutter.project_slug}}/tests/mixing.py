"""Good requests to run beside hostile ones, and their answers when each runs alone."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

from autogen_core.models import CreateResult, UserMessage
from reference import bare_generate, load_model, template_ids
from transformers import PreTrainedTokenizerBase

from {{ cookiecutter.package_name }} import {{ cookiecutter.client_class_name }} as Client

PROMPTS = [
    [UserMessage(content=text, source="user")]
    for text in ("Hi", "Tell me about the weather in Paris.", "Numbers: 1 2 3", "café 日本語 🙂?")
]


def alone(tiny_model_path: Path, tokenizer: PreTrainedTokenizerBase) -> Iterator[list[int]]:
    """Bare greedy ``generate`` answers to PROMPTS, 10 + 5 i tokens each."""
    model = load_model(tiny_model_path)
    for i, prompt in enumerate(PROMPTS):
        ids = template_ids(tokenizer, [{"role": "user", "content": prompt[0].content}])
        yield bare_generate(model, ids, max_new_tokens=10 + 5 * i, do_sample=False)


async def good_ones(client: Client) -> list[asyncio.Task[CreateResult]]:
    """PROMPTS as running requests, greedy, 10 + 5 i tokens each."""
    return [
        asyncio.create_task(client.create(prompt, extra_create_args={"max_new_tokens": 10 + 5 * i}))
        for i, prompt in enumerate(PROMPTS)
    ]


async def assert_good(
    tasks: list[asyncio.Task[CreateResult]],
    tiny_model_path: Path,
    tokenizer: PreTrainedTokenizerBase,
) -> None:
    """Each good request gave its answer alone."""
    results = await asyncio.wait_for(asyncio.gather(*tasks), 300)
    for result, ids in zip(results, alone(tiny_model_path, tokenizer), strict=True):
        assert result.content == tokenizer.decode(ids, skip_special_tokens=True)
