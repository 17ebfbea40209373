"""Refuse bad answers before anything is written.

Cookiecutter renders this file with the answers, runs it, and removes the output directory
when it exits non-zero. Each refusal is one line naming the field, the value and the rule.
When the model's files are at hand (a local directory or the HuggingFace cache), the answers
are also checked against them (``model_checks.py`` next to this hook): what they prove wrong
is refused, what they suggest is noted.
"""

from __future__ import annotations

import json
import keyword
import re
import sys
from typing import Any

# Import names a generated package must not take: it would shadow the dependency.
RESERVED_PACKAGE_NAMES = frozenset(
    {
        "autogen",
        "autogen_agentchat",
        "autogen_core",
        "autogen_ext",
        "accelerate",
        "huggingface_hub",
        "jinja2",
        "mypy",
        "numpy",
        "PIL",
        "pydantic",
        "pydantic_core",
        "pytest",
        "pytest_asyncio",
        "ruff",
        "safetensors",
        "conftest",
        "filelock",
        "fsspec",
        "packaging",
        "reference",
        "schema_models",
        "scripting",
        "sympy",
        "tests",
        "tiny_models",
        "tiny_vision_models",
        "tqdm",
        "yaml",
        "tokenizers",
        "torch",
        "transformers",
        "typing_extensions",
        "llguidance",
        "jsonschema",
        "referencing",
    }
)
# Names bound in the generated client's modules: a client class of that name would clobber
# or be clobbered by them.
RESERVED_CLASS_NAMES = frozenset(
    {
        "Answer",
        "AnswerCheck",
        "Any",
        "AsyncGenerator",
        "AsyncIterable",
        "Awaitable",
        "BaseChatClient",
        "BaseModel",
        "CancelHook",
        "CancellationToken",
        "Capabilities",
        "CapabilityError",
        "Chat",
        "ChatAndFunctionMiddlewareTypes",
        "ChatClientInvalidRequestException",
        "ChatCompletionClient",
        "ChatMessage",
        "ChatMiddlewareLayer",
        "ChatOptions",
        "ChatResponse",
        "ChatResponseUpdate",
        "ChatTelemetryLayer",
        "ClassVar",
        "ClientClosedError",
        "Component",
        "Config",
        "Constraint",
        "Content",
        "ContextWindowExceededError",
        "CreateResult",
        "DEFAULT_CAPABILITIES",
        "DEFAULT_MODEL_INFO",
        "EVENT_LOGGER_NAME",
        "EncodedPrompt",
        "Engine",
        "FALLBACK_STOP",
        "FinishReason",
        "FinishReasons",
        "FunctionCall",
        "FunctionInvocationConfiguration",
        "FunctionInvocationLayer",
        "GenerationOutput",
        "GenerationRequest",
        "GenerationSettings",
        "Generic",
        "IncrementalDecoder",
        "InvalidAnswerError",
        "JsonOutput",
        "LLMCallEvent",
        "LLMMessage",
        "LLMStreamEndEvent",
        "LLMStreamStartEvent",
        "Literal",
        "LocalEngine",
        "MalformedToolCallWarning",
        "Mapping",
        "Message",
        "ModelCapabilities",
        "ModelConfig",
        "ModelInfo",
        "ModelLoadError",
        "OptionsT",
        "PreTrainedModel",
        "PreparedRequest",
        "RemoteEngine",
        "RequestUsage",
        "ResponseModelT",
        "ResponseParser",
        "ResponseStream",
        "Sequence",
        "THINK_OPEN",
        "TokenCallback",
        "Tool",
        "ToolCalling",
        "ToolRequest",
        "ToolSchema",
        "TypeVar",
        "UnreadableImageError",
        "UnsupportedSchemaError",
        "ValidationError",
        "_Stream",
    }
)
DISTRIBUTION_NAME = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
FAMILY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$")
SUPPORTED_PYTHONS = ("3.10", "3.11", "3.12", "3.13")
LICENSES = ("MIT", "Apache-2.0", "BSD-3-Clause", "Proprietary")
FLAGS = (
    "vision",
    "function_calling",
    "json_output",
    "structured_output",
    "agent_framework",
    "verify_generated_project",
)
FREE_TEXT = ("project_name", "author_name")


def _check_identifier(field: str, value: str) -> str | None:
    if not value.isidentifier() or not value.isascii():
        return f"{field} {value!r} is not a valid ASCII Python identifier"
    if keyword.iskeyword(value) or keyword.issoftkeyword(value):
        return f"{field} {value!r} is a Python keyword"
    return None


