"""Tool calling: parsers, tool choice, forced calls, streaming, history and an agent loop."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import sys
import threading
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, cast

import pytest
import torch
import llguidance
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
from tiny_models import build_tiny_model
from tool_templates import (
    LLAMA_CALL,
    QWEN_CALL,
    QWEN_TWO_CALLS,
    SPECIAL_TOKENS,
    TEMPLATES,
    render_answer,
)
from transformers import AutoTokenizer, BatchEncoding, LogitsProcessor, PreTrainedTokenizerBase

from {{ cookiecutter.package_name }} import CapabilityError, MalformedToolCallWarning
from {{ cookiecutter.package_name }} import {{ cookiecutter.client_class_name }} as Client
from {{ cookiecutter.package_name }}._core._constrained import Compilers, Grammar
from {{ cookiecutter.package_name }}._core._text import ResponseParser
from {{ cookiecutter.package_name }}._core import _constrained as constrained
from {{ cookiecutter.package_name }}._core._tool_format import Vocabulary, call_grammar
from {{ cookiecutter.package_name }}._core._tool_parsers import ID_SLOT, NAME_SLOT, ParsedCall, read_calls
from {{ cookiecutter.package_name }}._autogen._messages import to_chat_messages

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


# -- The client --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny random models whose chat templates teach each call format."""
    return {
        name: build_tiny_model(
            tmp_path_factory.mktemp(f"tiny-{name}"), chat_template=template, special_tokens=special
        )
        for name, (template, special) in TEMPLATES.items()
    }


