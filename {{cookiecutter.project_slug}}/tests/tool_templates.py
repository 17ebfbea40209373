"""The test chat templates for tool calling, answers recorded from real models, and the
answer a template writes for given calls."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from transformers import PreTrainedTokenizerBase

from {{ cookiecutter.package_name }}._core._prompt import CallTurns

GEMMA_MARKERS = ("<|tool_call>", "<tool_call|>", '<|"|>', "<|tool_response>")
LLAMA4_MARKERS = ("<|header_start|>", "<|header_end|>", "<|eot|>", "<|python_start|>", "<|python_end|>")


def deepseek_marker(words: str) -> str:
    """DeepSeek's marker of ``words`` (joined by U+2581) between full-width bars (U+FF5C)."""
    return "<\uff5c" + words.replace(" ", "\u2581") + "\uff5c>"


DEEPSEEK_MARKERS = tuple(
    deepseek_marker(words)
    for words in (
        "User",
        "Assistant",
        "end of sentence",
        "tool calls begin",
        "tool calls end",
        "tool call begin",
        "tool call end",
        "tool sep",
        "tool outputs begin",
        "tool outputs end",
        "tool output begin",
        "tool output end",
    )
)
FUNCTIONARY_MARKERS = ("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>")
KIMI_MARKERS = tuple(
    f"<|{name}|>"
    for name in (
        "im_user",
        "im_assistant",
        "im_system",
        "im_middle",
        "tool_calls_section_begin",
        "tool_calls_section_end",
        "tool_call_begin",
        "tool_call_argument_begin",
        "tool_call_end",
    )
)
MINIMAX_MARKERS = ("]~b]", "[e~[", "<minimax:tool_call>", "</minimax:tool_call>")
DSML_MARKERS = (  # DSML itself one token too, as markers are: the calls fit the tests' budget
    *(deepseek_marker(words) for words in ("User", "Assistant", "end of sentence")),
    "\uff5cDSML\uff5c",
)
KIMI_K3_MARKERS = ("<|open|>", "<|sep|>", "<|close|>", "<|end_of_msg|>")
LFM2_MARKERS = ("<|im_start|>", "<|im_end|>", "<|tool_call_start|>", "<|tool_call_end|>")
MINIMAX_M3_MARKERS = ("]~b]", "[e~[", "]<]minimax[>[")
HY3_MARKERS = tuple(
    marker.replace("NAME", name + ":opensource")
    for marker, names in (
        ("<\uff5chy_NAME\uff5c>", ("eos", "User", "Assistant")),
        ("<NAME>", ("tool_calls", "tool_call", "tool_sep", "arg_key", "arg_value")),
        ("</NAME>", ("tool_calls", "tool_call", "arg_key", "arg_value")),
    )
    for name in names
)
ATEM_MARKERS = ("<|start|>", "<|message|>", "<|eot|>", "<|eom|>")

TEMPLATES: Mapping[str, tuple[str, tuple[str, ...]]] = {
    "hermes": ("chatml_tools", ()),
    "llama3": ("llama3_tools", ()),
    "mistral": ("mistral_tools", ("[TOOL_CALLS]",)),
    "mistral_v11": ("mistral_v11_tools", ("[TOOL_CALLS]", "[ARGS]")),
    "qwen3_coder": ("qwen3_coder_tools", ()),
    "glm": ("glm_tools", ()),
    "gemma4": ("gemma4_tools", GEMMA_MARKERS),
    "hermes3": ("hermes3_tools", ()),
    "llama4": ("llama4_tools", LLAMA4_MARKERS),
    "deepseek_r1": ("deepseek_r1_tools", DEEPSEEK_MARKERS),
    "functionary_v32": ("functionary_v32_tools", FUNCTIONARY_MARKERS),
    "minimax_m2": ("minimax_m2_tools", MINIMAX_MARKERS),
    "kimi_k2": ("kimi_k2_tools", KIMI_MARKERS),
    "dsml": ("dsml_tools", DSML_MARKERS),
    "kimi_k3": ("kimi_k3_tools", KIMI_K3_MARKERS),
    "lfm2": ("lfm2_tools", LFM2_MARKERS),
    "minimax_m3": ("minimax_m3_tools", MINIMAX_M3_MARKERS),
    "minicpm5": ("minicpm5_tools", ("<|im_start|>", "<|im_end|>")),
    "hy3": ("hy3_tools", HY3_MARKERS),
    "atem": ("atem_tools", ATEM_MARKERS),
    "no_tools": ("no_tools", ()),
}
"""Test chat templates in ``chat_templates`` (with the special tokens their syntax needs), by
the call syntax they teach; ``no_tools`` renders no tools at all (as Phi-3.5's). Those named
after a family reproduce what its real template does that the client must learn: Hermes 3's
unguarded ``tools`` loop, Llama 4's calls back to back, DeepSeek R1's fenced JSON of
JSON-string arguments (and an empty answer that opens a calls block), Functionary v3.2's
``>>>`` in the generation prompt, MiniMax-M2's XML arguments, Kimi K2's numbered calls. The
markup ones are learnt (no syntax of their own in the client): DeepSeek V3.2/V4's DSML with a
``string="true|false"`` attribute, Kimi K3's typed arguments and calls numbered from 1, LFM2.5's
Python-like ``NAME(KEY='text', KEY=3)``, MiniMax-M3's ``<KEY>value</KEY>`` after a marker,
MiniCPM5's ``<param name="KEY">``, Hunyuan 3's ``<arg_key:opensource>``, and Muse Glimmer's
ATEM, one message per call to its recipient (``to=NAME``), the name written again."""

