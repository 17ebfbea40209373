"""The config's default ``tool_choice``: what a request that leaves it at "auto" gets.

AgentChat's ``AssistantAgent`` never passes ``tool_choice`` (only "none" for its reflection),
so forcing tools from an agent is a config setting.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from autogen_core.tools import Tool, ToolSchema

ToolChoice = Tool | Literal["auto", "required", "none"]


def _name(tool: Tool | ToolSchema) -> str:
    return tool["name"] if isinstance(tool, dict) else tool.name


def request_tool_choice(
    default: str, tools: Sequence[Tool | ToolSchema], asked: ToolChoice
) -> ToolChoice:
    """The ``tool_choice`` of a request: ``asked``, or ``default`` when ``asked`` is "auto".

    A request without tools keeps "auto" (nothing to force). A tool name in ``default``
    forces that tool: a ``Tool`` object of the request (as agents pass), not a ``ToolSchema``.

    Raises:
        ValueError: ``default`` names no ``Tool`` object among the request's tools.
    """
    if asked != "auto" or not tools or default == "auto":
        return asked
    if default == "required":
        return "required"
    if default == "none":
        return "none"
    for tool in tools:
        if _name(tool) == default and not isinstance(tool, dict):
            return tool
    names = ", ".join(repr(_name(tool)) for tool in tools)
    raise ValueError(
        f"The config's tool_choice {default!r} names no tool of this request (it has {names}): "
        "give one of them, 'required' for any, or 'auto'."
    )
