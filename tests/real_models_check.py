"""Checks of a baked client on real tokenizers and chat templates; prints one JSON object.

Run by ``test_real_models.py`` with the baked project's ``src`` and ``tests`` on ``PYTHONPATH``
(the package is ``autogen_huggingface_client``, the default answers), one directory per model
built by ``shared/real-models/build.py``::

    python real_models_check.py MODEL_DIR [MODEL_DIR ...]

For each model it reports the call format the client learnt from the template, a forced call
that the client writes next to what the model's own chat template writes for the same call
(the forced call must be in the model's own syntax), and a few answers read back through
``create``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from autogen_core.models import AssistantMessage, SystemMessage, UserMessage
from autogen_core.tools import FunctionTool
from autogen_huggingface_client import HuggingFaceChatCompletionClient as Client
from autogen_huggingface_client._autogen._messages import to_chat_tools
from scripting import scripted_args
from transformers import AutoTokenizer

ASK = UserMessage(content="What is the weather in Paris?", source="user")


def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}."


WEATHER = FunctionTool(get_weather, description="The weather in a city.")


async def _forced_text(client: Client, tokenizer: Any) -> tuple[str, list[Any]]:
    """The text of a forced call (with its special tokens, without the end token), and the
    calls the client read from it."""
    seen: list[int] = []
    original = client._chat.model.tool_calling._decode_raw

    def keep(token_ids: list[int]) -> str:
        seen[:] = token_ids
        return original(token_ids)

    client._chat.model.tool_calling._decode_raw = keep  # type: ignore[method-assign]
    result = await client.create(
        [ASK],
        tools=[WEATHER],
        tool_choice="required",
        extra_create_args={"seed": 1, "do_sample": True},
    )
    client._chat.model.tool_calling._decode_raw = original  # type: ignore[method-assign]
    ended = seen[:-1] if result.finish_reason != "length" and seen else seen
    text = tokenizer.decode(ended, skip_special_tokens=False)
    calls = result.content if isinstance(result.content, list) else []
    return text, calls


def _template_writes(tokenizer: Any, calls: list[Any]) -> str:
    """What the model's own chat template writes for an assistant turn with ``calls``."""
    tools = to_chat_tools([WEATHER])
    user = {"role": "user", "content": ASK.content}
    turn = {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {
                "id": "abcDEF123",
                "type": "function",
                "function": {"name": call.name, "arguments": json.loads(call.arguments)},
            }
            for call in calls
        ],
    }
    prompt = tokenizer.apply_chat_template([user], tools=tools, tokenize=False)
    full = tokenizer.apply_chat_template([user, turn], tools=tools, tokenize=False)
    return str(full)[len(str(prompt)) :]


async def _read(client: Client, tokenizer: Any, answer: str) -> dict[str, Any]:
    result = await client.create(
        [ASK], tools=[WEATHER], extra_create_args=scripted_args(tokenizer, answer)
    )
    calls = result.content if isinstance(result.content, list) else []
    return {
        "calls": [(call.name, json.loads(call.arguments)) for call in calls],
        "thought": result.thought,
    }


async def _check(model: Path) -> dict[str, Any]:
    tokenizer = AutoTokenizer.from_pretrained(model)
    client = Client(model_name=str(model), max_new_tokens=64)
    tool_calling = client._chat.model.tool_calling
    checks: dict[str, Any] = {
        "format": dataclasses.asdict(tool_calling.format),
        "renders": [
            tool_calling.template.renders_tools,
            tool_calling.template.renders_calls,
            tool_calling.template.renders_results,
        ],
        "problem": tool_calling.template.problem,
        "markers": list(tool_calling.markers),
        "hold_from": list(tool_calling.hold_from),
    }
    try:
        text, calls = await _forced_text(client, tokenizer)
        checks["forced_text"], checks["forced_read"] = text, len(calls) == 1
        checks["template_writes"] = _template_writes(tokenizer, calls) if calls else ""
        if "llama" in model.name:  # the tag some Llama 3 models put before custom calls
            tagged = '<|python_tag|>{"name": "get_weather", "parameters": {"city": "Oslo"}}'
            checks["python_tag"] = await _read(client, tokenizer, tagged)
        later = [SystemMessage(content="Be brief."), ASK]
        later += [AssistantMessage(content="Sunny.", source="a"), SystemMessage(content="Now"), ASK]
        checks["later_system_tokens"] = client.count_tokens(later)
        checks["leading_system_tokens"] = client.count_tokens(later[:2])
        leading = tokenizer.apply_chat_template(
            [{"role": "system", "content": "Be brief."}, {"role": "user", "content": ASK.content}],
            add_generation_prompt=True,
            return_dict=True,
        )
        checks["leading_system_template_tokens"] = len(leading["input_ids"])
    finally:
        await client.close()
    return checks


def main(models: list[str]) -> None:
    results = {Path(model).name: asyncio.run(_check(Path(model))) for model in models}
    print(json.dumps(results))


if __name__ == "__main__":
    main(sys.argv[1:])