@pytest.fixture(scope="module")
async def clients(model_paths: dict[str, Path]) -> AsyncIterator[dict[str, Client]]:
    """A greedy client per format, with room for a whole forced call (DeepSeek's DSML takes
    150 tokens of the tiny tokenizer for the shortest call)."""
    made = {
        name: Client(model_name=str(path), max_new_tokens=256, do_sample=False)
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
            extra_create_args={"do_sample": True, "seed": seed, "temperature": 4.0},
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
    original = constrained.grammar_definition

    def recording(kind: Literal["json_schema", "lark"], text: str) -> str:
        if kind == "lark":  # the call's grammar (its schemas are checked on the loop)
            threads.append(threading.current_thread().name)
        return original(kind, text)

    monkeypatch.setattr(constrained, "grammar_definition", recording)
    only_here = ToolSchema(
        name="only_in_this_test", parameters=ParametersSchema(type="object", properties={})
    )
    result = await client.create([ASK], tools=[only_here], tool_choice="required")
    assert result.finish_reason == "function_calls"
    assert threads, "the call's grammar was compiled"
    assert all(name.startswith(type(client).__name__) for name in threads), threads


async def test_readme_example_gives_one_valid_call_on_every_seed(
    model_paths: dict[str, Path],
) -> None:
    """An unbounded string argument, the default token budget, a random model: the grammar
    closes the call in time, so every answer is exactly one valid call."""

    def get_weather(city: str) -> str:
        """The weather in a city."""
        return f"Sunny in {city}."

    weather = FunctionTool(get_weather, description="The weather in a city.")
    client = Client(model_name=str(model_paths["hermes"]), do_sample=True)
    assert client._config.max_new_tokens == 512
    lengths = []
    try:
        for seed in range(20):
            result = await client.create(
                [ASK], tools=[weather], tool_choice="required", extra_create_args={"seed": seed}
            )
            assert result.finish_reason == "function_calls", result.content
            assert isinstance(result.content, list)
            (call,) = result.content
            assert call.name == "get_weather"
            assert isinstance(json.loads(call.arguments)["city"], str)
            lengths.append(result.usage.completion_tokens)
    finally:
        await client.close()
    assert max(lengths) <= 512
    assert max(lengths) > 100, "no call needed closing: the budget was not tested"


@pytest.mark.parametrize("tool_choice", ["required", "named"])
async def test_forced_calls_are_valid_on_both_engines(
    engine_client: Client, tool_choice: str
) -> None:
    """The same grammar in this process and as a vLLM server's structured outputs; both close
    an unbounded string argument within a small budget (a server's cut-off answer is
    completed here)."""

    def get_weather(city: str) -> str:
        """The weather in a city."""
        return f"Sunny in {city}."

    weather = FunctionTool(get_weather, description="The weather in a city.")
    choice: Tool | Literal["required"] = weather if tool_choice == "named" else "required"
    for seed in range(4):
        sampling = {"seed": seed, "do_sample": True, "temperature": 1.0, "top_k": 0}
        result = await engine_client.create(
            [ASK],
            tools=[weather, TIME],
            tool_choice=choice,
            extra_create_args={**sampling, "max_new_tokens": 48},
        )
        assert result.finish_reason == "function_calls", result.content
        assert result.usage.completion_tokens <= 48
        assert isinstance(result.content, list)
        (call,) = result.content
        if tool_choice == "named":
            assert call.name == "get_weather"
        arguments = json.loads(call.arguments)
        if call.name == "get_weather":
            assert isinstance(arguments["city"], str)
        else:
            assert call.name == "local_time"
            assert arguments["zone"] in ("UTC", "CET", "JST")


@pytest.mark.parametrize("call_format", list(TEMPLATES))
def test_server_gets_the_same_grammar_and_it_is_valid_for_the_vocabulary(
    clients: dict[str, Client], model_paths: dict[str, Path], call_format: str
) -> None:
    tokenizer = AutoTokenizer.from_pretrained(model_paths[call_format])
    tool_calling = clients[call_format]._chat.model.tool_calling
    text = call_grammar(
        tool_calling.format, chat_tools(TOOLS), Vocabulary(tokenizer), starts_in_thought=False
    )
    grammar = Grammar("lark", text, tokenizer)
    # The same grammar, in llguidance's dialect, which vLLM's auto backend gives llguidance.
    assert grammar.structured_outputs() == {"grammar": "%llguidance {}\n" + text}
    vocabulary = Compilers.of(tokenizer).vocabulary(len(tokenizer))
    problem = llguidance.LLMatcher.validate_grammar(
        llguidance.LLMatcher.grammar_from_lark(text), vocabulary
    )
    assert problem == "", problem


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


class Boost(LogitsProcessor):
    """Makes one token overwhelmingly likely wherever it is allowed."""

    def __init__(self, token_id: int) -> None:
        self.token_id = token_id

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        scores[:, self.token_id] += 1000.0
        return scores


@pytest.mark.parametrize(
    ("call_format", "marker"),
    [("hermes", "</tool_call>"), ("gemma4", "<tool_call|>"), ("gemma4", "<|tool_response>")],
)
async def test_markers_never_enter_forced_strings(
    clients: dict[str, Client], model_paths: dict[str, Path], call_format: str, marker: str
) -> None:
    """The README's failure: the string swallowed the call's closing marker."""
    tokenizer = AutoTokenizer.from_pretrained(model_paths[call_format])
    marker_id = tokenizer.convert_tokens_to_ids(marker)
    assert isinstance(marker_id, int)
    unbounded = FunctionTool(local_note, description="Keep a note.")
    for seed in range(3):
        result = await clients[call_format].create(
            [ASK],
            tools=[unbounded],
            tool_choice="required",
            extra_create_args={
                "seed": seed,
                "do_sample": True,
                "logits_processor": [Boost(marker_id)],
            },
        )
        assert result.finish_reason == "function_calls", result.content
        assert isinstance(result.content, list)
        (call,) = result.content
        note = json.loads(call.arguments)["text"]
        assert not any(m in note for m in client_markers(clients[call_format])), note


def local_note(text: str) -> str:
    """Keep a note."""
    return text


def client_markers(client: Client) -> tuple[str, ...]:
    return client._chat.model.tool_calling.markers


@pytest.mark.parametrize("call_format", list(TEMPLATES))
async def test_forced_calls_are_written_in_the_model_format(
    clients: dict[str, Client], model_paths: dict[str, Path], call_format: str
) -> None:
    client = clients[call_format]
    syntax = client._chat.model.tool_calling.format
    forced = syntax.after_prompt()  # as the model writes it after the prompt
    seen = SeenTokens()  # also shows that a caller's logits processor still runs
    result = await client.create(
        [ASK], tools=TOOLS, tool_choice=TIME, extra_create_args={"logits_processor": [seen]}
    )
    assert isinstance(result.content, list)
    prompt = client.count_tokens([ASK], tools=TOOLS)
    tokenizer = AutoTokenizer.from_pretrained(model_paths[call_format])
    written = decode(tokenizer, seen.ids[prompt:])  # all of the answer but its final eos
    between = forced.between.replace(NAME_SLOT, "local_time")  # a name written twice (ATEM)
    assert written.startswith(forced.calls_open + forced.call_open + "local_time" + between)
    ending = re.escape(syntax.call_close + syntax.calls_close).replace(ID_SLOT, "[A-Za-z0-9]{9}")
    assert re.search(ending + "$", written), written
    (call,) = result.content
    schemas = {"local_time": TIME.schema["parameters"]}
    parsed = read_calls(syntax.prompted + written, syntax, schemas)
    assert parsed.calls == [ParsedCall(call.name, call.arguments)]


@pytest.mark.parametrize("call_format", [name for name in TEMPLATES if name != "no_tools"])
async def test_calls_the_template_writes_are_read_back(
    clients: dict[str, Client], model_paths: dict[str, Path], call_format: str
) -> None:
    """The model's native calls, one and two, written by its own chat template (Gemma 4's
    ``<|"|>`` tokens survive decoding)."""
    tokenizer = AutoTokenizer.from_pretrained(model_paths[call_format])
    calls: list[tuple[str, dict[str, Any]]] = [  # arguments out of the schema's order
        ("get_weather", {"unit": "celsius", "city": 'Rio "RJ"', "days": 2}),
        ("local_time", {"zone": "CET"}),
    ]
    turns = clients[call_format]._chat.model.tool_calling.template.call_turns
    for wanted in (calls[:1], calls):
        answer = render_answer(tokenizer, wanted, call_turns=turns)
        args = {**scripted_args(tokenizer, answer), "max_new_tokens": 400}
        result = await clients[call_format].create([ASK], tools=TOOLS, extra_create_args=args)
        assert isinstance(result.content, list), answer
        assert [(c.name, json.loads(c.arguments)) for c in result.content] == wanted
        assert result.finish_reason == "function_calls"


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


@pytest.mark.parametrize(
    ("strategy", "named"),
    [({"num_beams": 2}, "num_beams must be 1"), ({"prompt_lookup_num_tokens": 3}, "prompt_lookup")],
)
async def test_forced_calls_refuse_whole_sequence_strategies(
    tool_client: Client, strategy: dict[str, int], named: str
) -> None:
    beside = asyncio.ensure_future(tool_client.create([ASK], tools=TOOLS, tool_choice="required"))
    with pytest.raises(ValueError, match=named):
        await tool_client.create(
            [ASK], tools=TOOLS, tool_choice="required", extra_create_args=strategy
        )
    assert (await asyncio.wait_for(beside, 300)).finish_reason == "function_calls"


async def test_missing_llguidance_is_a_clear_error(
    model_paths: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "llguidance", None)
    client = Client(model_name=str(model_paths["hermes"]))
    try:
        with pytest.raises(
            CapabilityError, match=r"needs llguidance: pip install '.*\[constrained\]'"
        ):
            await client.create([ASK], tools=TOOLS, tool_choice="required")
        result = await client.create([ASK], tools=TOOLS, extra_create_args={"max_new_tokens": 2})
        assert isinstance(result.content, str)  # auto needs no grammar
    finally:
        await client.close()


# -- Templates that render no tools, and no template at all -----------------------------------


async def test_without_a_chat_template_tools_are_counted_and_calls_forced(
    tiny_model_without_template_path: Path,
) -> None:
    client = Client(model_name=str(tiny_model_without_template_path), max_new_tokens=96)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_without_template_path)
    try:
        assert client.count_tokens([ASK], tools=TOOLS) > client.count_tokens([ASK]) + 50
        section = client._chat.model.tool_calling.tools_section(chat_tools(TOOLS))
        expected = tokenizer.encode(
            f"System: {section}\nUser: {ASK.content}\nAssistant:", add_special_tokens=False
        )
        assert client.count_tokens([ASK], tools=TOOLS) == len(expected)
        for seed in range(4):
            result = await client.create(
                [ASK],
                tools=TOOLS,
                tool_choice="required",
                extra_create_args={"seed": seed, "do_sample": True},
            )
            assert isinstance(result.content, list), result.content
            assert_valid(result.content[0])
        answer = '<tool_call>\n{"name": "local_time", "arguments": {"zone": "UTC"}}\n</tool_call>'
        read = await client.create(
            [ASK], tools=TOOLS, extra_create_args=scripted_args(tokenizer, " ", answer)
        )
        assert isinstance(read.content, list)
        assert read.content[0].name == "local_time"
    finally:
        await client.close()


