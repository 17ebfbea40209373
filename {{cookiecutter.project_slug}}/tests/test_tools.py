"""Tool calling: parsers, tool choice, forced calls, streaming, history and an agent loop."""

from __future__ import annotations

import json
import shutil
import sys
import threading
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, cast

import pytest
import torch
import xgrammar as xgr
from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.messages import (
    TextMessage,
    ToolCallExecutionEvent,
    ToolCallRequestEvent,
)
from autogen_core import CancellationToken, FunctionCall
from autogen_core.models import (
    AssistantMessage,
    CreateResult,
    FunctionExecutionResult,
    FunctionExecutionResultMessage,
    LLMMessage,
    SystemMessage,
    UserMessage,
)
from autogen_core.tools import FunctionTool, ParametersSchema, Tool, ToolSchema
from pydantic import BaseModel, ConfigDict, Field
from scripting import scripted_args
from tiny_models import build_tiny_model, template_text
from transformers import AutoTokenizer, BatchEncoding, LogitsProcessor, PreTrainedTokenizerBase

from {{ cookiecutter.package_name }} import CapabilityError, MalformedToolCallWarning
from {{ cookiecutter.package_name }} import {{ cookiecutter.client_class_name }} as Client
from {{ cookiecutter.package_name }}._text import ResponseParser
from {{ cookiecutter.package_name }}._tool_grammar import GrammarCache, call_structural_tag
from {{ cookiecutter.package_name }}._tool_parsers import (
    FORMATS,
    MalformedToolCallError,
    ParsedCall,
    arguments_json,
    detect_format,
    parse_hermes,
    parse_llama3,
    parse_mistral,
)

TEMPLATES = {"hermes": "chatml_tools", "llama3": "llama3_tools", "mistral": "mistral_tools"}
SEEDS = range(12)


# -- Tools: a ToolSchema dict and a FunctionTool, both with bounded arguments ------------------


class WeatherArgs(BaseModel):
    """What ``get_weather`` accepts: the same constraints as its JSON schema."""

    model_config = ConfigDict(extra="forbid", strict=True)
    city: str = Field(max_length=12)
    days: int = Field(ge=1, le=7)
    unit: Literal["celsius", "fahrenheit"]


