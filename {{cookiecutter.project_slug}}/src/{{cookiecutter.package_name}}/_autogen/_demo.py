"""``python -m <package> demo``: the client at work on a tiny model built offline.

Nothing is downloaded: a tiny model with random weights and a real (small) tokenizer is built
in a few seconds. Its words are gibberish; what the demo shows is the client: streamed chunks,
exact token counts, and (where this project has them) a tool call and JSON output that
constrained decoding keeps valid even for a random model.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Literal

from autogen_core import CancellationToken
from autogen_core.models import CreateResult, UserMessage
from autogen_core.tools import FunctionTool
from pydantic import BaseModel, Field
from transformers.utils import logging as transformers_logging

from ._client import {{ cookiecutter.client_class_name }} as Client
from .._core._errors import CapabilityError
from .._core._tiny_models import build_tiny_model

MESSAGES = [UserMessage(content="What is the weather like in Paris?", source="user")]


def get_weather(city: Literal["Paris", "Tokyo", "Lima"], days: Literal[1, 2, 3, 4, 5]) -> str:
    """The weather forecast for a city."""
    return f"{city}: sunny for {days} day(s)."


class Forecast(BaseModel):
    """What the structured-output part of the demo asks for."""

    city: str = Field(max_length=12)
    sunny: bool
    degrees: int = Field(ge=-40, le=50)


async def _stream(client: Client) -> None:
    print("\n1. Streaming (create_stream); each chunk is printed as it arrives, between |:")
    chunks = 0
    async for item in client.create_stream(MESSAGES, extra_create_args={"max_new_tokens": 32}):
        if isinstance(item, CreateResult):
            result = item
        else:
            chunks += 1
            print(f"{item}|", end="", flush=True)
    counted = client.count_tokens(MESSAGES)
    print(
        f"\n   {chunks} chunks, finish_reason={result.finish_reason!r}; prompt tokens "
        f"{result.usage.prompt_tokens} (count_tokens says {counted}), "
        f"completion tokens {result.usage.completion_tokens}"
    )


async def _tool_call(client: Client) -> None:
    print('\n2. A tool call (tool_choice="required": decoding is constrained to a valid call):')
    tool = FunctionTool(get_weather, description="The weather forecast for a city.")
    result = await client.create(MESSAGES, tools=[tool], tool_choice="required")
    if isinstance(result.content, str):  # the call did not fit in max_new_tokens
        print(f"   no complete call (finish_reason={result.finish_reason!r})")
        return
    for call in result.content:
        answer = await tool.run_json(json.loads(call.arguments), CancellationToken())
        print(f"   {call.name}({call.arguments}) -> {tool.return_value_as_string(answer)!r}")


async def _json_output(client: Client) -> None:
    structured = client.model_info["structured_output"]
    if structured:
        print("\n3. Structured output (json_output=Forecast, a pydantic model):")
    else:
        print("\n3. JSON output (json_output=True):")
    result = await client.create(MESSAGES, json_output=Forecast if structured else True)
    assert isinstance(result.content, str)
    if result.finish_reason == "length":
        print(f"   {result.content!r}: cut off by max_new_tokens before the JSON was complete")
        return
    parsed = (Forecast.model_validate_json if structured else json.loads)(result.content)
    print(f"   {result.content!r}\n   -> {parsed!r}")


async def _if_generated(
    client: Client, generated: bool, answer: str, show: Callable[[Client], Awaitable[None]]
) -> None:
    """Show one part of the demo, or say why not."""
    if not generated:
        print(f"\n({answer}=no: not generated in this project)")
        return
    try:
        await show(client)
    except CapabilityError as error:  # such as llguidance not installed
        print(f"   not shown: {error}")


async def run_demo(save: Path | None = None) -> int:
    """Build the tiny model (in ``save``, else a temporary folder) and show the client on it."""
    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    with tempfile.TemporaryDirectory() as scratch:
        path = build_tiny_model(save or Path(scratch) / "tiny-model")
        print(
            f"A tiny model with RANDOM weights, built offline in {path}: its words are "
            "gibberish. Watch the client, not the model."
        )
        # Room for a whole call or JSON object: a random model pads JSON with what whitespace
        # the grammar allows.
        client = Client(model_name=str(path), max_new_tokens=256, local_files_only=True)
        try:
            await _stream(client)
            info = client.model_info
            await _if_generated(client, info["function_calling"], "function_calling", _tool_call)
            await _if_generated(client, info["json_output"], "json_output", _json_output)
        finally:
            await client.close()
    if save is not None:
        print(f"\nThe model stays in {save}: python -m {__package__} 'Hello!' --model {save}")
    return 0