async def test_a_template_without_tools_gets_them_and_the_calls_as_text(
    clients: dict[str, Client], model_paths: dict[str, Path]
) -> None:
    client = clients["no_tools"]
    tokenizer = AutoTokenizer.from_pretrained(model_paths["no_tools"])
    call = FunctionCall(id="a1B2c3D4e", name="local_time", arguments='{"zone": "JST"}')
    history: list[LLMMessage] = [
        SystemMessage(content="Be brief."),
        ASK,
        AssistantMessage(content=[call], source="assistant"),
        FunctionExecutionResultMessage(
            content=[FunctionExecutionResult(content="12:00", name=call.name, call_id=call.id)]
        ),
    ]
    section = client._chat.model.tool_calling.tools_section(chat_tools(TOOLS))
    written = '<tool_call>\n{"name": "local_time", "arguments": {"zone": "JST"}}\n</tool_call>'
    expected = template_ids(
        tokenizer,
        [
            {"role": "system", "content": f"Be brief.\n\n{section}"},
            {"role": "user", "content": ASK.content},
            {"role": "assistant", "content": written},
            {"role": "user", "content": "<tool_response>\n12:00\n</tool_response>"},
        ],
    )
    assert client.count_tokens(history, tools=TOOLS) == len(expected)
    assert "<tool_call>" in section
    assert '"name": "get_weather"' in section
    assert client.count_tokens(history) < len(expected)  # without tools: no section


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
    mistral = AutoTokenizer.from_pretrained(model_paths["mistral_v11"])
    call = 'get_weather[ARGS]{"city": "Paris"}'
    args = scripted_args(mistral, "Sure. ", "[TOOL_CALLS]", call)
    chunks, result = await stream(
        clients["mistral_v11"], [ASK], tools=TOOLS, extra_create_args=args
    )
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


