"""JSON mode (``json_output=True``): valid JSON from any model, streamed or not."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import pytest
import torch
from autogen_core.models import CreateResult, ModelInfo, UserMessage
from autogen_core.tools import FunctionTool
from pydantic import BaseModel, Field, RootModel, create_model
from transformers import LogitsProcessor

from {{ cookiecutter.package_name }} import CapabilityError
from {{ cookiecutter.package_name }} import {{ cookiecutter.client_class_name }} as Client
from {{ cookiecutter.package_name }}._core import _constrained as constrained
from {{ cookiecutter.package_name }}._core._constrained import CACHE_SIZE, Compilers, Grammar
from {{ cookiecutter.package_name }}._core._json_output import JsonOutput
from {{ cookiecutter.package_name }}._autogen._model_info import DEFAULT_MODEL_INFO

MESSAGES = [UserMessage(content="Describe the weather in Paris as JSON.", source="user")]
SEEDS = range(20)


@pytest.fixture(scope="module")
async def sampler(tiny_model_path: Path) -> AsyncIterator[Client]:
    """A sampling client: each seed gives a different random answer.

    Structured output is on whatever the answers were: some tests bound strings with a model.
    """
    info = ModelInfo(**{**DEFAULT_MODEL_INFO, "json_output": True, "structured_output": True})
    client = Client(
        model_name=str(tiny_model_path), max_new_tokens=200, do_sample=True, model_info=info
    )
    yield client
    await client.close()


class ShortText(RootModel[Annotated[str, Field(max_length=30)]]):
    """A JSON string of at most 30 characters."""


class TwelveCharacters(RootModel[Annotated[str, Field(min_length=12, max_length=12)]]):
    """A JSON string exactly as long as ``<|im_start|>``."""


def token_id(tiny_model_path: Path, token: str) -> int:
    from transformers import AutoTokenizer

    found = AutoTokenizer.from_pretrained(tiny_model_path).convert_tokens_to_ids(token)
    assert isinstance(found, int)
    return found


class Boost(LogitsProcessor):
    """Makes one token overwhelmingly likely wherever it is allowed; counts its calls."""

    def __init__(self, token_id: int) -> None:
        self.token_id = token_id
        self.calls = 0

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        self.calls += 1
        scores[:, self.token_id] += 1000.0
        return scores


async def test_json_mode_is_valid_across_seeds(sampler: Client) -> None:
    finished = 0
    for seed in SEEDS:
        result = await sampler.create(MESSAGES, json_output=True, extra_create_args={"seed": seed})
        assert isinstance(result.content, str)
        if result.finish_reason == "stop":
            assert isinstance(json.loads(result.content), dict), result.content
            finished += 1
        else:
            assert result.finish_reason == "length"
    assert finished >= 0.8 * len(SEEDS)


async def test_without_json_output_the_model_rarely_writes_json(sampler: Client) -> None:
    """The control for the test above: the constraint, not the model, makes the JSON."""
    parsed = 0
    for seed in range(10):
        result = await sampler.create(
            MESSAGES, extra_create_args={"seed": seed, "max_new_tokens": 40}
        )
        try:
            json.loads(str(result.content))
            parsed += 1
        except json.JSONDecodeError:
            pass
    assert parsed <= 1


async def test_json_output_false_is_unconstrained(sampler: Client) -> None:
    arguments = {"seed": 3, "max_new_tokens": 20}
    plain = await sampler.create(MESSAGES, extra_create_args=arguments)
    explicit = await sampler.create(MESSAGES, json_output=False, extra_create_args=arguments)
    assert explicit.content == plain.content


async def test_complete_json_ends_with_stop(client: Client) -> None:
    result = await client.create(
        MESSAGES, json_output=True, extra_create_args={"max_new_tokens": 200}
    )
    assert result.finish_reason == "stop"
    json.loads(str(result.content))
    assert result.usage.completion_tokens < 200


async def test_streamed_json_concatenates_to_the_content(sampler: Client) -> None:
    for seed in range(5):
        chunks: list[str] = []
        final: CreateResult | None = None
        async for item in sampler.create_stream(
            MESSAGES, json_output=True, extra_create_args={"seed": seed}
        ):
            if isinstance(item, CreateResult):
                final = item
            else:
                chunks.append(item)
        assert final is not None
        assert "".join(chunks) == final.content
        if final.finish_reason == "stop":
            assert len(chunks) > 1
            assert isinstance(json.loads(final.content), dict)


async def test_cut_off_json_reports_length(client: Client) -> None:
    result = await client.create(
        MESSAGES, json_output=True, extra_create_args={"max_new_tokens": 1}
    )
    assert result.finish_reason == "length"
    with pytest.raises(json.JSONDecodeError):
        json.loads(str(result.content))


async def test_stop_strings_do_not_cut_json(tiny_model_path: Path) -> None:
    client = Client(
        model_name=str(tiny_model_path), max_new_tokens=200, do_sample=False, stop=['"', "}"]
    )
    try:
        result = await client.create(MESSAGES, json_output=True)
        assert result.finish_reason == "stop"
        json.loads(str(result.content))
        plain = await client.create(MESSAGES)
        assert '"' not in str(plain.content)
        assert "}" not in str(plain.content)
    finally:
        await client.close()


async def boosted(
    client: Client, tiny_model_path: Path, token: str, answer: type[BaseModel]
) -> CreateResult:
    """An answer from a request whose own logits processor pushes ``token`` hard."""
    boost = Boost(token_id(tiny_model_path, token))
    result = await client.create(
        MESSAGES, json_output=answer, extra_create_args={"seed": 1, "logits_processor": [boost]}
    )
    assert boost.calls > 1  # the request's processor ran, next to the grammar's
    assert result.finish_reason == "stop"
    answer.model_validate_json(str(result.content))
    return result


async def test_think_tags_never_enter_the_json(sampler: Client, tiny_model_path: Path) -> None:
    """ "<think>" is an added token: never text in a grammar, so neither content nor thought."""
    result = await boosted(sampler, tiny_model_path, "<think>", ShortText)
    assert "<think>" not in str(result.content)
    assert result.thought is None


async def test_special_tokens_never_enter_the_json(sampler: Client, tiny_model_path: Path) -> None:
    """Decoding drops special tokens, so the grammar must never allow them inside a string."""
    result = await boosted(sampler, tiny_model_path, "<|im_start|>", TwelveCharacters)
    assert len(TwelveCharacters.model_validate_json(str(result.content)).root) == 12


async def test_grammar_work_happens_once_and_off_the_event_loop(
    tiny_model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Preparing the schema, building the vocabulary view and compiling the grammar never run
    on the event loop; the view is built once and the grammar twice (the requests' matcher,
    and the ending walks' own: see ``GrammarState.ending``), on the engine's thread."""
    threads: dict[str, list[str]] = {"vocabulary": [], "grammar": []}
    vocabulary, compile_grammar = constrained._llguidance_tokenizer, constrained.grammar_definition
    loop_thread = threading.current_thread().name

    def vocabulary_spy(*args: Any) -> Any:
        threads["vocabulary"].append(threading.current_thread().name)
        return vocabulary(*args)

    def compile_spy(kind: Any, text: str) -> str:
        threads["grammar"].append(threading.current_thread().name)
        return compile_grammar(kind, text)

    monkeypatch.setattr(constrained, "_llguidance_tokenizer", vocabulary_spy)
    monkeypatch.setattr(constrained, "grammar_definition", compile_spy)
    # A prefix cache size no other test uses: a model of its own, with no vocabulary built yet.
    client = Client(
        model_name=str(tiny_model_path), max_new_tokens=64, do_sample=False, prefix_cache_mb=13
    )
    try:
        for _ in range(3):
            await client.create(MESSAGES, json_output=True)
        async for _item in client.create_stream(MESSAGES, json_output=True):
            pass
    finally:
        await client.close()
    engine = type(client).__name__
    for work, names in threads.items():
        assert loop_thread not in names, (work, names)
        on_engine = [name for name in names if name.startswith(engine)]
        expected = 2 if work == "grammar" else 1  # cached after the first request
        assert len(on_engine) == expected, (work, names)


