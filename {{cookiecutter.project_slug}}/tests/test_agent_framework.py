"""The Agent Framework front: the same core as the AutoGen client, behind ``BaseChatClient``."""

from __future__ import annotations

import asyncio
import importlib
import json
import threading
from pathlib import Path
from typing import Any, cast

import pytest
from agent_framework import Agent, ChatResponse, Content, Message, tool
from autogen_core.models import SystemMessage, UserMessage
from pydantic import BaseModel

from {{ cookiecutter.package_name }} import {{ cookiecutter.agent_framework_client_class_name }} as ChatClient
from {{ cookiecutter.package_name }} import {{ cookiecutter.client_class_name }} as Client
from {{ cookiecutter.package_name }}._core._defaults import DEFAULT_CAPABILITIES

SYSTEM = "You are a helpful assistant."
TASK = "Say hello."
cities: list[str] = []


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    cities.append(city)
    return f"Sunny in {city}."


class City(BaseModel):
    name: str
    population: int


def _text(response: ChatResponse) -> str:
    return "".join(c.text or "" for m in response.messages for c in m.contents if c.type == "text")


def _client(model: Path, **config: Any) -> ChatClient:
    return ChatClient(**{"model_name": str(model), "max_new_tokens": 24, "do_sample": False, **config})


async def test_an_answer_is_the_autogen_clients_answer_with_exact_usage(
    tiny_model_path: Path,
) -> None:
    autogen = Client(model_name=str(tiny_model_path), max_new_tokens=24, do_sample=False)
    client = _client(tiny_model_path)
    try:
        expected = await autogen.create(
            [SystemMessage(content=SYSTEM), UserMessage(content=TASK, source="user")]
        )
        response = await client.get_response(
            [Message("system", [SYSTEM]), Message("user", [TASK])]
        )
    finally:
        await client.close()
        await autogen.close()
    assert isinstance(response, ChatResponse)
    assert _text(response) == expected.content
    assert response.finish_reason == expected.finish_reason
    assert response.usage_details is not None
    assert response.usage_details["input_token_count"] == expected.usage.prompt_tokens
    assert response.usage_details["output_token_count"] == expected.usage.completion_tokens
    assert response.usage_details["total_token_count"] == (
        expected.usage.prompt_tokens + expected.usage.completion_tokens
    )


async def test_streamed_text_is_the_answer_and_the_last_update_has_usage(
    tiny_model_path: Path,
) -> None:
    client = _client(tiny_model_path)
    try:
        whole = await client.get_response([Message("user", [TASK])])
        stream = client.get_response([Message("user", [TASK])], stream=True)
        updates = [update async for update in stream]
        final = await stream.get_final_response()
    finally:
        await client.close()
    texts = [c.text or "" for update in updates for c in update.contents if c.type == "text"]
    assert len(texts) > 1
    # Exactly the answer's text (ChatResponse.text strips it: compare the contents).
    assert "".join(texts) == _text(whole) == _text(final)
    assert final.usage_details == whole.usage_details
    assert updates[-1].finish_reason == whole.finish_reason


TOOLS = pytest.mark.skipif(
    not DEFAULT_CAPABILITIES["function_calling"], reason="generated without function calling"
)


@TOOLS
async def test_an_agent_runs_the_tool_it_is_required_to_call(tiny_model_path: Path) -> None:
    client = _client(tiny_model_path, max_new_tokens=48)
    cities.clear()
    try:
        agent = Agent(client=client, instructions=SYSTEM, tools=[get_weather])
        result = await agent.run(
            "What is the weather in Paris?", options={"tool_choice": "required"}
        )
    finally:
        await client.close()
    calls = [c for m in result.messages for c in m.contents if c.type == "function_call"]
    results = [c for m in result.messages for c in m.contents if c.type == "function_result"]
    assert len(calls) == len(results) == 1  # required once; then the agent answers freely
    assert calls[0].name == "get_weather"
    arguments = calls[0].parse_arguments()
    assert arguments is not None
    assert cities == [arguments["city"]]
    assert results[0].result == f"Sunny in {cities[0]}."