@pytest.mark.parametrize("call_format", [name for name in TEMPLATES if name != "no_tools"])
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
    # Arguments as a dict (AutoGen keeps a JSON string), or in the form the template takes.
    # A template that renders no tools gets them in the system message (DeepSeek R1).
    turns = client._chat.model.tool_calling.template.call_turns
    expected = template_ids(tokenizer, *client._chat.model.tool_calling.prompt(chat, chat_tools(TOOLS)))
    assert expected == template_ids(tokenizer, turns.apply(chat), chat_tools(TOOLS)) or not (
        client._chat.model.tool_calling.template.renders_tools
    )
    assert client.count_tokens(history, tools=TOOLS) == len(expected)
    text = decode(tokenizer, expected)
    arguments = json.loads(call.arguments)
    written = render_answer(tokenizer, [(call.name, arguments)], [call.id], call_turns=turns)
    assert written.rstrip() in text
    assert "12:00" in text
    second = await client.create(history, tools=TOOLS, extra_create_args={"max_new_tokens": 4})
    assert second.usage.prompt_tokens == len(expected)


async def test_tools_the_template_fails_on_go_into_the_system_message(
    tmp_path: Path,
) -> None:
    """Command R+'s template reads each parameter's ``description``: tools without one make
    it fail, so they reach the model in the system message (with a warning). AutoGen's own
    tools have descriptions: those the template renders, and calls come in its syntax."""
    template = "command_r_tools"
    path = build_tiny_model(
        tmp_path / "command-r", chat_template=template, special_tokens=SPECIAL_TOKENS[template]
    )
    client = Client(model_name=str(path), max_new_tokens=160, do_sample=False)
    tokenizer = AutoTokenizer.from_pretrained(path)
    try:
        tool_calling = client._chat.model.tool_calling
        assert tool_calling.format.json_keys == ("tool_name", "parameters")
        chat = to_chat_messages([ASK])
        with pytest.warns(UserWarning, match="cannot render these tools.*description"):
            system_chat, rendered = tool_calling.prompt(chat, chat_tools([WEATHER]))
        assert rendered is None
        assert "get_weather" in system_chat[0]["content"]
        assert client.count_tokens([ASK], tools=[WEATHER]) > client.count_tokens([ASK])
        assert tool_calling.prompt(chat, chat_tools([TIME]))[1] == chat_tools([TIME])
        forced = await client.create([ASK], tools=[TIME], tool_choice="required")
        assert isinstance(forced.content, list)
        assert_valid(forced.content[0])
        answer = render_answer(tokenizer, [("local_time", {"zone": "CET"})])
        read = await client.create(
            [ASK], tools=[TIME], extra_create_args=scripted_args(tokenizer, answer)
        )
        assert isinstance(read.content, list), answer
        assert [(c.name, json.loads(c.arguments)) for c in read.content] == [
            ("local_time", {"zone": "CET"})
        ]
    finally:
        await client.close()


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