SPECIAL_TOKENS: Mapping[str, tuple[str, ...]] = {
    **{template: special for template, special in TEMPLATES.values()},
    "mistral_v13_tools": ("[TOOL_CALLS]", "[ARGS]", "[CALL_ID]"),
    "command_r_tools": tuple(
        f"<|{name}|>"
        for name in (
            "START_OF_TURN_TOKEN",
            "END_OF_TURN_TOKEN",
            "SYSTEM_TOKEN",
            "USER_TOKEN",
            "CHATBOT_TOKEN",
        )
    ),
}
"""The special tokens each test template needs, by template file name."""

QWEN_CALL = (
    "<tool_call>\n"
    '{"name": "get_current_temperature", "arguments": {"location": "San Francisco, CA, USA"}}\n'
    "</tool_call>"
)
QWEN_TWO_CALLS = (
    "I will check both cities.\n"
    '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}\n'
    "</tool_call>\n"
    '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Tokyo", "days": 1}}\n'
    "</tool_call>"
)
LLAMA_CALL = (
    '{"name": "get_current_conditions", "parameters": '
    '{"location": "San Francisco, CA", "unit": "Fahrenheit"}}'
)
MISTRAL_V3 = (
    '[TOOL_CALLS] [{"name": "get_current_weather", "arguments": '
    '{"location": "Paris, France", "format": "celsius"}}]'
)
MISTRAL_V11 = (
    '[TOOL_CALLS]get_weather[ARGS]{"city": "Paris"}[TOOL_CALLS]local_time[ARGS]{"zone": "CET"}'
)


def render_answer(
    tokenizer: PreTrainedTokenizerBase,
    calls: list[tuple[str, dict[str, Any]]],
    ids: Sequence[str] = (),
    call_turns: CallTurns | None = None,
) -> str:
    """The answer text with which the tokenizer's chat template writes these calls (with
    these ids, else made-up ones), in the form of call turns the template takes."""
    tool_calls = [
        {
            "id": ids[index] if ids else f"call{index}abcde"[:9],
            "type": "function",
            "function": {"name": name, "arguments": arguments},
        }
        for index, (name, arguments) in enumerate(calls)
    ]
    user: dict[str, Any] = {"role": "user", "content": "Hi."}
    turn: dict[str, Any] = {"role": "assistant", "content": "", "tool_calls": tool_calls}
    (turn,) = (call_turns or CallTurns()).apply([turn])
    tools: Any = None
    try:
        prompt = tokenizer.apply_chat_template([user], tokenize=False, add_generation_prompt=True)
    except TypeError:  # a template that needs a tool list (Hermes 3's)
        tools = []
        prompt = tokenizer.apply_chat_template(
            [user], tools=tools, tokenize=False, add_generation_prompt=True
        )
    full = tokenizer.apply_chat_template(cast(Any, [user, turn]), tools=tools, tokenize=False)
    assert isinstance(prompt, str)
    assert isinstance(full, str)
    # Compared as tokens: special tokens stay whole (Gemma's "<|channel>" and "<|tool_call>").
    before = tokenizer.encode(prompt, add_special_tokens=False)
    after = tokenizer.encode(full, add_special_tokens=False)
    shared = 0
    while shared < min(len(before), len(after)) and before[shared] == after[shared]:
        shared += 1
    answer = tokenizer.decode(after[shared:], skip_special_tokens=False)
    assert isinstance(answer, str)
    return answer
