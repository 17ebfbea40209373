"""A project generated without structured output refuses pydantic models as ``json_output``."""

from __future__ import annotations

import pytest
from autogen_core.models import UserMessage
from pydantic import BaseModel

from {{ cookiecutter.package_name }} import {{ cookiecutter.client_class_name }} as Client
from {{ cookiecutter.package_name }} import CapabilityError
from {{ cookiecutter.package_name }}._autogen._model_info import DEFAULT_MODEL_INFO

MESSAGES = [UserMessage(content="Fill in the form.", source="user")]


class Answer(BaseModel):
    text: str


def test_model_info_reports_no_structured_output() -> None:
    assert DEFAULT_MODEL_INFO["structured_output"] is False


async def test_create_refuses_a_model(client: Client) -> None:
    with pytest.raises(CapabilityError, match=r"structured output|JSON output"):
        await client.create(MESSAGES, json_output=Answer)


async def test_create_stream_refuses_a_model(client: Client) -> None:
    with pytest.raises(CapabilityError, match=r"structured output|JSON output"):
        async for _item in client.create_stream(MESSAGES, json_output=Answer):
            pass
