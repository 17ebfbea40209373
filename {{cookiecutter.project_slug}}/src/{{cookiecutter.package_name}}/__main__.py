"""Try the client from the shell: ``python -m {{ cookiecutter.package_name }} "Hello!"``."""

from __future__ import annotations

import argparse
import asyncio
import sys

from autogen_core.models import CreateResult, SystemMessage, UserMessage

from ._client import {{ cookiecutter.client_class_name }} as Client
from ._model_info import DEFAULT_MODEL_NAME


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m {{ cookiecutter.package_name }}",
        description="Send one prompt to the model and stream the answer.",
    )
    parser.add_argument("prompt", help="the user message; '-' reads it from standard input")
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
    return parser


async def _run(arguments: argparse.Namespace) -> int:
    prompt = sys.stdin.read() if arguments.prompt == "-" else arguments.prompt
    client = Client(
        model_name=arguments.model,
        max_new_tokens=arguments.max_new_tokens,
        do_sample=arguments.temperature is not None,
        temperature=arguments.temperature,
        device=arguments.device,
        local_files_only=arguments.local_files_only,
    )
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


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m {{ cookiecutter.package_name }}``."""
    return asyncio.run(_run(_parser().parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
