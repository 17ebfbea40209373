"""Jinja filters that render template answers as safe literals.

Answers are data: every free-text answer reaches Python, TOML or YAML source through one of
these filters, never pasted raw. Cookiecutter loads this module through ``_extensions`` in
``cookiecutter.json``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from jinja2.ext import Extension
from jinja2.sandbox import is_internal_attribute


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


def _internal(obj: Any, name: Any) -> bool:
    """Whether ``name`` is an attribute that leads out of the data (Jinja's sandbox rules)."""
    return isinstance(name, str) and (name.startswith("_") or is_internal_attribute(obj, name))


def guard_attributes(environment: Any) -> None:
    """Refuse, in everything ``environment`` renders, attributes that lead to Python's
    internals (``__init__``, ``__globals__``, ``gi_frame``, ...), as Jinja's sandbox does.

    Cookiecutter renders every answer as a template before any hook runs: an answer such as
    ``{{ cycler.__init__.__globals__.os.getpid() }}`` would run code. Keys of the answers
    that start with ``_`` (``cookiecutter._template``) stay readable.
    """
    plain_getattr, plain_getitem = environment.getattr, environment.getitem
    hint = "attributes that lead out of the answers are refused: answers are data, not code"

    def getattr_(obj: Any, attribute: str) -> Any:
        if not _internal(obj, attribute):
            return plain_getattr(obj, attribute)
        if isinstance(obj, Mapping) and attribute in obj:
            return obj[attribute]
        return environment.undefined(hint=f"{attribute!r}: {hint}", obj=obj, name=attribute)

    def getitem(obj: Any, argument: Any) -> Any:
        if not _internal(obj, argument):
            return plain_getitem(obj, argument)
        try:
            return obj[argument]
        except (AttributeError, TypeError, LookupError):
            return environment.undefined(hint=f"{argument!r}: {hint}", obj=obj, name=argument)

    environment.getattr, environment.getitem = getattr_, getitem


class PythonStringExtension(Extension):
    """Adds the ``py``, ``toml``, ``yaml`` and ``single_line`` filters and the
    ``template_directory()`` global. Cookiecutter loads it in its process before it renders
    the answers or runs a hook: it also guards the rendering of answers (see
    :func:`guard_attributes`) and keeps a refused answer to its own line."""

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        guard_attributes(environment)
        quiet_refusals(logging.getLogger("cookiecutter.hooks"))
        environment.filters["py"] = python_literal
        environment.filters["toml"] = quoted_string
        environment.filters["yaml"] = quoted_string
        environment.filters["single_line"] = single_line
        environment.globals["template_directory"] = template_directory