WEATHER = ToolSchema(
    name="get_weather",
    description="Weather forecast for a city.",
    parameters=ParametersSchema(
        type="object",
        properties={
            "city": {"type": "string", "maxLength": 12},
            "days": {"type": "integer", "minimum": 1, "maximum": 7},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        required=["city", "days", "unit"],
        additionalProperties=False,
    ),
)


def local_time(zone: Annotated[Literal["UTC", "CET", "JST"], "time zone"]) -> str:
    """The local time in a time zone."""
    return f"12:00 {zone}"


TIME = FunctionTool(local_time, description="The local time in a time zone.")
TOOLS: list[Tool | ToolSchema] = [WEATHER, TIME]
ASK = UserMessage(content="What is the weather in Paris?", source="user")


def assert_valid(call: FunctionCall) -> None:
    """The call names a known tool and its arguments validate against that tool's schema."""
    assert isinstance(call.arguments, str)
    if call.name == "get_weather":
        WeatherArgs.model_validate_json(call.arguments)
    else:
        assert call.name == "local_time"
        TIME.args_type().model_validate_json(call.arguments, strict=True)


# -- Parsers on recorded outputs ---------------------------------------------------------------

QWEN_CALL = (
    "<tool_call>\n"
    '{"name": "get_current_temperature", "arguments": {"location": "San Francisco, CA, USA"}}\n'
    "</tool_call>"
)
QWEN_TWO_CALLS = (
    "I will check both cities.\n"
    '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}\n'
    "</tool_call>\n"
    '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Tokyo", "days": 1}}\n'
    "</tool_call>"
)
LLAMA_CALL = (
    '{"name": "get_current_conditions", "parameters": '
    '{"location": "San Francisco, CA", "unit": "Fahrenheit"}}'
)
MISTRAL_V3 = (
    '[TOOL_CALLS] [{"name": "get_current_weather", "arguments": '
    '{"location": "Paris, France", "format": "celsius"}}]'
)
MISTRAL_V11 = (
    '[TOOL_CALLS]get_weather[ARGS]{"city": "Paris"}[TOOL_CALLS]local_time[ARGS]{"zone": "CET"}'
)


def test_hermes_reads_qwen_calls() -> None:
    one = parse_hermes(QWEN_CALL)
    assert one.calls == [
        ParsedCall("get_current_temperature", '{"location": "San Francisco, CA, USA"}')
    ]
    assert one.text == ""
    two = parse_hermes(QWEN_TWO_CALLS)
    assert [json.loads(call.arguments)["city"] for call in two.calls] == ["Paris", "Tokyo"]
    assert two.text == "I will check both cities."


def test_hermes_reads_a_final_call_left_open_and_string_arguments() -> None:
    parsed = parse_hermes('<tool_call>{"name": "f", "arguments": "{\\"a\\": 1}"}')
    assert parsed.calls == [ParsedCall("f", '{"a": 1}')]
    assert parse_hermes('<tool_call>{"name": "now"}</tool_call>').calls == [ParsedCall("now", "{}")]


@pytest.mark.parametrize(
    "text",
    [
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"\n</tool_call>',
        '<tool_call>{"arguments": {}}</tool_call>',
        '<tool_call>{"name": "f", "arguments": [1, 2]}</tool_call>',
        '<tool_call>{"name": "f"} trailing words</tool_call>',
        "<tool_call>",
    ],
)
def test_hermes_rejects_what_it_cannot_read(text: str) -> None:
    with pytest.raises(MalformedToolCallError):
        parse_hermes(text)


def test_llama3_reads_json_calls() -> None:
    assert parse_llama3(LLAMA_CALL).calls == [
        ParsedCall(
            "get_current_conditions", '{"location": "San Francisco, CA", "unit": "Fahrenheit"}'
        )
    ]
    tagged = parse_llama3(
        '<|python_tag|>{"name": "a", "parameters": {}}; {"name": "b", "parameters": {"x": 1}}'
    )
    assert tagged.calls == [ParsedCall("a", "{}"), ParsedCall("b", '{"x": 1}')]
    assert tagged.text == ""


def test_llama3_leaves_ordinary_json_and_text_alone() -> None:
    answer = '{"name": "Ada", "born": 1815}'
    assert parse_llama3(answer).calls == []
    assert parse_llama3(answer).text == answer
    assert parse_llama3("Hello there!").calls == []
    with pytest.raises(MalformedToolCallError):
        parse_llama3('{"name": "get_weather", "parameters": {"city": ')


def test_mistral_reads_v3_and_v11_calls() -> None:
    assert parse_mistral(MISTRAL_V3).calls == [
        ParsedCall("get_current_weather", '{"location": "Paris, France", "format": "celsius"}')
    ]
    assert parse_mistral(MISTRAL_V11).calls == [
        ParsedCall("get_weather", '{"city": "Paris"}'),
        ParsedCall("local_time", '{"zone": "CET"}'),
    ]
    with_id = parse_mistral('[TOOL_CALLS]f[CALL_ID]a1b2c3d4e[ARGS]{"x": 2}')
    assert with_id.calls == [ParsedCall("f", '{"x": 2}')]
    bare = parse_mistral(MISTRAL_V3.removeprefix("[TOOL_CALLS]"))
    assert [call.name for call in bare.calls] == ["get_current_weather"]
    assert parse_mistral("[1, 2, 3]").calls == []
    with pytest.raises(MalformedToolCallError):
        parse_mistral('[TOOL_CALLS][{"name": "f", "arguments": {"a": }}]')


def test_formats_are_detected_from_chat_templates() -> None:
    for expected, template in TEMPLATES.items():
        text = template_text(template)
        assert detect_format(text) == expected
    assert detect_format(None) == "hermes"
    assert detect_format({"default": "", "tool_use": "[TOOL_CALLS]"}) == "mistral"


def test_arguments_become_a_json_object_string() -> None:
    assert arguments_json({"a": "é"}) == '{"a": "é"}'
    assert arguments_json("") == "{}"
    for bad in ("not json", "[1]", 3):
        with pytest.raises(MalformedToolCallError):
            arguments_json(bad)


# -- The client --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny random models whose chat templates teach each call format."""
    return {
        name: build_tiny_model(
            tmp_path_factory.mktemp(f"tiny-{name}"),
            chat_template=template,
            special_tokens=["[TOOL_CALLS]"] if name == "mistral" else [],
        )
        for name, template in TEMPLATES.items()
    }


@pytest.fixture(scope="module")
async def clients(model_paths: dict[str, Path]) -> AsyncIterator[dict[str, Client]]:
    """A greedy client per format, with room for a whole forced call."""
    made = {
        name: Client(model_name=str(path), max_new_tokens=160, do_sample=False)
        for name, path in model_paths.items()
    }
    yield made
    for client in made.values():
        await client.close()


@pytest.fixture(scope="module")
def tool_client(clients: dict[str, Client]) -> Client:
    return clients["hermes"]


@pytest.fixture(scope="module")
def tokenizer(model_paths: dict[str, Path]) -> PreTrainedTokenizerBase:
    return AutoTokenizer.from_pretrained(model_paths["hermes"])


def chat_tools(tools: Sequence[Tool | ToolSchema]) -> list[dict[str, Any]]:
    schemas = [tool if isinstance(tool, dict) else tool.schema for tool in tools]
    return [{"type": "function", "function": dict(schema)} for schema in schemas]


def template_ids(
    tokenizer: PreTrainedTokenizerBase,
    chat: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None = None,
) -> list[int]:
    encoding = tokenizer.apply_chat_template(
        chat,
        tools=cast(list[dict[Any, Any] | Callable[..., Any]] | None, tools),
        add_generation_prompt=True,
        return_dict=True,
    )
    assert isinstance(encoding, BatchEncoding)
    return list(encoding["input_ids"])


def decode(tokenizer: PreTrainedTokenizerBase, token_ids: list[int]) -> str:
    """Text of ``token_ids`` with the special tokens, as the model wrote it."""
    text = tokenizer.decode(token_ids, skip_special_tokens=False)
    assert isinstance(text, str)
    return text


async def test_tools_render_through_the_template_and_count(
    tool_client: Client, tokenizer: PreTrainedTokenizerBase
) -> None:
    expected = template_ids(
        tokenizer, [{"role": "user", "content": ASK.content}], chat_tools(TOOLS)
    )
    text = decode(tokenizer, expected)
    assert '"name": "get_weather"' in text
    assert '"name": "local_time"' in text
    assert tool_client.count_tokens([ASK], tools=TOOLS) == len(expected)
    assert tool_client.count_tokens([ASK], tools=TOOLS) > tool_client.count_tokens([ASK])
    assert tool_client.model_info["function_calling"] is True
    result = await tool_client.create([ASK], tools=TOOLS, extra_create_args={"max_new_tokens": 1})
    assert result.usage.prompt_tokens == len(expected)


async def test_auto_reads_calls_with_unique_ids_and_text_as_thought(
    tool_client: Client, tokenizer: PreTrainedTokenizerBase
) -> None:
    args = scripted_args(tokenizer, "<think>", "Two cities.", "</think>", "\n\n", QWEN_TWO_CALLS)
    result = await tool_client.create([ASK], tools=TOOLS, extra_create_args=args)
    assert result.finish_reason == "function_calls"
    assert isinstance(result.content, list)
    assert [call.name for call in result.content] == ["get_weather", "get_weather"]
    assert [json.loads(call.arguments) for call in result.content] == [
        {"city": "Paris", "days": 2},
        {"city": "Tokyo", "days": 1},
    ]
    assert len({call.id for call in result.content}) == 2
    assert result.thought == "Two cities.\n\nI will check both cities."


async def test_auto_text_answer_stays_text(
    tool_client: Client, tokenizer: PreTrainedTokenizerBase
) -> None:
    args = scripted_args(tokenizer, "It is sunny in Paris.")
    result = await tool_client.create([ASK], tools=TOOLS, extra_create_args=args)
    assert result.content == "It is sunny in Paris."
    assert result.finish_reason == "stop"


async def test_unreadable_call_comes_back_as_text_with_a_warning(
    tool_client: Client, tokenizer: PreTrainedTokenizerBase
) -> None:
    broken = '<tool_call>\n{"name": "get_weather", "arguments": {"city": \n</tool_call>'
    args = scripted_args(tokenizer, broken)
    with pytest.warns(MalformedToolCallWarning, match="returned as text"):
        result = await tool_client.create([ASK], tools=TOOLS, extra_create_args=args)
    assert result.content == broken
    assert result.finish_reason == "stop"


async def test_none_renders_no_tools_and_reads_no_calls(
    tool_client: Client, tokenizer: PreTrainedTokenizerBase
) -> None:
    args = scripted_args(tokenizer, QWEN_CALL)
    result = await tool_client.create(
        [ASK], tools=TOOLS, tool_choice="none", extra_create_args=args
    )
    assert result.content == QWEN_CALL
    assert result.finish_reason == "stop"
    assert result.usage.prompt_tokens == tool_client.count_tokens([ASK])


@pytest.mark.parametrize("call_format", list(TEMPLATES))
async def test_required_forces_a_valid_call_on_every_seed(
    clients: dict[str, Client], call_format: str
) -> None:
    client = clients[call_format]
    names = set()
    for seed in SEEDS:
        result = await client.create(
            [ASK],
            tools=TOOLS,
            tool_choice="required",
            extra_create_args={"do_sample": True, "seed": seed},
        )
        assert result.finish_reason == "function_calls", result.content
        assert isinstance(result.content, list)
        assert len(result.content) == 1
        assert_valid(result.content[0])
        names.add(result.content[0].name)
    assert names == {"get_weather", "local_time"}


async def test_forced_call_grammar_is_built_on_the_worker_thread(
    clients: dict[str, Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = clients["hermes"]
    threads: list[str] = []
    original = xgr.Grammar.from_json_schema

    def recording(*args: Any, **kwargs: Any) -> xgr.Grammar:
        threads.append(threading.current_thread().name)
        return original(*args, **kwargs)

    monkeypatch.setattr(xgr.Grammar, "from_json_schema", recording)
    result = await client.create([ASK], tools=TOOLS, tool_choice="required")
    assert result.finish_reason == "function_calls"
    assert threads, "the tools' argument grammars were built"
    assert all(name.startswith(type(client).__name__) for name in threads), threads


@pytest.mark.parametrize("call_format", list(TEMPLATES))
async def test_a_specific_tool_forces_a_call_to_it(
    clients: dict[str, Client], call_format: str
) -> None:
    for seed in SEEDS:
        result = await clients[call_format].create(
            [ASK],
            tools=TOOLS,
            tool_choice=TIME,
            extra_create_args={"do_sample": True, "seed": seed, "temperature": 1.5},
        )
        assert isinstance(result.content, list)
        assert [call.name for call in result.content] == ["local_time"]
        assert_valid(result.content[0])


class SeenTokens(LogitsProcessor):
    """Keeps the token ids the model has seen at its last decoding step."""

    def __init__(self) -> None:
        self.ids: list[int] = []

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        self.ids = input_ids[0].tolist()
        return scores


@pytest.mark.parametrize("call_format", list(TEMPLATES))
async def test_forced_calls_are_written_in_the_model_format(
    clients: dict[str, Client], model_paths: dict[str, Path], call_format: str
) -> None:
    client, call_syntax = clients[call_format], FORMATS[call_format]  # type: ignore[index]
    seen = SeenTokens()  # also shows that a caller's logits processor still runs
    result = await client.create(
        [ASK], tools=TOOLS, tool_choice=TIME, extra_create_args={"logits_processor": [seen]}
    )
    assert isinstance(result.content, list)
    prompt = client.count_tokens([ASK], tools=TOOLS)
    tokenizer = AutoTokenizer.from_pretrained(model_paths[call_format])
    written = decode(tokenizer, seen.ids[prompt:])  # all of the answer but its final eos
    assert written.startswith(call_syntax.marker + call_syntax.opening("local_time"))
    assert written.endswith(call_syntax.closing)
    (call,) = result.content
    assert call_syntax.parse(written).calls == [ParsedCall(call.name, call.arguments)]


@pytest.mark.parametrize(
    ("tools", "tool_choice", "message"),
    [
        ([WEATHER], TIME, "'local_time', which is not among the tools given \\('get_weather'\\)"),
        ([], TIME, "not among the tools given \\(none\\)"),
        ([], "required", "needs tools"),
    ],
)
async def test_tool_choice_errors_are_clear(
    tool_client: Client,
    tools: list[Tool | ToolSchema],
    tool_choice: Tool | Literal["required"],
    message: str,
) -> None:
    with pytest.raises(ValueError, match=message):
        await tool_client.create([ASK], tools=tools, tool_choice=tool_choice)


async def test_missing_xgrammar_is_a_clear_error(
    model_paths: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "xgrammar", None)
    monkeypatch.delitem(sys.modules, "{{ cookiecutter.package_name }}._tool_grammar")
    client = Client(model_name=str(model_paths["hermes"]))
    try:
        with pytest.raises(
            CapabilityError, match=r"needs xgrammar: pip install '.*\[constrained\]'"
        ):
            await client.create([ASK], tools=TOOLS, tool_choice="required")
        result = await client.create([ASK], tools=TOOLS, extra_create_args={"max_new_tokens": 2})
        assert isinstance(result.content, str)  # auto needs no grammar
    finally:
        await client.close()


# -- Streaming ---------------------------------------------------------------------------------


async def stream(
    client: Client, messages: Sequence[LLMMessage], **kwargs: Any
) -> tuple[list[str], CreateResult]:
    chunks: list[str] = []
    async for item in client.create_stream(messages, **kwargs):
        if isinstance(item, CreateResult):
            return chunks, item
        chunks.append(item)
    raise AssertionError("no CreateResult at the end of the stream")


async def test_stream_holds_back_call_text(
    tool_client: Client, tokenizer: PreTrainedTokenizerBase
) -> None:
    args = scripted_args(tokenizer, "Let me ", "look.", "\n<tool", "_call>", QWEN_CALL[11:])
    chunks, result = await stream(tool_client, [ASK], tools=TOOLS, extra_create_args=args)
    assert "".join(chunks) == "Let me look.\n"
    assert isinstance(result.content, list)
    assert result.content[0].name == "get_current_temperature"
    assert result.thought == "Let me look."


async def test_stream_releases_held_text_when_it_is_no_call(
    tool_client: Client, tokenizer: PreTrainedTokenizerBase
) -> None:
    text = "Use <tool_call> tags <tool_call>{oops</tool_call> to call tools."
    with pytest.warns(MalformedToolCallWarning):
        chunks, result = await stream(
            tool_client, [ASK], tools=TOOLS, extra_create_args=scripted_args(tokenizer, text)
        )
    assert "".join(chunks) == result.content == text
    assert "".join(chunks[:-1]) == "Use "  # streamed as it came, up to the first marker
    assert chunks[-1] == text.removeprefix("Use ")  # the rest once the answer was known


async def test_stream_holds_back_a_call_that_opens_with_a_special_token(
    clients: dict[str, Client], model_paths: dict[str, Path]
) -> None:
    mistral = AutoTokenizer.from_pretrained(model_paths["mistral"])
    call = 'get_weather[ARGS]{"city": "Paris"}'
    args = scripted_args(mistral, "Sure. ", "[TOOL_CALLS]", call)
    chunks, result = await stream(clients["mistral"], [ASK], tools=TOOLS, extra_create_args=args)
    assert "get_weather" not in "".join(chunks)  # [TOOL_CALLS] is special, but still seen
    assert isinstance(result.content, list)
    assert result.content[0].name == "get_weather"
    assert json.loads(result.content[0].arguments) == {"city": "Paris"}


@pytest.mark.parametrize("call_format", list(TEMPLATES))
async def test_forced_stream_yields_no_call_text(
    clients: dict[str, Client], call_format: str
) -> None:
    chunks, result = await stream(clients[call_format], [ASK], tools=TOOLS, tool_choice="required")
    assert "".join(chunks) == ""
    assert isinstance(result.content, list)
    assert_valid(result.content[0])
    assert result.finish_reason == "function_calls"


# -- History: the tool loop through real chat templates -----------------------------------------


@pytest.mark.parametrize("call_format", list(TEMPLATES))
async def test_tool_loop_history_renders_through_the_template(
    clients: dict[str, Client], model_paths: dict[str, Path], call_format: str
) -> None:
    client = clients[call_format]
    first = await client.create([ASK], tools=TOOLS, tool_choice=TIME)
    assert isinstance(first.content, list)
    call = first.content[0]
    history: list[LLMMessage] = [
        SystemMessage(content="You are helpful."),
        ASK,
        AssistantMessage(content=first.content, source="assistant"),
        FunctionExecutionResultMessage(
            content=[
                FunctionExecutionResult(
                    content="12:00", name=call.name, call_id=call.id, is_error=False
                )
            ]
        ),
    ]
    tokenizer = AutoTokenizer.from_pretrained(model_paths[call_format])
    chat: list[dict[str, Any]] = [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": ASK.content},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": json.loads(call.arguments)},
                }
            ],
        },
        {"role": "tool", "content": "12:00", "tool_call_id": call.id, "name": call.name},
    ]
    expected = template_ids(tokenizer, chat, chat_tools(TOOLS))
    assert client.count_tokens(history, tools=TOOLS) == len(expected)
    text = decode(tokenizer, expected)
    assert json.dumps(json.loads(call.arguments)) in text
    assert "12:00" in text
    second = await client.create(history, tools=TOOLS, extra_create_args={"max_new_tokens": 4})
    assert second.usage.prompt_tokens == len(expected)


