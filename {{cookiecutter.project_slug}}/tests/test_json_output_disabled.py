"""A project generated without JSON output refuses ``json_output`` with a clear error."""

from __future__ import annotations

import pytest
from autogen_core.models import UserMessage

from {{ cookiecutter.package_name }} import {{ cookiecutter.client_class_name }} as Client
from {{ cookiecutter.package_name }} import CapabilityError
from {{ cookiecutter.package_name }}._autogen._model_info import DEFAULT_MODEL_INFO

MESSAGES = [UserMessage(content="Answer in JSON.", source="user")]


def test_model_info_reports_no_json_output() -> None:
    assert DEFAULT_MODEL_INFO["json_output"] is False


async def test_create_refuses_json_output(client: Client) -> None:
    with pytest.raises(CapabilityError, match="generated without JSON output"):
        await client.create(MESSAGES, json_output=True)


async def test_create_stream_refuses_json_output(client: Client) -> None:
    with pytest.raises(CapabilityError, match="json_output=yes"):
        async for _item in client.create_stream(MESSAGES, json_output=True):
            pass


async def test_json_output_false_is_plain_text(client: Client) -> None:
    result = await client.create(MESSAGES, json_output=False)
    assert isinstance(result.content, str)
