"""The config's default ``tool_choice``: what a request that leaves it at "auto" gets.

Agents rarely pass ``tool_choice`` (AgentChat's ``AssistantAgent`` never does, only "none"
for its reflection), so forcing tools from an agent is a config setting.
"""

from __future__ import annotations

from collections.abc import Sequence

from ._types import ForcedTool, ToolChoice


def request_tool_choice(default: str, tool_names: Sequence[str], asked: ToolChoice) -> ToolChoice:
    """The ``tool_choice`` of a request: ``asked``, or ``default`` when ``asked`` is "auto".

    A request without tools keeps "auto" (nothing to force). A tool name in ``default``
    forces that tool.

    Raises:
        ValueError: ``default`` names no tool of the request.
    """
    if asked != "auto" or not tool_names or default == "auto":
        return asked
    if default == "required":
        return "required"
    if default == "none":
        return "none"
    if default in tool_names:
        return ForcedTool(default)
    names = ", ".join(repr(name) for name in tool_names)
    raise ValueError(
        f"The config's tool_choice {default!r} names no tool of this request (it has {names}): "
        "give one of them, 'required' for any, or 'auto'."
    )