@TOOLS
async def test_an_agent_streams_its_forced_call_and_the_tool_runs(tiny_model_path: Path) -> None:
    client = _client(tiny_model_path, max_new_tokens=48)
    cities.clear()
    try:
        agent = client.as_agent(tools=[get_weather])
        stream = agent.run(
            "Weather in Rome?", stream=True, options={"tool_choice": "required"}
        )
        updates = [update async for update in stream]
    finally:
        await client.close()
    calls = [c for u in updates for c in u.contents if c.type == "function_call"]
    assert [call.name for call in calls] == ["get_weather"]
    assert len(cities) == 1


@TOOLS
async def test_a_named_tool_choice_forces_that_tool(tiny_model_path: Path) -> None:
    client = _client(tiny_model_path, max_new_tokens=48)
    cities.clear()
    try:
        response = await client.get_response(
            [Message("user", ["Anything."])],
            options={
                "tools": [get_weather],
                "tool_choice": {"mode": "required", "required_function_name": "get_weather"},
                "temperature": 1.0,
                "seed": 3,
            },
        )
    finally:
        await client.close()
    # The client's function invocation layer ran the call, then asked the model again.
    (call,) = [c for c in response.messages[0].contents if c.type == "function_call"]
    assert call.name == "get_weather"
    city = json.loads(str(call.arguments))["city"]
    results = [c for m in response.messages for c in m.contents if c.type == "function_result"]
    assert [r.result for r in results] == [f"Sunny in {city}."]


@pytest.mark.skipif(
    not DEFAULT_CAPABILITIES["structured_output"], reason="generated without structured output"
)
async def test_structured_output_validates_into_the_model(tiny_model_path: Path) -> None:
    client = _client(tiny_model_path, max_new_tokens=60)
    try:
        response = await client.get_response(
            [Message("user", ["A city, as JSON."])],
            options={"response_format": City, "temperature": 1.0, "seed": 1},
        )
        agent = client.as_agent(instructions="Answer with a city.")
        result = await agent.run("A city?", options={"response_format": City, "seed": 2})
        schema = City.model_json_schema()
        raw = await client.get_response(
            [Message("user", ["A city."])], options={"response_format": schema}
        )
    finally:
        await client.close()
    assert isinstance(response.value, City)
    assert City.model_validate_json(response.text) == response.value
    assert isinstance(result.value, City)
    assert City.model_validate_json(raw.text)


async def test_reasoning_comes_apart_from_the_text_streamed_or_not(tiny_model_path: Path) -> None:
    from scripting import scripted_args
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_path)
    client = _client(tiny_model_path, max_new_tokens=40)

    def options() -> Any:
        return scripted_args(tokenizer, "<think>", "Let me see.", "</think>", "Fine, thanks.")

    try:
        response = await client.get_response([Message("user", [TASK])], options=options())
        stream = client.get_response([Message("user", [TASK])], stream=True, options=options())
        updates = [update async for update in stream]
    finally:
        await client.close()
    contents = response.messages[0].contents
    assert [(c.type, c.text) for c in contents] == [
        ("text_reasoning", "Let me see."),
        ("text", "Fine, thanks."),
    ]
    streamed = [c for u in updates for c in u.contents if c.type in ("text", "text_reasoning")]
    assert "".join(c.text or "" for c in streamed if c.type == "text") == "Fine, thanks."
    assert [c.text for c in streamed if c.type == "text_reasoning"] == ["Let me see."]


async def test_cancelling_the_request_stops_the_model(tiny_model_path: Path) -> None:
    client = _client(tiny_model_path, max_new_tokens=4000)
    try:
        task = asyncio.ensure_future(
            client.get_response([Message("user", [TASK])], options=cast(Any, {"min_new_tokens": 4000}))
        )
        await asyncio.sleep(1.0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        done = client._chat.total_usage().completion_tokens
        await asyncio.sleep(0.5)
        assert client._chat.total_usage().completion_tokens == done < 4000
    finally:
        await client.close()


async def test_both_fronts_share_one_model_and_each_closes_alone(tiny_model_path: Path) -> None:
    before = set(threading.enumerate())
    # A prefix cache size no other test uses: a model of this test's own.
    autogen = Client(model_name=str(tiny_model_path), max_new_tokens=4, prefix_cache_mb=9)
    client = ChatClient(model_name=str(tiny_model_path), max_new_tokens=4, prefix_cache_mb=9)
    assert client._chat.model is autogen._chat.model
    await autogen.create([UserMessage(content=TASK, source="user")])
    threads = set(threading.enumerate()) - before
    assert len(threads) == 1  # one engine thread for both
    await autogen.close()
    response = await client.get_response([Message("user", [TASK])])
    assert response.usage_details is not None
    assert response.usage_details["output_token_count"] == 4
    assert all(thread.is_alive() for thread in threads)
    await client.close()
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads)