async def test_json_output_with_tools_is_refused(client: Client) -> None:
    def forecast(city: str) -> str:
        return f"Sunny in {city}"

    tool = FunctionTool(forecast, description="The weather forecast for a city.")
    # Without tool calling in the project, the tools themselves are refused first.
    with pytest.raises(CapabilityError, match=r"cannot be combined with tools|does not support tools"):
        await client.create(MESSAGES, tools=[tool], json_output=True)


@pytest.mark.parametrize(
    ("strategy", "named"),
    [({"num_beams": 2}, "num_beams"), ({"prompt_lookup_num_tokens": 3}, "prompt_lookup_num_tokens")],
)
async def test_whole_sequence_strategies_are_refused_up_front(
    client: Client, strategy: dict[str, int], named: str
) -> None:
    beside = asyncio.ensure_future(client.create(MESSAGES, json_output=True))
    with pytest.raises(ValueError, match=named):
        await client.create(MESSAGES, json_output=True, extra_create_args=strategy)
    assert isinstance((await asyncio.wait_for(beside, 300)).content, str)  # beside: answered


async def test_json_output_needs_the_capability(tiny_model_path: Path) -> None:
    info = ModelInfo(**{**DEFAULT_MODEL_INFO, "json_output": False, "structured_output": False})
    client = Client(model_name=str(tiny_model_path), model_info=info)
    try:
        with pytest.raises(CapabilityError, match="json_output is false"):
            await client.create(MESSAGES, json_output=True)
        with pytest.raises(CapabilityError, match="json_output is false"):
            async for _item in client.create_stream(MESSAGES, json_output=True):
                pass
    finally:
        await client.close()


