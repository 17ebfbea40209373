"""Configuration: validation, model_info, and the component round-trip."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from autogen_core import ComponentModel
from autogen_core.models import ChatCompletionClient
from pydantic import ValidationError

from {{ cookiecutter.package_name }} import DEFAULT_MODEL_INFO
from {{ cookiecutter.package_name }} import {{ cookiecutter.client_class_name }} as Client
from {{ cookiecutter.package_name }} import {{ cookiecutter.client_class_name }}Config as Config


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"max_new_tokens": 0}, "max_new_tokens"),
        ({"temperature": -0.5}, "temperature"),
        ({"top_p": 1.5}, "top_p"),
        ({"top_k": -1}, "top_k"),
        ({"repetition_penalty": 0}, "repetition_penalty"),
        ({"seed": -3}, "seed"),
        ({"stop": ["ok", ""]}, "stop"),
        ({"context_window": 0}, "context_window"),
        ({"model_name": "   "}, "model_name"),
        ({"dtype": "float8"}, "dtype"),
        ({"model_info": {"vision": False}}, "model_info"),
        ({"unknown_option": 1}, "unknown_option"),
        ({"do_sample": False, "temperature": 0.7}, "temperature"),
        ({"device": "cpu", "device_map": "auto"}, "device_map"),
    ],
)
def test_bad_values_are_refused_naming_the_field(fields: dict[str, Any], named: str) -> None:
    with pytest.raises(ValidationError, match=named):
        Config(**fields)


def test_the_client_validates_its_keyword_arguments(tiny_model_path: Path) -> None:
    with pytest.raises(ValidationError, match="max_new_tokens"):
        Client(model_name=str(tiny_model_path), max_new_tokens=-1)


async def test_model_info_defaults_to_the_answers_and_can_be_overridden(
    tiny_model_path: Path,
) -> None:
    client = Client(model_name=str(tiny_model_path))
    assert client.model_info == DEFAULT_MODEL_INFO
    assert client.capabilities == DEFAULT_MODEL_INFO
    override = {**DEFAULT_MODEL_INFO, "family": "my-family", "vision": False}
    custom = Client(model_name=str(tiny_model_path), model_info=override)
    assert custom.model_info == override
    await client.close()
    await custom.close()


async def test_dump_and_load_component_round_trip(tiny_model_path: Path) -> None:
    client = Client(
        model_name=str(tiny_model_path),
        max_new_tokens=7,
        temperature=0.5,
        top_k=3,
        do_sample=True,
        seed=11,
        stop=["\n\n"],
        context_window=512,
        local_files_only=True,
    )
    dumped = client.dump_component()
    assert dumped.provider == Client.component_provider_override
    assert dumped.component_type == "model"
    from_model = ChatCompletionClient.load_component(dumped)
    from_dict = ChatCompletionClient.load_component(dumped.model_dump())
    text = dumped.model_dump_json()  # as the README stores and loads it
    from_json = ChatCompletionClient.load_component(ComponentModel.model_validate_json(text))
    for loaded in (from_model, from_dict, from_json):
        assert isinstance(loaded, Client)
        assert loaded.dump_component().config == dumped.config
        assert loaded._to_config() == client._to_config()
        await loaded.close()
    await client.close()
