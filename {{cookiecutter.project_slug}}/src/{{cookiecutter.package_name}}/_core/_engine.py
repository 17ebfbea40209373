"""The engine interface: the one seam between the client and whatever runs the model.

The client does its own work (prompts through the chat template, token counts, stop strings,
reading tool calls and reasoning) and hands the engine token ids; the engine gives back
generated token ids. The local engine (``_local_engine``) runs the model in this process.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

from ._generation import GenerationOutput, GenerationRequest

T = TypeVar("T")

TokenCallback = Callable[[list[int]], None]
"""Called on the caller's event loop with each batch of new token ids, in order."""


class Generation(Protocol):
    """One request in an engine."""

    def cancel(self) -> None:
        """Stop the request (from any thread; idempotent). The engine stops within a step."""

    async def result(self) -> GenerationOutput:
        """The output, once the request ended (``cancelled`` says whether it was cancelled).

        Cancelling the task that awaits this does not cancel the request: call :meth:`cancel`
        and await this again to know what the model produced before it stopped.

        Raises:
            Exception: the request failed (bad settings, the model failed, the engine closed).
        """


class Engine(Protocol):
    """Runs generation requests; all methods are called on the event loop."""

    def submit(self, request: GenerationRequest, on_tokens: TokenCallback | None) -> Generation:
        """Start ``request``; ``on_tokens`` gets its tokens as they come."""

    async def call(self, function: Callable[..., T], *args: object) -> T:
        """Run ``function(*args)`` where the engine runs its torch work (image preprocessing)."""

    async def close(self) -> None:
        """Stop: waiting requests fail with ``ClientClosedError``, running ones are cancelled."""
