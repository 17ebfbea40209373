"""Every Python example of the README runs as written, on the tiny models.

Each block is taken from the README as it is, its model id (the project's default model) and
its vLLM address swapped for the tiny model's path and a test server, and run as a script in
a thread of its own (``asyncio.run`` needs a thread without an event loop).
"""

from __future__ import annotations

import ast
import importlib
import re
import threading
from pathlib import Path
from typing import Any

import pytest

from {{ cookiecutter.package_name }} import DEFAULT_MODEL_NAME

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", README.read_text(encoding="utf-8"), re.M | re.S)
VLLM_EXAMPLE_URL = "http://127.0.0.1:8000/v1"


class _Swap(ast.NodeTransformer):
    """Replaces string constants by others."""

    def __init__(self, replacements: dict[str, str]) -> None:
        self.replacements = replacements

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        if isinstance(node.value, str) and node.value in self.replacements:
            return ast.copy_location(ast.Constant(self.replacements[node.value]), node)
        return node


def _run_in_thread(code: Any, namespace: dict[str, Any]) -> None:
    failure: list[BaseException] = []

    def run() -> None:
        try:
            exec(code, namespace)
        except BaseException as error:
            failure.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]


def _model_for(block: str, request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    if "PIL" not in block:
        path: Path = request.getfixturevalue("tiny_model_path")
        return path
    from PIL import Image

    Image.new("RGB", (32, 24), (200, 120, 40)).save(tmp_path / "photo.jpg")
    builder = importlib.import_module("tiny_vision_models").build_tiny_vision_model
    vision: Path = builder(tmp_path / "tiny-vision")
    return vision


def test_the_readme_has_examples() -> None:
    assert len(BLOCKS) >= 2
    assert all("asyncio.run(main())" in block for block in BLOCKS)


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{n}" for n in range(len(BLOCKS))])
def test_each_readme_example_runs_as_written(
    block: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    replacements = {DEFAULT_MODEL_NAME: str(_model_for(block, request, tmp_path))}
    if VLLM_EXAMPLE_URL in block:
        replacements[VLLM_EXAMPLE_URL] = request.getfixturevalue("vllm_url")
    tree = _Swap(replacements).visit(ast.parse(block))
    assert DEFAULT_MODEL_NAME in block  # the example names the model it loads
    monkeypatch.chdir(tmp_path)
    _run_in_thread(compile(tree, "README.md", "exec"), {"__name__": "__main__"})
    assert capsys.readouterr().out.strip()  # each example prints what it got
