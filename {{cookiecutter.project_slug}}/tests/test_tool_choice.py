"""The config's default tool_choice: forcing tools from an AgentChat agent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.messages import ToolCallExecutionEvent, ToolCallRequestEvent
from autogen_core.models import UserMessage
from autogen_core.tools import FunctionTool

from {{ cookiecutter.package_name }} import {{ cookiecutter.client_class_name }} as Client

ASK = UserMessage(content="What is the weather?", source="user")
cities: list[str] = []


def get_weather(city: str) -> str:
    """The weather in a city."""
    cities.append(city)
    return f"Sunny in {city}."


def get_time(zone: str) -> str:
    """The time in a time zone."""
    return f"Noon in {zone}."


WEATHER = FunctionTool(get_weather, description="The weather in a city.")
TIME = FunctionTool(get_time, description="The time in a time zone.")


def _client(model: Path, tool_choice: str) -> Client:
    return Client(
        model_name=str(model), max_new_tokens=48, do_sample=False, tool_choice=tool_choice
    )


async def test_an_agent_calls_its_tool_when_the_config_requires_one(
    tiny_model_path: Path,
) -> None:
    client = _client(tiny_model_path, "required")
    cities.clear()
    try:
        agent = AssistantAgent("assistant", model_client=client, tools=[WEATHER])
        result = await agent.run(task="What is the weather in Paris?")
    finally:
        await client.close()
    requests = [m for m in result.messages if isinstance(m, ToolCallRequestEvent)]
    executions = [m for m in result.messages if isinstance(m, ToolCallExecutionEvent)]
    assert len(requests) == len(executions) == 1
    (call,) = requests[0].content
    assert call.name == "get_weather"
    assert cities == [json.loads(call.arguments)["city"]]
    assert executions[0].content[0].is_error is False


async def test_a_tool_name_forces_that_tool_and_a_request_choice_wins(
    tiny_model_path: Path,
) -> None:
    client = _client(tiny_model_path, "get_time")
    try:
        forced = await client.create([ASK], tools=[WEATHER, TIME])
        free = await client.create([ASK], tools=[WEATHER, TIME], tool_choice="none")
        plain = await client.create([ASK])  # no tools: nothing to force
    finally:
        await client.close()
    assert forced.finish_reason == "function_calls"
    assert isinstance(forced.content, list)
    assert [call.name for call in forced.content] == ["get_time"]
    assert isinstance(free.content, str)
    assert isinstance(plain.content, str)


async def test_a_config_tool_name_missing_from_the_request_is_refused(
    tiny_model_path: Path,
) -> None:
    client = _client(tiny_model_path, "get_stock_price")
    try:
        with pytest.raises(ValueError, match="tool_choice 'get_stock_price' names no tool"):
            await client.create([ASK], tools=[WEATHER])
    finally:
        await client.close()