async def test_structured_output_off_refuses_models_but_allows_json(tiny_model_path: Path) -> None:
    class Answer(BaseModel):
        text: str

    info = ModelInfo(**{**DEFAULT_MODEL_INFO, "json_output": True, "structured_output": False})
    client = Client(model_name=str(tiny_model_path), model_info=info, max_new_tokens=100)
    try:
        with pytest.raises(CapabilityError, match="structured_output is false"):
            await client.create(MESSAGES, json_output=Answer)
        result = await client.create(MESSAGES, json_output=True)
        json.loads(str(result.content))
    finally:
        await client.close()


async def test_json_output_must_be_a_bool_or_model(client: Client) -> None:
    with pytest.raises(TypeError, match="BaseModel subclass"):
        await client.create(MESSAGES, json_output=dict)  # type: ignore[arg-type]


def test_missing_llguidance_names_the_extra(
    tiny_model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from transformers import AutoTokenizer

    from {{ cookiecutter.package_name }}._core._config import GenerationSettings

    monkeypatch.setitem(sys.modules, "llguidance", None)  # import llguidance now raises
    json_output = JsonOutput(AutoTokenizer.from_pretrained(tiny_model_path))
    with pytest.raises(CapabilityError, match=r"pip install '.*\[constrained\]'"):
        json_output.constrain(True, GenerationSettings(), {}, capabilities=DEFAULT_MODEL_INFO)


def test_converted_schemas_are_kept_for_the_64_latest_answers(tiny_model_path: Path) -> None:
    from transformers import AutoTokenizer

    info = ModelInfo(**{**DEFAULT_MODEL_INFO, "structured_output": True})
    json_output = JsonOutput(AutoTokenizer.from_pretrained(tiny_model_path))
    answers = [create_model(f"Answer{index}", value=(int, ...)) for index in range(80)]
    schemas = [json_output.schema(answer, info) for answer in answers]
    assert len(json_output._schemas) == CACHE_SIZE == 64
    assert json_output._schemas.get(answers[0]) is None  # the oldest went first
    assert json_output._schemas.get(answers[-1]) == schemas[-1]
    assert json_output.schema(answers[0], info) == schemas[0]  # prepared again when needed


def test_compiled_grammars_are_kept_for_the_64_latest(tiny_model_path: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_path)
    compilers = Compilers(tokenizer)
    grammars = [
        Grammar("json_schema", json.dumps({"type": "integer", "maximum": n}), tokenizer)
        for n in range(70)
    ]
    for grammar in grammars:
        compilers.compile(grammar, len(tokenizer))
    assert len(compilers._compiled) == CACHE_SIZE
    key = ("json_schema", grammars[-1].text, len(tokenizer))
    kept = compilers._compiled.get(key)
    assert kept is not None
    compilers.compile(grammars[-1], len(tokenizer))
    assert compilers._compiled.get(key) is kept  # reused: each request gets a copy of it
    assert compilers._compiled.get(("json_schema", grammars[0].text, len(tokenizer))) is None


def test_model_info_reports_json_output() -> None:
    assert DEFAULT_MODEL_INFO["json_output"] is True


async def test_json_mode_is_valid_on_both_engines(engine_client: Client) -> None:
    """The same grammar in this process and as a vLLM server's structured outputs."""
    for seed in range(3):
        result = await engine_client.create(
            MESSAGES,
            json_output=True,
            extra_create_args={"seed": seed, "do_sample": True, "max_new_tokens": 40},
        )
        assert result.finish_reason == "stop"  # closed in time, on a server too
        assert isinstance(json.loads(str(result.content)), dict)