def test_grammars_are_compiled_once_per_vocabulary(
    tool_client: Client, tokenizer: PreTrainedTokenizerBase, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = call_grammar(
        tool_client._chat.model.tool_calling.format,
        chat_tools([WEATHER]),
        Vocabulary(tokenizer),
        starts_in_thought=False,
    )
    grammar = Grammar("lark", text, tokenizer)
    compiled: list[int] = []
    original = constrained.grammar_definition

    def counting(kind: Literal["json_schema", "lark"], text: str) -> str:
        compiled.append(1)
        return original(kind, text)

    monkeypatch.setattr(constrained, "grammar_definition", counting)
    compilers = Compilers.of(tokenizer)
    assert Compilers.of(tokenizer) is compilers
    first = compilers.compile(grammar, len(tokenizer))
    second = compilers.compile(grammar, len(tokenizer))
    assert second is not first  # each request starts from its own copy
    assert len(compiled) == 1
    compilers.compile(grammar, len(tokenizer) + 8)
    assert len(compiled) == 2


def test_forced_grammar_lets_open_reasoning_finish_first(
    clients: dict[str, Client], model_paths: dict[str, Path]
) -> None:
    tokenizer = AutoTokenizer.from_pretrained(model_paths["llama3"])
    text = call_grammar(
        clients["llama3"]._chat.model.tool_calling.format,
        chat_tools([TIME]),
        Vocabulary(tokenizer),
        starts_in_thought=True,
    )
    grammar = Grammar("lark", text, tokenizer)

    def accepts(answer: str, *, complete: bool = True) -> bool:
        matcher = Compilers.of(tokenizer).compile(grammar, len(tokenizer))
        ids = tokenizer.encode(answer, add_special_tokens=False)
        return bool(matcher.consume_tokens(ids) and (matcher.is_accepting() or not complete))

    call = '{"name": "local_time", "parameters": {"zone": "JST"}}'
    assert accepts("Tokyo means JST.</think>\n\n" + call)
    assert not accepts('Hm.</think>\n\n{"name": "get_weather"', complete=False)
    # Written as json.dumps writes it: no other whitespace between the argument tokens.
    assert accepts('Hm.</think>\n\n{"name": "local_time", "parameters": {"zone": ', complete=False)
    assert not accepts(
        'Hm.</think>\n\n{"name": "local_time", "parameters": {"zone" :', complete=False
    )


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