def check_class_name(value: str, field: str = "client_class_name") -> str | None:
    """Why ``value`` cannot be the name of a generated client class (``field``), or None."""
    if problem := _check_identifier(field, value):
        return problem
    if value in RESERVED_CLASS_NAMES:
        return (
            f"{field} {value!r} is a name the generated package already uses "
            "(its modules import or define it); choose another"
        )
    return None


def check_agent_framework(answers: dict[str, Any]) -> list[str]:
    """Problems with the Agent Framework answers (none when it was answered no)."""
    if answers.get("agent_framework") is not True:
        return []
    name = str(answers.get("agent_framework_client_class_name", ""))
    if problem := check_class_name(name, "agent_framework_client_class_name"):
        return [problem]
    if name == answers.get("client_class_name"):
        return [
            f"agent_framework_client_class_name {name!r} is the AutoGen client's name too: "
            "give the Agent Framework client another, such as 'HuggingFaceChatClient'"
        ]
    if str(answers.get("min_python_version")) == "3.10":
        return [
            "agent_framework True needs min_python_version 3.11 or later "
            "(agent-framework-core requires Python 3.11)"
        ]
    return []


def check_package_name(value: str) -> str | None:
    """Why ``value`` cannot be the import name of the generated package, or None."""
    if problem := _check_identifier("package_name", value):
        return problem
    if value in sys.stdlib_module_names:
        return f"package_name {value!r} shadows the standard library module of that name"
    if value in RESERVED_PACKAGE_NAMES or value.lower() in {
        n.lower() for n in RESERVED_PACKAGE_NAMES
    }:
        return (
            f"package_name {value!r} shadows a dependency or a test module of the generated project"
        )
    return None


def check_answers(answers: dict[str, Any]) -> list[str]:
    """Every problem with the answers, one line each; empty when they are all good."""
    problems: list[str] = []
    for flag in FLAGS:
        if not isinstance(answers.get(flag), bool):
            problems.append(f"{flag} {answers.get(flag)!r} must be a boolean (yes or no)")
    for field in FREE_TEXT:
        value = answers.get(field, "")
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{field} {value!r} must not be empty")
        elif any(0xD800 <= ord(char) <= 0xDFFF or char == "\x00" for char in value):
            problems.append(f"{field} {value!r} must not contain NUL or lone surrogate characters")
    if problem := check_package_name(str(answers.get("package_name", ""))):
        problems.append(problem)
    if problem := check_class_name(str(answers.get("client_class_name", ""))):
        problems.append(problem)
    problems += check_agent_framework(answers)
    slug = str(answers.get("project_slug", ""))
    if not DISTRIBUTION_NAME.match(slug):
        problems.append(
            f"project_slug {slug!r} is not a valid distribution name "
            "(letters, digits, '.', '_' and '-', starting and ending with a letter or digit)"
        )
    model_name = answers.get("model_name", "")
    if not isinstance(model_name, str) or not model_name.strip():
        problems.append(f"model_name {model_name!r} must name a HuggingFace model id or local path")
    elif model_name != model_name.strip() or not model_name.isprintable():
        problems.append(
            f"model_name {model_name!r} must not have surrounding whitespace or control characters"
        )
    family = str(answers.get("model_family", ""))
    if not FAMILY.match(family):
        problems.append(
            f"model_family {family!r} must be one word such as 'unknown' or 'qwen' "
            "(letters, digits, '.', '_', ':', '/', '-')"
        )
    if answers.get("structured_output") is True and answers.get("json_output") is not True:
        problems.append(
            "structured_output True needs json_output: structured output is constrained JSON"
        )
    email = str(answers.get("author_email", ""))
    if not EMAIL.match(email):
        problems.append(f"author_email {email!r} is not an email address")
    if answers.get("license") not in LICENSES:
        problems.append(f"license {answers.get('license')!r} must be one of {', '.join(LICENSES)}")
    if answers.get("min_python_version") not in SUPPORTED_PYTHONS:
        problems.append(
            f"min_python_version {answers.get('min_python_version')!r} must be one of "
            f"{', '.join(SUPPORTED_PYTHONS)}"
        )
    return problems


def main(answers: dict[str, Any], hooks: str) -> int:
    """Refuse bad answers (one ``ERROR:`` line each on stderr), note what the model suggests."""
    problems = check_answers(answers)
    if not problems:
        sys.path.insert(0, hooks)
        from model_checks import check_model

        problems, notes = check_model(answers)
        for note in notes:
            print(f"note: {note}")
    for problem in problems:
        print(f"ERROR: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    # Rendered inside the template's checkout: template_directory() is that folder.
    sys.exit(
        main(
            json.loads({{cookiecutter | jsonify | tojson}}),
            {{template_directory() | tojson}} + "/hooks",
        )
    )
