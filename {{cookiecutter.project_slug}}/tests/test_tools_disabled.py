"""Generated without tool calling: tools are refused with a clear error, nothing else changes."""

from __future__ import annotations

import importlib.util
from typing import Annotated

import pytest
from autogen_agentchat.agents import AssistantAgent
from autogen_core.models import UserMessage
from autogen_core.tools import FunctionTool
from pydantic import ValidationError

from {{ cookiecutter.package_name }} import CapabilityError
from {{ cookiecutter.package_name }} import {{ cookiecutter.client_class_name }} as Client
from {{ cookiecutter.package_name }} import {{ cookiecutter.client_class_name }}Config as Config

ASK = UserMessage(content="What time is it?", source="user")


def local_time(zone: Annotated[str, "time zone"]) -> str:
    """The local time in a time zone."""
    return f"12:00 {zone}"


TIME = FunctionTool(local_time, description="The local time in a time zone.")


async def test_tools_are_refused_clearly(client: Client) -> None:
    assert client.model_info["function_calling"] is False
    with pytest.raises(CapabilityError, match="does not support tools"):
        await client.create([ASK], tools=[TIME])
    with pytest.raises(CapabilityError, match="does not support tools"):
        async for _ in client.create_stream([ASK], tools=[TIME], tool_choice="required"):
            pass
    with pytest.raises(CapabilityError, match="does not support tools"):
        client.count_tokens([ASK], tools=[TIME])


async def test_requests_without_tools_still_work(client: Client) -> None:
    result = await client.create([ASK], tool_choice="none", extra_create_args={"max_new_tokens": 2})
    assert isinstance(result.content, str)


def test_assistant_agent_refuses_tools_for_this_client(client: Client) -> None:
    with pytest.raises(ValueError, match="function calling"):
        AssistantAgent("assistant", model_client=client, tools=[TIME])


def test_no_tool_calling_code_or_config() -> None:
    assert "tool_call_format" not in Config.model_fields
    with pytest.raises(ValidationError):
        Config(tool_call_format="hermes")  # type: ignore[call-arg]
    for module in ("_tool_parsers", "_tool_format"):
        assert importlib.util.find_spec(f"{{ cookiecutter.package_name }}.{module}") is None


async def test_tool_choice_that_needs_tools_is_refused(client: Client) -> None:
    with pytest.raises(CapabilityError, match="function_calling=yes"):
        await client.create([ASK], tool_choice="required")
