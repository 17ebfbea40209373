"""Structured output (``json_output=<pydantic model>``): answers that validate, from any model."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.messages import StructuredMessage
from autogen_core.models import CreateResult, UserMessage
from pydantic import BaseModel, Field, ValidationError
from schema_models import SUPPORTED, UNSUPPORTED, Person

from {{ cookiecutter.package_name }} import {{ cookiecutter.client_class_name }} as Client
from {{ cookiecutter.package_name }} import InvalidAnswerError
from {{ cookiecutter.package_name }}._autogen._model_info import DEFAULT_MODEL_INFO

MESSAGES = [UserMessage(content="Fill in the form.", source="user")]


@pytest.fixture(scope="module")
async def sampler(tiny_model_path: Path) -> AsyncIterator[Client]:
    client = Client(model_name=str(tiny_model_path), max_new_tokens=320, do_sample=True)
    yield client
    await client.close()


class Verdict(BaseModel):
    """A small answer for the agent tests."""

    label: str = Field(max_length=10)
    confidence: float = Field(ge=0, le=1)


def test_model_info_reports_structured_output() -> None:
    assert DEFAULT_MODEL_INFO["structured_output"] is True


@pytest.mark.parametrize("name", sorted(SUPPORTED))
async def test_answers_validate_across_seeds(sampler: Client, name: str) -> None:
    model = SUPPORTED[name]
    finished = 0
    for seed in range(5):
        result = await sampler.create(MESSAGES, json_output=model, extra_create_args={"seed": seed})
        if result.finish_reason == "stop":
            model.model_validate_json(str(result.content))
            finished += 1
    assert finished >= 3, f"{finished} of 5 answers finished within the token budget"


async def test_streamed_answer_concatenates_and_validates(sampler: Client) -> None:
    chunks: list[str] = []
    final: CreateResult | None = None
    async for item in sampler.create_stream(
        MESSAGES, json_output=Person, extra_create_args={"seed": 4}
    ):
        if isinstance(item, CreateResult):
            final = item
        else:
            chunks.append(item)
    assert final is not None
    assert final.finish_reason == "stop"
    assert len(chunks) > 1
    assert "".join(chunks) == final.content
    Person.model_validate_json(final.content)


async def test_cut_off_answer_reports_length(sampler: Client) -> None:
    result = await sampler.create(
        MESSAGES, json_output=Person, extra_create_args={"seed": 0, "max_new_tokens": 8}
    )
    assert result.finish_reason == "length"
    with pytest.raises(ValidationError):
        Person.model_validate_json(str(result.content))


@pytest.mark.parametrize("name", sorted(UNSUPPORTED))
async def test_schemas_the_grammar_only_approximates_still_answer_validly(
    sampler: Client, name: str
) -> None:
    """Keywords the grammar cannot enforce are checked on the answer: what comes back
    validates, or the request fails with the last answer (never an invalid result)."""
    model, _ = UNSUPPORTED[name]
    valid = 0
    for seed in range(3):
        try:
            result = await sampler.create(
                MESSAGES, json_output=model, extra_create_args={"seed": seed}
            )
        except InvalidAnswerError as error:
            with pytest.raises(ValidationError):
                model.model_validate_json(error.answer)
            continue
        if result.finish_reason == "length":
            continue
        model.model_validate_json(str(result.content))
        valid += 1
    if name not in UNREACHABLE:  # there, every answer may be refused: never returned invalid
        assert valid >= 1, f"no answer of 3 validated for {name}"


UNREACHABLE = {"unreachable precision"}
"""Schemas the grammar library gets wrong, which the check catches: for a number in (0, 1e-9),
llguidance writes 0."""


@pytest.mark.parametrize("stream", [False, True])
async def test_assistant_agent_returns_a_structured_message(
    tiny_model_path: Path, stream: bool
) -> None:
    client = Client(model_name=str(tiny_model_path), max_new_tokens=120, do_sample=True, seed=0)
    try:
        agent = AssistantAgent(
            "judge", model_client=client, output_content_type=Verdict, model_client_stream=stream
        )
        result = await agent.run(task="Is the sky green? Answer with a verdict.")
    finally:
        await client.close()
    message = result.messages[-1]
    assert isinstance(message, StructuredMessage)
    assert isinstance(message.content, Verdict)
    assert 0 <= message.content.confidence <= 1


async def test_structured_output_validates_on_both_engines(engine_client: Client) -> None:
    """The same grammar in this process and as a vLLM server's structured outputs."""
    for seed in range(4):
        result = await engine_client.create(
            MESSAGES,
            json_output=Verdict,
            extra_create_args={"seed": seed, "do_sample": True, "max_new_tokens": 60},
        )
        assert result.finish_reason == "stop"  # closed in time, on a server too
        Verdict.model_validate_json(str(result.content))
