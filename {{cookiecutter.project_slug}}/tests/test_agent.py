"""The client inside AgentChat and from the shell."""

from __future__ import annotations

from pathlib import Path

import pytest
from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.base import TaskResult
from autogen_agentchat.messages import ModelClientStreamingChunkEvent, TextMessage
from autogen_core.models import SystemMessage, UserMessage

from {{ cookiecutter.package_name }} import {{ cookiecutter.client_class_name }} as Client
from {{ cookiecutter.package_name }}.__main__ import main

SYSTEM = "You are a helpful assistant."
TASK = "Say hello."


async def test_assistant_agent_answers_through_the_client(client: Client) -> None:
    expected = await client.create(
        [SystemMessage(content=SYSTEM), UserMessage(content=TASK, source="user")]
    )
    agent = AssistantAgent("assistant", model_client=client, system_message=SYSTEM)
    result = await agent.run(task=TASK)
    answer = result.messages[-1]
    assert isinstance(answer, TextMessage)
    assert answer.source == "assistant"
    assert answer.content == expected.content
    assert answer.models_usage is not None
    assert answer.models_usage.prompt_tokens == expected.usage.prompt_tokens


async def test_assistant_agent_streams_through_the_client(client: Client) -> None:
    expected = await client.create(
        [SystemMessage(content=SYSTEM), UserMessage(content=TASK, source="user")]
    )
    agent = AssistantAgent(
        "assistant", model_client=client, system_message=SYSTEM, model_client_stream=True
    )
    events = [event async for event in agent.run_stream(task=TASK)]
    chunks = [e.content for e in events if isinstance(e, ModelClientStreamingChunkEvent)]
    result = events[-1]
    assert isinstance(result, TaskResult)
    answer = result.messages[-1]
    assert isinstance(answer, TextMessage)
    assert len(chunks) > 1
    assert "".join(chunks) == answer.content == expected.content


def test_command_line_prints_the_answer_and_usage(
    tiny_model_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            [
                "Hello!",
                "--model",
                str(tiny_model_path),
                "--max-new-tokens",
                "6",
                "--local-files-only",
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    assert captured.out.strip()
    assert "[length] prompt tokens: " in captured.err
    assert "completion tokens: 6" in captured.err
