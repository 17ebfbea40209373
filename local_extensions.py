"""Jinja filters that render template answers as safe literals.

Answers are data: every free-text answer reaches Python, TOML or YAML source through one of
these filters, never pasted raw. Cookiecutter loads this module through ``_extensions`` in
``cookiecutter.json``.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from jinja2.ext import Extension


def python_literal(value: Any) -> str:
    """Render a str, bool or None answer as a Python literal (strings double-quoted)."""
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, str):
        return quoted_string(value)
    raise TypeError(f"cannot render {type(value).__name__} answer {value!r} as a Python literal")


def quoted_string(value: Any) -> str:
    """Render a str as a double-quoted string that is valid Python, TOML and YAML alike.

    Printable characters (non-ASCII letters included) stay as they are; quotes, backslashes
    and every other character are escaped with the escapes the three languages share.
    """
    if not isinstance(value, str):
        raise TypeError(f"cannot render {type(value).__name__} answer {value!r} as a string")
    parts = ['"']
    for char in value:
        if char in '"\\':
            parts.append("\\" + char)
        elif char == "\n":
            parts.append("\\n")
        elif char == "\t":
            parts.append("\\t")
        elif char.isprintable():
            parts.append(char)
        elif ord(char) <= 0xFFFF:
            parts.append(f"\\u{ord(char):04X}")
        else:
            parts.append(f"\\U{ord(char):08X}")
    parts.append('"')
    return "".join(parts)


def single_line(value: Any) -> str:
    """Collapse whitespace runs (newlines included) to single spaces, for Markdown headings."""
    return " ".join(str(value).split())


def template_directory() -> str:
    """The absolute path of the folder being rendered from.

    Cookiecutter renders the hooks inside the template's checkout, so there this is the
    checkout, wherever cookiecutter was started (``_repo_dir`` is relative to that).
    """
    return os.getcwd()


class RefusalWithoutTraceback(logging.Filter):
    """Drops cookiecutter's own report of a failed ``pre_gen_project`` hook.

    That hook refuses bad answers, one line each, and exits 1; cookiecutter then logs
    "Stopping generation because ..." with the traceback of its ``FailedHookException`` (12
    lines after the answer's line). Its last line, "Hook script failed (exit status: 1)",
    comes from its command line and stays. Other records pass unchanged.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            str(record.msg).startswith("Stopping generation because")
            and record.args == ("pre_gen_project",)
        )


def quiet_refusals(logger: logging.Logger) -> None:
    """Add :class:`RefusalWithoutTraceback` to ``logger`` once."""
    if not any(isinstance(known, RefusalWithoutTraceback) for known in logger.filters):
        logger.addFilter(RefusalWithoutTraceback())


class PythonStringExtension(Extension):
    """Adds the ``py``, ``toml``, ``yaml`` and ``single_line`` filters and the
    ``template_directory()`` global; keeps a refused answer to its own line (cookiecutter
    loads this extension in its process before any hook runs)."""

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        quiet_refusals(logging.getLogger("cookiecutter.hooks"))
        environment.filters["py"] = python_literal
        environment.filters["toml"] = quoted_string
        environment.filters["yaml"] = quoted_string
        environment.filters["single_line"] = single_line
        environment.globals["template_directory"] = template_directory