# -- The tokenizer's own response parser and the config ----------------------------------------

# A response template in the shape transformers ships for Qwen, but with <call> markers, so
# that only the tokenizer's parser (not the built-in Hermes one) can read the calls.
RESPONSE_TEMPLATE = {
    "defaults": {"role": "assistant"},
    "start_anchor": "<|im_start|>assistant\n",
    "fields": {
        "reasoning_content": {"open": "<think>", "close": "</think>", "content": "text"},
        "tool_calls": {
            "open_pattern": r"\s*<call>",
            "close": "</call>",
            "repeats": True,
            "content": "json",
            "transform": {"type": "function", "function": "{content}"},
        },
        "content": {"close_pattern": r"\s*(?:<\|im_end\|>|<\|endoftext\|>)", "content": "text"},
    },
}


@pytest.fixture(scope="module")
def response_template_model(
    model_paths: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    path = tmp_path_factory.mktemp("tiny-response-template") / "model"
    shutil.copytree(model_paths["hermes"], path)
    config_file = path / "tokenizer_config.json"
    config = json.loads(config_file.read_text(encoding="utf-8"))
    config_file.write_text(
        json.dumps({**config, "response_template": RESPONSE_TEMPLATE}), encoding="utf-8"
    )
    return path


async def test_the_tokenizer_response_parser_reads_calls(
    response_template_model: Path, tokenizer: PreTrainedTokenizerBase
) -> None:
    client = Client(model_name=str(response_template_model), do_sample=False)
    answer = 'Checking.<call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</call>'
    try:
        result = await client.create(
            [ASK], tools=TOOLS, extra_create_args=scripted_args(tokenizer, answer)
        )
        assert isinstance(result.content, list)
        assert [(c.name, json.loads(c.arguments)) for c in result.content] == [
            ("get_weather", {"city": "Oslo"})
        ]
        assert result.thought == "Checking."
        forced = await client.create([ASK], tools=TOOLS, tool_choice=TIME)
        assert isinstance(forced.content, list)  # forced calls use the built-in format
        assert_valid(forced.content[0])
    finally:
        await client.close()


async def test_configured_format_overrides_the_template(
    model_paths: dict[str, Path], tokenizer: PreTrainedTokenizerBase
) -> None:
    client = Client(model_name=str(model_paths["hermes"]), tool_call_format="llama3")
    try:
        result = await client.create(
            [ASK], tools=TOOLS, extra_create_args=scripted_args(tokenizer, LLAMA_CALL)
        )
        assert isinstance(result.content, list)
        assert result.content[0].name == "get_current_conditions"
        config = client.dump_component().config
        assert config["tool_call_format"] == "llama3"
    finally:
        await client.close()


def test_grammars_are_compiled_once_per_client(tokenizer: PreTrainedTokenizerBase) -> None:
    cache = GrammarCache(tokenizer)
    tag = call_structural_tag(
        tokenizer, FORMATS["hermes"], chat_tools([WEATHER]), starts_in_thought=False
    ).model_dump_json()
    first = cache.compile(tag, len(tokenizer), (2,))
    assert cache.compile(tag, len(tokenizer), (2,)) is first
    assert cache.compile(tag, len(tokenizer) + 8, (2,)) is not first


def test_forced_grammar_lets_open_reasoning_finish_first(
    tokenizer: PreTrainedTokenizerBase,
) -> None:
    tag = call_structural_tag(
        tokenizer, FORMATS["llama3"], chat_tools([TIME]), starts_in_thought=True
    ).model_dump_json()
    compiled = GrammarCache(tokenizer).compile(tag, len(tokenizer), (tokenizer.eos_token_id,))
    call = '{"name": "local_time", "parameters": {"zone": "JST"}}'
    matcher = xgr.GrammarMatcher(compiled)
    assert matcher.accept_string("Tokyo means JST.</think>\n\n" + call)
    assert matcher.accept_token(tokenizer.eos_token_id)
    assert matcher.is_terminated()
    wrong = xgr.GrammarMatcher(compiled)
    assert not wrong.accept_string('Hm.</think>\n\n{"name": "get_weather"')
    spaced = xgr.GrammarMatcher(compiled)  # arguments are written as json.dumps writes them
    assert not spaced.accept_string('Hm.</think>\n\n{"name": "local_time", "parameters": {"zone" :')


def test_response_parser_holds_back_from_a_marker_split_across_chunks() -> None:
    parser = ResponseParser(hold_from=["<tool_call>"])
    assert parser.feed("Let me look.<tool") == "Let me look."
    assert parser.feed('_call>{"name": "f"}') == ""
    assert parser.feed("</tool_call>") + parser.finish() == ""
    assert parser.release_held() == '<tool_call>{"name": "f"}</tool_call>'
    assert parser.content == 'Let me look.<tool_call>{"name": "f"}</tool_call>'
    plain = ResponseParser(hold_from=["<tool_call>"])
    assert plain.feed("a <tool") + plain.finish() == "a <tool"
    assert plain.release_held() == ""


# -- An AssistantAgent tool loop ---------------------------------------------------------------


class CallsToolsFirst(Client):
    """Turns ``tool_choice="auto"`` into ``"required"`` when tools are offered.

    AssistantAgent always asks with ``auto``; a random model would rarely call a tool on its
    own, so this makes the first turn a real, grammar-constrained call.
    """

    async def create(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = (),
        tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
        json_output: bool | type[BaseModel] | None = None,
        extra_create_args: Mapping[str, Any] = {},
        cancellation_token: CancellationToken | None = None,
    ) -> CreateResult:
        forced = "required" if tools and tool_choice == "auto" else tool_choice
        return await super().create(
            messages,
            tools=tools,
            tool_choice=forced,
            json_output=json_output,
            extra_create_args=extra_create_args,
            cancellation_token=cancellation_token,
        )


async def test_assistant_agent_calls_a_tool_and_answers_with_its_result(
    model_paths: dict[str, Path],
) -> None:
    calls: list[str] = []

    def local_time(zone: Annotated[Literal["UTC", "CET", "JST"], "time zone"]) -> str:
        """The local time in a time zone."""
        calls.append(zone)
        return f"12:00 {zone}"

    client = CallsToolsFirst(
        model_name=str(model_paths["hermes"]), max_new_tokens=48, do_sample=False
    )
    agent = AssistantAgent(
        "assistant", model_client=client, tools=[local_time], reflect_on_tool_use=True
    )
    try:
        result = await agent.run(task="What time is it in Tokyo?")
        request, execution, answer = result.messages[1:]
        assert isinstance(request, ToolCallRequestEvent)
        assert isinstance(execution, ToolCallExecutionEvent)
        assert isinstance(answer, TextMessage)
        (call,) = request.content
        (outcome,) = execution.content
        zone = json.loads(call.arguments)["zone"]
        assert calls == [zone]
        assert (outcome.call_id, outcome.content, outcome.is_error) == (
            call.id,
            f"12:00 {zone}",
            False,
        )
        history: list[LLMMessage] = [
            SystemMessage(content=agent._system_messages[0].content),
            UserMessage(content="What time is it in Tokyo?", source="user"),
            AssistantMessage(content=[call], source="assistant"),
            FunctionExecutionResultMessage(content=[outcome]),
        ]
        expected = await Client.create(client, history, tool_choice="none")
        assert answer.content == expected.content
    finally:
        await client.close()
