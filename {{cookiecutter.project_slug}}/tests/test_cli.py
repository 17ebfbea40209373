"""The command line: the offline demo, and failures as one clear line (or a traceback)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }} import DEFAULT_MODEL_INFO, ModelLoadError
from {{ cookiecutter.package_name }}.__main__ import main

PACKAGE = main.__module__.removesuffix(".__main__")


def test_demo_shows_streaming_token_counts_tools_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    info = DEFAULT_MODEL_INFO
    saved = tmp_path / "tiny"
    assert main(["demo", "--save", str(saved)]) == 0
    out = capsys.readouterr().out
    assert "RANDOM weights" in out
    streamed = re.search(r"(\d+) chunks, .* prompt tokens (\d+) \(count_tokens says (\d+)\)", out)
    assert streamed is not None, out
    assert int(streamed[1]) > 0
    assert streamed[2] == streamed[3]
    call = re.search(r"get_weather\((.*)\) -> '(\w+): sunny for (\d) day\(s\)\.'", out)
    assert (call is not None) is info["function_calling"], out
    if call is not None:
        arguments = json.loads(call[1])
        assert arguments["city"] == call[2] in {"Paris", "Tokyo", "Lima"}
        assert 1 <= arguments["days"] == int(call[3]) <= 5
    assert ("(function_calling=no: not generated" in out) is not info["function_calling"]
    assert ("(json_output=no: not generated" in out) is not info["json_output"]
    if info["structured_output"]:
        assert re.search(r"-> Forecast\(city='.*', sunny=(True|False), degrees=-?\d+\)", out), out
    elif info["json_output"]:
        assert re.search(r"-> \{.*\}$|cut off by max_new_tokens", out, re.MULTILINE), out
    assert f"--model {saved}" in out
    assert main(["Hello", "--model", str(saved), "--max-new-tokens", "3"]) == 0
    assert "completion tokens: 3" in capsys.readouterr().err


def test_a_missing_directory_is_one_line_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no" / "such-model"
    assert main(["Hi", "--model", str(missing)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    assert line.startswith(f"error: ModelLoadError: The model directory '{missing}' does not exist")
    assert line.endswith("[--debug shows the traceback]")
    with pytest.raises(ModelLoadError, match="does not exist"):
        main(["Hi", "--model", str(missing), "--debug"])


def test_bad_arguments_are_one_line(capsys: pytest.CaptureFixture[str], tiny_model_path: Path) -> None:
    assert main(["Hi", "--model", str(tiny_model_path), "--max-new-tokens", "0"]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("error: ValidationError: max_new_tokens: Input should be greater than")
    assert f"(model '{tiny_model_path}')" in line


@pytest.fixture
def hanging_up_hub() -> Iterator[tuple[str, list[str]]]:
    """A hub endpoint that hangs up on every request (a network error the hub library retries),
    and the request lines it saw."""
    server = socket.create_server(("127.0.0.1", 0))
    seen: list[str] = []

    def serve() -> None:
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return  # closed
            seen.append(connection.recv(1024).decode("latin-1").split("\r\n")[0])
            connection.close()

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}", seen
    server.close()


def test_an_unreachable_hub_fails_at_once_in_one_line(
    tmp_path: Path, hanging_up_hub: tuple[str, list[str]]
) -> None:
    endpoint, requests = hanging_up_hub
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("HF_", "TRANSFORMERS_"))
    }
    env.update(HF_ENDPOINT=endpoint, HF_HOME=str(tmp_path / "hf-home"))
    done = subprocess.run(
        [sys.executable, "-m", PACKAGE, "Hi", "--model", "no-such-org/no-such-model"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    assert errors[0].startswith(
        f"error: ModelLoadError: Cannot reach the HuggingFace hub at {endpoint} "
        "to get 'no-such-org/no-such-model'"
    )
    assert "Traceback" not in done.stderr
    # One request, bounded by HF_HUB_ETAG_TIMEOUT: not huggingface_hub's five retries per file
    # (about a minute) that transformers' loading makes when the hub cannot be reached.
    model_requests = [line for line in requests if "/no-such-org/no-such-model/" in line]
    assert model_requests == [
        "HEAD /no-such-org/no-such-model/resolve/main/config.json HTTP/1.1"
    ], requests


def test_help_and_usage_errors_answer_without_torch() -> None:
    """``--help``, a bad flag and a missing model are answered before torch is imported."""
    script = (
        "import sys\n"
        f"from {PACKAGE}.__main__ import main\n"
        "codes = []\n"
        "for argv in (['--help'], ['Hi', '--bogus'], ['demo', '--bogus']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit as done:\n"
        "        codes.append(done.code)\n"
        "codes.append(main(['Hi', '--model', './no/such/model']))\n"
        "print(codes, 'torch' in sys.modules, 'transformers' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.stdout.splitlines()[-1] == "[0, 2, 2, 1] False False", done.stderr
    assert "does not exist" in done.stderr
    parse_only = f"import sys\nfrom {PACKAGE}.__main__ import main\n" + (
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted({'pydantic', 'autogen_core', 'huggingface_hub'} & set(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", parse_only], capture_output=True, text=True, timeout=120
    )
    assert done.stdout.splitlines()[-1] == "[]", done.stderr  # --help is argparse alone


def test_every_documented_error_is_public_from_the_package_root() -> None:
    import builtins

    import {{ cookiecutter.package_name }} as package

    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"\b([A-Z]\w*(?:Error|Warning))\b", readme))
    documented -= {*dir(builtins), "ValidationError"}  # Python's and pydantic's own
    assert documented <= set(package.__all__)
    for name in package.__all__:
        value = getattr(package, name)
        assert not isinstance(value, type) or value.__name__ == name
    assert issubclass(package.ServerError, RuntimeError)
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        package.nothing  # noqa: B018
