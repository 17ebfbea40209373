"""Models that cannot be loaded are refused before any loading, naming what is wrong."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from autogen_core.models import UserMessage

from {{ cookiecutter.package_name }} import ModelLoadError
from {{ cookiecutter.package_name }} import {{ cookiecutter.client_class_name }} as Client


def _copy_without(source: Path, target: Path, *patterns: str) -> Path:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(*patterns))
    return target


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda tmp, model: tmp / "absent", r"The model directory '.*absent' does not exist"),
        (lambda tmp, model: model / "config.json", r"'.*config.json' is a file"),
        (
            lambda tmp, model: _copy_without(model, tmp / "no-config", "config.json"),
            r"The model directory '.*no-config' has no config.json",
        ),
        (
            lambda tmp, model: _copy_without(model, tmp / "no-tokenizer", "tokenizer*", "*.jinja"),
            r"The tokenizer of '.*no-tokenizer' is empty: the model has no tokenizer files",
        ),
    ],
    ids=["missing", "file", "no-config", "no-tokenizer"],
)
def test_bad_model_directories_are_refused_up_front(
    tmp_path: Path, tiny_model_path: Path, make: Callable[[Path, Path], Path], problem: str
) -> None:
    path = make(tmp_path, tiny_model_path)
    with pytest.raises(ModelLoadError, match=problem):
        Client(model_name=str(path))


def test_an_uncached_hub_id_is_refused_when_downloads_are_off() -> None:
    with pytest.raises(ModelLoadError, match="neither a local directory nor in the HuggingFace cache"):
        Client(model_name="no-such-org/no-such-model", local_files_only=True)


def test_a_device_this_torch_lacks_is_refused_in_one_line(tiny_model_path: Path) -> None:
    import torch

    if torch.version.cuda is not None or torch.version.hip is not None:
        pytest.skip("this torch has CUDA: the refusal is for a CPU build")
    with pytest.raises(ModelLoadError) as refused:
        Client(model_name=str(tiny_model_path), device="cuda:0")
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith("device 'cuda:0' needs a CUDA (or ROCm) build of torch")
    assert f"this torch ({torch.__version__}) has no cuda support" in message
    with pytest.raises(ModelLoadError, match="device 'gpu' is not a torch device"):
        Client(model_name=str(tiny_model_path), device="gpu")


async def test_a_plain_device_needs_no_accelerate(tiny_model_path: Path) -> None:
    client = Client(model_name=str(tiny_model_path), device="cpu", max_new_tokens=2)
    try:
        result = await client.create([UserMessage(content="Hi", source="user")])
    finally:
        await client.close()
    assert result.usage.completion_tokens <= 2
