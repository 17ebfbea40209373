"""Try the client from the shell.

``python -m <package> "Hello!"`` streams one answer of the model; ``python -m <package> demo``
shows the client at work on a tiny model built offline. A failure is one line on standard
error and exit code 1; ``--debug`` shows the traceback instead.

Nothing heavy is imported to parse the arguments (``--help`` and usage errors answer at
once), and the config and the model's place are checked before torch and transformers are.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from typing import TYPE_CHECKING

from ._autogen._model_info import DEFAULT_MODEL_NAME

if TYPE_CHECKING:
    from ._autogen._config import {{ cookiecutter.client_class_name }}Config as Config

PROG = f"python -m {__package__}"


def _prompt_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Send one prompt to the model and stream the answer. "
        f"'{PROG} demo' shows the client on a tiny model built offline.",
    )
    parser.add_argument(
        "prompt", help="the user message; '-' reads it from standard input (so can 'demo' be)"
    )
    parser.add_argument(
        "--model", default=DEFAULT_MODEL_NAME, help="model id or local path (default: %(default)s)"
    )
    parser.add_argument("--system", help="a system message to send first")
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument(
        "--temperature", type=float, help="sample at this temperature (default: greedy)"
    )
    parser.add_argument("--device", help="torch device, such as cpu or cuda:0")
    parser.add_argument("--local-files-only", action="store_true", help="never contact the hub")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of failures")
    return parser


def _demo_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"{PROG} demo",
        description="Build a tiny random model offline and show the client on it: streaming, "
        "token counts, a tool call and JSON output. Nothing is downloaded.",
    )
    parser.add_argument("--save", type=Path, help="keep the tiny model in this directory")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of failures")
    return parser


def _config(arguments: argparse.Namespace) -> Config:
    """The client's config from the arguments, checked, its model's place too (no torch yet)."""
    from ._autogen._config import {{ cookiecutter.client_class_name }}Config
    from ._core._model_source import check_model_source

    config = {{ cookiecutter.client_class_name }}Config(
        model_name=arguments.model,
        max_new_tokens=arguments.max_new_tokens,
        do_sample=arguments.temperature is not None,
        temperature=arguments.temperature,
        device=arguments.device,
        local_files_only=arguments.local_files_only,
    )
    check_model_source(config)
    return config


async def _answer(arguments: argparse.Namespace, config: Config) -> int:
    from autogen_core.models import CreateResult, SystemMessage, UserMessage
    from huggingface_hub.utils import (  # type: ignore[attr-defined]
        disable_progress_bars,
    )
    from transformers.utils import logging as transformers_logging

    from ._autogen._client import {{ cookiecutter.client_class_name }} as Client

    disable_progress_bars()  # no download or loading bars in the answer
    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    prompt = sys.stdin.read() if arguments.prompt == "-" else arguments.prompt
    client = Client(**config.model_dump(exclude_unset=True))
    messages = [UserMessage(content=prompt, source="user")]
    if arguments.system:
        messages.insert(0, SystemMessage(content=arguments.system))  # type: ignore[arg-type]
    try:
        async for chunk in client.create_stream(messages):
            if isinstance(chunk, CreateResult):
                result = chunk
            else:
                print(chunk, end="", flush=True)
        print()
        if result.thought:
            print(f"[thought] {result.thought}", file=sys.stderr)
        usage = result.usage
        print(
            f"[{result.finish_reason}] prompt tokens: {usage.prompt_tokens}, "
            f"completion tokens: {usage.completion_tokens}",
            file=sys.stderr,
        )
    finally:
        await client.close()
    return 0


def one_line(error: BaseException) -> str:
    """``error`` as one line: its type and message (pydantic's field errors joined)."""
    from pydantic import ValidationError

    if isinstance(error, ValidationError):
        message = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}"
            for problem in error.errors()
        )
    else:
        message = str(error)
    return f"{type(error).__name__}: {' '.join(message.split())}"


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m <package>``: the exit code."""
    argv = sys.argv[1:] if argv is None else argv
    demo = argv[:1] == ["demo"]
    parser = _demo_parser() if demo else _prompt_parser()
    arguments = parser.parse_args(argv[1:] if demo else argv)
    try:
        if demo:
            from ._autogen._demo import run_demo

            return asyncio.run(run_demo(arguments.save))
        # A bad value or a missing model is refused here, before torch loads.
        return asyncio.run(_answer(arguments, _config(arguments)))
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        if arguments.debug:
            raise
        detail = one_line(error)
        if not demo and arguments.model not in detail:
            detail += f" (model {arguments.model!r})"
        print(f"error: {detail} [--debug shows the traceback]", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