@TOOLS
async def test_on_a_vllm_server_it_answers_and_forces_calls_as_locally(
    tiny_model_path: Path, vllm_url: str
) -> None:
    local = _client(tiny_model_path, max_new_tokens=48)
    remote = _client(tiny_model_path, max_new_tokens=48, base_url=vllm_url)
    cities.clear()
    try:
        assert remote.service_url() == vllm_url
        messages = [Message("user", [TASK])]
        here, there = await local.get_response(messages), await remote.get_response(messages)
        assert _text(there) == _text(here)
        assert there.usage_details == here.usage_details
        agent = remote.as_agent(tools=[get_weather])
        result = await agent.run("Weather?", options={"tool_choice": "required"})
    finally:
        await local.close()
        await remote.close()
    results = [c for m in result.messages for c in m.contents if c.type == "function_result"]
    assert [r.result for r in results] == [f"Sunny in {city}." for city in cities]
    assert len(cities) == 1


@pytest.mark.skipif(
    DEFAULT_CAPABILITIES["function_calling"], reason="generated with function calling"
)
async def test_tools_are_refused_clearly_without_function_calling(tiny_model_path: Path) -> None:
    from {{ cookiecutter.package_name }} import CapabilityError

    client = _client(tiny_model_path)
    try:
        with pytest.raises(CapabilityError, match="does not support tools"):
            await client.get_response([Message("user", [TASK])], options={"tools": [get_weather]})
    finally:
        await client.close()


async def test_the_client_round_trips_through_a_dict(tiny_model_path: Path) -> None:
    client = _client(tiny_model_path, do_sample=True, temperature=0.7, tool_choice="required")
    data = client.to_dict()
    again = ChatClient.from_dict(data)
    try:
        assert again.config == client.config
        assert json.loads(json.dumps(data)) == data  # plain JSON
        assert again.function_invocation_configuration == client.function_invocation_configuration
    finally:
        await again.close()
        await client.close()


async def test_unsupported_requests_are_refused_naming_the_option(tiny_model_path: Path) -> None:
    from agent_framework.exceptions import ChatClientInvalidRequestException

    client = _client(tiny_model_path)
    try:
        with pytest.raises(ChatClientInvalidRequestException, match="frequency_penalty"):
            await client.get_response([Message("user", [TASK])], options={"frequency_penalty": 1.0})
        with pytest.raises(ChatClientInvalidRequestException, match="downloads nothing"):
            await client.get_response(
                [Message("user", [Content.from_uri("https://example.com/a.png", media_type="image/png")])]
            )
        with pytest.raises(ValueError, match="not_a_setting"):
            await client.get_response([Message("user", [TASK])], options=cast(Any, {"not_a_setting": 1}))
        with pytest.raises(ValueError, match=r"messages\[0\] holds a lone surrogate"):
            await client.get_response([Message("user", ["bad \ud800 text"])])
    finally:
        await client.close()


@pytest.mark.skipif(not DEFAULT_CAPABILITIES["vision"], reason="generated without vision")
async def test_an_image_reaches_the_model_as_the_autogen_clients_does(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    import io

    from autogen_core import Image as AutoGenImage
    from PIL import Image
    build = importlib.import_module("tiny_vision_models").build_tiny_vision_model
    path = build(tmp_path_factory.mktemp("vision"))
    pixels = Image.new("RGB", (40, 30), (200, 30, 30))
    png = io.BytesIO()
    pixels.save(png, format="PNG")
    autogen = Client(model_name=str(path), max_new_tokens=6, do_sample=False)
    client = ChatClient(model_name=str(path), max_new_tokens=6, do_sample=False)
    try:
        expected = await autogen.create(
            [UserMessage(content=["What is this?", AutoGenImage(pixels)], source="user")]
        )
        message = Message("user", ["What is this?", Content.from_data(png.getvalue(), "image/png")])
        response = await client.get_response([message])
    finally:
        await client.close()
        await autogen.close()
    assert response.usage_details is not None
    assert response.usage_details["input_token_count"] == expected.usage.prompt_tokens
    assert _text(response) == expected.content
