"""The call format learnt from chat templates, and reading answers written in it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tiny_models import CHAT_TEMPLATES, tiny_tokenizer
from tool_templates import (
    GEMMA_MARKERS,
    LLAMA_CALL,
    MISTRAL_V3,
    MISTRAL_V11,
    QWEN_CALL,
    QWEN_TWO_CALLS,
    SPECIAL_TOKENS,
    deepseek_marker,
    render_answer,
)

from {{ cookiecutter.package_name }}._core._prompt import CallTurns, PromptRenderer
from {{ cookiecutter.package_name }}._core._tool_format import (
    WRITERS,
    ToolTemplate,
    Vocabulary,
    call_grammar,
    learn_tool_template,
    written_format,
)
from {{ cookiecutter.package_name }}._core._tool_parsers import (
    ID_SLOT,
    INDEX_SLOT,
    KEY_SLOT,
    NAME_SLOT,
    CallFormat,
    MalformedToolCallError,
    ParsedCall,
    arguments_json,
    read_calls,
)


def learnt(template: str | None) -> tuple[ToolTemplate, Vocabulary]:
    """What the client learns from a test chat template (``None``: no template at all)."""
    tokenizer = tiny_tokenizer(template, special_tokens=SPECIAL_TOKENS.get(template or "", ()))
    vocabulary = Vocabulary(tokenizer)
    renderer = PromptRenderer(tokenizer, None)
    return learn_tool_template(renderer.render_messages, vocabulary), vocabulary


@pytest.fixture(scope="module")
def templates() -> dict[str, ToolTemplate]:
    """What is learnt from the templates that reproduce the families' real ones."""
    names = ("hermes3", "llama4", "deepseek_r1", "functionary_v32", "minimax_m2", "kimi_k2")
    return {name: learnt(f"{name}_tools")[0] for name in names}


@pytest.fixture(scope="module")
def formats() -> dict[str, CallFormat]:
    return {
        name: learnt(name)[0].call_format
        for name in (
            "chatml_tools",
            "llama3_tools",
            "mistral_tools",
            "mistral_v11_tools",
            "mistral_v13_tools",
            "qwen3_coder_tools",
            "glm_tools",
            "gemma4_tools",
            "hermes3_tools",
            "llama4_tools",
            "deepseek_r1_tools",
            "functionary_v32_tools",
            "minimax_m2_tools",
            "kimi_k2_tools",
            *MARKUP_TEMPLATES,
        )
    }


MARKUP_TEMPLATES = (
    "dsml_tools",
    "kimi_k3_tools",
    "lfm2_tools",
    "minimax_m3_tools",
    "minicpm5_tools",
    "hy3_tools",
    "atem_tools",
)
"""Templates whose argument syntax the client has no name for: it learns it as markup."""


# -- Learning ----------------------------------------------------------------------------------


def test_json_call_formats_are_learnt(formats: dict[str, CallFormat]) -> None:
    hermes = formats["chatml_tools"]
    assert (hermes.json_open, hermes.json_close, hermes.json_keys) == (
        "<tool_call>",
        "</tool_call>",
        ("name", "arguments"),
    )
    assert hermes.separator == ""
    assert hermes.arguments == "json"
    llama = formats["llama3_tools"]
    assert (llama.call_open, llama.opening, llama.json_keys, llama.has_marker) == (
        '{"name": "',
        "",
        ("name", "parameters"),
        False,
    )
    mistral = formats["mistral_tools"]
    assert (mistral.calls_open, mistral.separator, mistral.calls_close) == (
        "[TOOL_CALLS][",
        ", ",
        "]",
    )
    assert mistral.call_close == ', "id": "' + ID_SLOT + '"}'


def test_non_json_call_formats_are_learnt(formats: dict[str, CallFormat]) -> None:
    gemma = formats["gemma4_tools"]
    assert (gemma.call_open, gemma.call_close, gemma.calls_close) == (
        "<|tool_call>call:",
        "<tool_call|>",
        "<|tool_response>",
    )
    assert (gemma.arguments, gemma.sorted_keys, gemma.json_keys) == ("gemma", True, None)
    coder = formats["qwen3_coder_tools"]
    assert (coder.call_open, coder.between, coder.call_close, coder.separator) == (
        "<tool_call>\n<function=",  # the template's leading "\n" is in the generation prompt
        ">\n",
        "\n</function>\n</tool_call>",
        "\n",
    )
    assert coder.arguments == "qwen_xml"
    glm = formats["glm_tools"]
    assert (glm.call_open, glm.between, glm.call_close, glm.arguments) == (
        "<tool_call>",
        "\n",
        "\n</tool_call>",
        "glm_xml",
    )
    assert formats["mistral_v11_tools"].between == "[ARGS]"
    assert formats["mistral_v13_tools"].between == "[CALL_ID]" + ID_SLOT + "[ARGS]"


def test_what_templates_render_is_learnt() -> None:
    full, _ = learnt("chatml_tools")
    assert (full.renders_tools, full.renders_calls, full.renders_results) == (True, True, True)
    assert full.problem is None
    for template in ("no_tools", None):  # Phi-3.5 style, and the fallback template
        bare, _ = learnt(template)
        assert (bare.renders_tools, bare.renders_calls) == (False, False)
        assert bare.call_format == written_format(WRITERS["hermes"], Vocabulary(tiny_tokenizer()))
    assert learnt("no_tools")[0].renders_results is False
    assert learnt(None)[0].renders_results is True  # "Tool result: ..." lines


def test_a_template_that_loops_over_tools_unguarded_gets_an_empty_list() -> None:
    """Hermes 3's and Command R+'s: a chat without tools once made the constructor raise."""
    tokenizer = tiny_tokenizer("hermes3_tools")
    with pytest.raises(TypeError):  # the template itself, given no tools
        tokenizer.apply_chat_template([{"role": "user", "content": "Hi."}], tokenize=False)
    renderer = PromptRenderer(tokenizer, None)
    hello = {"role": "user", "content": "Hi."}
    assert "<tools>\n</tools>" in renderer.render_messages([hello], None, True)
    assert not renderer.uses_fallback
    assert renderer.encode([{"role": "user", "content": "Hi."}]).input_ids


def test_a_template_that_renders_nothing_gives_way_to_the_fallback() -> None:
    tokenizer = tiny_tokenizer("raises_always")
    with pytest.warns(UserWarning, match="cannot render a user message.*renders no chat"):
        renderer = PromptRenderer(tokenizer, None)
    assert renderer.uses_fallback
    template = learn_tool_template(renderer.render_messages, Vocabulary(tokenizer))
    assert template.call_format == written_format(WRITERS["hermes"], Vocabulary(tokenizer))


def test_family_formats_are_learnt(templates: dict[str, ToolTemplate]) -> None:
    """The families' own syntaxes, each as its template writes it."""
    hermes = templates["hermes3"]
    assert (hermes.renders_tools, hermes.renders_calls, hermes.renders_results) == (True,) * 3
    assert hermes.call_format.json_open == "<tool_call>\n"
    llama4 = templates["llama4"].call_format
    assert (llama4.calls_open, llama4.json_keys, llama4.separator) == (
        "<|python_start|><|python_end|>",
        ("name", "parameters"),
        "",  # one call right after the other
    )
    deepseek = templates["deepseek_r1"]
    assert deepseek.call_turns == CallTurns(text_arguments=True)
    assert not deepseek.renders_tools
    assert (
        deepseek.call_format.calls_open,
        deepseek.call_format.call_open,
        deepseek.call_format.between,
        deepseek.call_format.call_close,
        deepseek.call_format.separator,
        deepseek.call_format.calls_close,
    ) == (
        deepseek_marker("tool calls begin"),  # not taken for an empty answer's calls block
        deepseek_marker("tool call begin") + "function" + deepseek_marker("tool sep"),
        "\n```json\n",
        "\n```" + deepseek_marker("tool call end"),
        "\n",
        deepseek_marker("tool calls end"),  # written after two calls only
    )
    functionary = templates["functionary_v32"]
    assert functionary.call_turns == CallTurns(text_arguments=True)
    assert (
        functionary.call_format.prompted,
        functionary.call_format.call_open,
        functionary.call_format.between,
        functionary.call_format.separator,
    ) == (">>>", ">>>", "\n", "")
    minimax = templates["minimax_m2"].call_format
    assert (minimax.arguments, minimax.calls_open, minimax.call_open, minimax.between) == (
        "minimax_xml",
        "\n<minimax:tool_call>",
        '\n<invoke name="',
        '">\n',
    )
    assert (minimax.call_close, minimax.calls_close) == ("\n</invoke>", "\n</minimax:tool_call>")
    kimi = templates["kimi_k2"].call_format
    assert kimi.between == ":" + INDEX_SLOT + "<|tool_call_argument_begin|>"
    assert kimi.after_prompt().between == ":0<|tool_call_argument_begin|>"  # a forced call


def test_a_format_after_the_prompt_drops_what_the_prompt_wrote(
    templates: dict[str, ToolTemplate],
) -> None:
    functionary = templates["functionary_v32"].call_format
    forced = functionary.after_prompt()
    assert (forced.prompted, forced.calls_open, forced.call_open) == ("", "", "")
    assert read_calls(
        '>>>get_weather\n{"days": 2, "city": "Oslo"}>>>local_time\n{"zone": "CET"}',
        functionary,
        {},
    ).calls == [ParsedCall("get_weather", '{"days": 2, "city": "Oslo"}'), ParsedCall("local_time", '{"zone": "CET"}')]
    hermes = learnt("chatml_tools")[0].call_format
    assert hermes.after_prompt() == hermes


def test_named_templates_pick_the_tool_use_one() -> None:
    tokenizer = tiny_tokenizer(None, special_tokens=["[TOOL_CALLS]"])
    tokenizer.chat_template = {
        "default": (CHAT_TEMPLATES / "rejects_system.jinja").read_text("utf-8"),
        "tool_use": (CHAT_TEMPLATES / "mistral_tools.jinja").read_text("utf-8"),
    }
    template = learn_tool_template(
        PromptRenderer(tokenizer, None).render_messages, Vocabulary(tokenizer)
    )
    assert template.call_format.calls_open == "[TOOL_CALLS]["


def test_markers_are_the_format_tokens_and_tags(formats: dict[str, CallFormat]) -> None:
    _, vocabulary = learnt("gemma4_tools")
    assert vocabulary.markers(formats["gemma4_tools"]) == tuple(sorted(GEMMA_MARKERS))
    _, vocabulary = learnt("chatml_tools")
    assert vocabulary.markers(formats["chatml_tools"]) == ("</tool_call>", "<tool_call>")
    assert vocabulary.markers(formats["llama3_tools"]) == ()


# -- Reading -----------------------------------------------------------------------------------

WEATHER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "days": {"type": "integer"},
        "note": {"type": "string"},
        "windy": {"type": "boolean"},
    },
}


def test_hermes_reads_qwen_calls(formats: dict[str, CallFormat]) -> None:
    one = read_calls(QWEN_CALL, formats["chatml_tools"], {})
    assert one.calls == [
        ParsedCall("get_current_temperature", '{"location": "San Francisco, CA, USA"}')
    ]
    assert one.text == ""
    two = read_calls(QWEN_TWO_CALLS, formats["chatml_tools"], {})
    assert [json.loads(call.arguments)["city"] for call in two.calls] == ["Paris", "Tokyo"]
    assert two.text == "I will check both cities."


def test_hermes_reads_a_final_call_left_open_and_string_arguments(
    formats: dict[str, CallFormat],
) -> None:
    hermes = formats["chatml_tools"]
    parsed = read_calls('<tool_call>{"name": "f", "arguments": "{\\"a\\": 1}"}', hermes, {})
    assert parsed.calls == [ParsedCall("f", '{"a": 1}')]
    assert read_calls('<tool_call>{"name": "now"}</tool_call>', hermes, {}).calls == [
        ParsedCall("now", "{}")
    ]


@pytest.mark.parametrize(
    "text",
    [
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"\n</tool_call>',
        '<tool_call>{"arguments": {}}</tool_call>',
        '<tool_call>{"name": "f", "arguments": [1, 2]}</tool_call>',
        '<tool_call>{"name": "f"} trailing words</tool_call>',
        "<tool_call>",
    ],
)
def test_hermes_rejects_what_it_cannot_read(formats: dict[str, CallFormat], text: str) -> None:
    with pytest.raises(MalformedToolCallError):
        read_calls(text, formats["chatml_tools"], {})


def test_llama3_reads_json_calls(formats: dict[str, CallFormat]) -> None:
    llama = formats["llama3_tools"]
    assert read_calls(LLAMA_CALL, llama, {}).calls == [
        ParsedCall(
            "get_current_conditions", '{"location": "San Francisco, CA", "unit": "Fahrenheit"}'
        )
    ]
    tagged = read_calls(
        '<|python_tag|>{"name": "a", "parameters": {}}; {"name": "b", "parameters": {"x": 1}}',
        llama,
        {},
    )
    assert tagged.calls == [ParsedCall("a", "{}"), ParsedCall("b", '{"x": 1}')]
    assert tagged.text == "<|python_tag|>"  # a special token: the client drops it (see test_tools)


def test_llama3_leaves_ordinary_json_and_text_alone(formats: dict[str, CallFormat]) -> None:
    llama = formats["llama3_tools"]
    answer = '{"name": "Ada", "born": 1815}'
    assert read_calls(answer, llama, {}).calls == []
    assert read_calls(answer, llama, {}).text == answer
    assert read_calls("Hello there!", llama, {}).calls == []
    with pytest.raises(MalformedToolCallError):
        read_calls('{"name": "get_weather", "parameters": {"city": ', llama, {})


def test_mistral_reads_v3_v11_and_v13_calls(formats: dict[str, CallFormat]) -> None:
    assert read_calls(MISTRAL_V3, formats["mistral_tools"], {}).calls == [
        ParsedCall("get_current_weather", '{"location": "Paris, France", "format": "celsius"}')
    ]
    assert read_calls(MISTRAL_V11, formats["mistral_v11_tools"], {}).calls == [
        ParsedCall("get_weather", '{"city": "Paris"}'),
        ParsedCall("local_time", '{"zone": "CET"}'),
    ]
    with_id = read_calls(
        '[TOOL_CALLS]f[CALL_ID]a1b2c3d4e[ARGS]{"x": 2}', formats["mistral_v13_tools"], {}
    )
    assert with_id.calls == [ParsedCall("f", '{"x": 2}')]
    bare = read_calls(MISTRAL_V3.removeprefix("[TOOL_CALLS]"), formats["mistral_tools"], {})
    assert [call.name for call in bare.calls] == ["get_current_weather"]
    assert read_calls("[1, 2, 3]", formats["mistral_tools"], {}).calls == []
    with pytest.raises(MalformedToolCallError):
        read_calls(
            '[TOOL_CALLS][{"name": "f", "arguments": {"a": }}]', formats["mistral_tools"], {}
        )


def test_gemma_calls_are_read_with_their_quote_tokens(formats: dict[str, CallFormat]) -> None:
    gemma = formats["gemma4_tools"]
    text = (
        'Checking.<|tool_call>call:get_weather{city:<|"|>Paris, "FR"<|"|>,days:2,'
        'tags:[<|"|>a<|"|>,true],where:{lat:1.5,to:None}}<tool_call|>'
        '<|tool_call>call:local_time{zone:<|"|>CET<|"|>}<tool_call|><|tool_response>'
    )
    parsed = read_calls(text, gemma, {})
    assert [(call.name, json.loads(call.arguments)) for call in parsed.calls] == [
        (
            "get_weather",
            {
                "city": 'Paris, "FR"',
                "days": 2,
                "tags": ["a", True],
                "where": {"lat": 1.5, "to": None},
            },
        ),
        ("local_time", {"zone": "CET"}),
    ]
    assert parsed.text == "Checking."
    with pytest.raises(MalformedToolCallError):
        read_calls('<|tool_call>call:f{city:<|"|>Paris}<tool_call|>', gemma, {})


def test_xml_arguments_are_typed_by_the_tool_schema(formats: dict[str, CallFormat]) -> None:
    coder = (
        "<tool_call>\n<function=get_weather>\n<parameter=city>\n1984\n</parameter>\n"
        "<parameter=days>\n3\n</parameter>\n<parameter=note>\nline one\nline two\n</parameter>\n"
        "</function>\n</tool_call>"
    )
    glm = (
        "<tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value>1984</arg_value>\n"
        "<arg_key>days</arg_key>\n<arg_value>3</arg_value>\n</tool_call>"
    )
    schemas = {"get_weather": WEATHER_SCHEMA}
    coder = coder.replace("</function>", "<parameter=windy>\nTrue\n</parameter>\n</function>")
    for text, call_format, expected in (
        (
            coder,
            formats["qwen3_coder_tools"],
            {"city": "1984", "days": 3, "note": "line one\nline two", "windy": True},
        ),
        (glm, formats["glm_tools"], {"city": "1984", "days": 3}),
    ):
        (call,) = read_calls(text, call_format, schemas).calls
        assert (call.name, json.loads(call.arguments)) == ("get_weather", expected)


def test_minimax_arguments_are_read_in_any_order_and_typed(
    formats: dict[str, CallFormat],
) -> None:
    text = (
        '\n<minimax:tool_call>\n<invoke name="get_weather">\n<parameter name="windy">true'
        '</parameter>\n<parameter name="note"> line one\nline two</parameter>\n'
        '<parameter name="days">3</parameter>\n<parameter name="city">1984</parameter>\n'
        '</invoke>\n<invoke name="local_time">\n<parameter name="zone">CET</parameter>\n'
        "</invoke>\n</minimax:tool_call>"
    )
    schemas = {"get_weather": WEATHER_SCHEMA}
    parsed = read_calls(text, formats["minimax_m2_tools"], schemas)
    assert [(call.name, json.loads(call.arguments)) for call in parsed.calls] == [
        ("get_weather", {"windy": True, "note": "line one\nline two", "days": 3, "city": "1984"}),
        ("local_time", {"zone": "CET"}),
    ]


def test_calls_written_back_to_back_are_read(formats: dict[str, CallFormat]) -> None:
    """Llama 4 writes its calls with nothing between them; an object that is no call after
    them stays text."""
    llama4 = formats["llama4_tools"]
    text = (
        '<|python_start|><|python_end|>{"name": "a", "parameters": {"x": 1}}'
        '{"name": "b", "parameters": {}}'
    )
    assert read_calls(text, llama4, {}).calls == [ParsedCall("a", '{"x": 1}'), ParsedCall("b", "{}")]
    bare = read_calls('{"name": "a", "parameters": {"x": 1}}', llama4, {})
    assert bare.calls == [ParsedCall("a", '{"x": 1}')]  # without its markers, as models do


def test_arguments_become_a_json_object_string() -> None:
    assert arguments_json({"a": "é"}) == '{"a": "é"}'
    assert arguments_json("") == "{}"
    for bad in ("not json", "[1]", 3):
        with pytest.raises(MalformedToolCallError):
            arguments_json(bad)


@pytest.mark.parametrize(
    "template",
    [
        "chatml_tools",
        "mistral_tools",
        "mistral_v11_tools",
        "qwen3_coder_tools",
        "glm_tools",
        "gemma4_tools",
        "hermes3_tools",
        "llama4_tools",
        "deepseek_r1_tools",
        "functionary_v32_tools",
        "minimax_m2_tools",
        "kimi_k2_tools",
        *MARKUP_TEMPLATES,
    ],
)
def test_calls_written_by_the_template_read_back(
    formats: dict[str, CallFormat], template: str
) -> None:
    tokenizer = tiny_tokenizer(template, special_tokens=SPECIAL_TOKENS.get(template, ()))
    calls: list[tuple[str, dict[str, Any]]] = [
        ("get_weather", {"city": "São Paulo", "days": 3}),
        ("local_time", {"zone": "JST", "note": 'say "hi"'}),
    ]
    schemas = {
        "get_weather": WEATHER_SCHEMA,
        "local_time": {"properties": {"zone": {"type": "string"}, "note": {"type": "string"}}},
    }
    renderer = PromptRenderer(tokenizer, None)
    turns = learn_tool_template(renderer.render_messages, Vocabulary(tokenizer)).call_turns
    call_format = formats[template]
    for wanted in (calls[:1], calls):
        answer = call_format.prompted + render_answer(tokenizer, wanted, call_turns=turns)
        parsed = read_calls(answer, call_format, schemas)
        assert [(call.name, json.loads(call.arguments)) for call in parsed.calls] == wanted


FORMS = ["chatml_tools", "llama3_tools", "mistral_tools", "mistral_v11_tools",
         "qwen3_coder_tools", "glm_tools", "gemma4_tools"]  # fmt: skip
CALL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "description": "A city."},
        "days": {"type": "integer"},
        "flags": {"type": "array", "items": {"type": "boolean"}},
    },
    "required": ["city"],
}


def grammar_accepts(tokenizer: Any, grammar: str, text: str) -> bool:
    """Whether the Lark ``grammar`` (llguidance) is complete after the tokens of ``text``."""
    import llguidance
    import llguidance.hf

    matcher = llguidance.LLMatcher(
        llguidance.hf.from_tokenizer(tokenizer, n_vocab=len(tokenizer)),
        llguidance.LLMatcher.grammar_from_lark(grammar),
        log_level=0,
    )
    assert not matcher.is_error(), matcher.get_error()
    ending = [tokenizer.eos_token, *tokenizer.all_special_tokens]
    while stripped := next((t for t in ending if t and text.rstrip().endswith(t)), None):
        text = text.rstrip().removesuffix(stripped)  # the turn's end is the engine's stop
    ids = tokenizer.encode(text, add_special_tokens=False)
    return bool(matcher.consume_tokens(ids) and matcher.is_accepting())


@pytest.mark.parametrize("template", FORMS)
def test_forced_call_grammar_takes_the_templates_own_writing(
    formats: dict[str, CallFormat], template: str
) -> None:
    """The grammar of a forced call accepts the call as the chat template itself writes it
    (markers as the tokenizer's added tokens), optional arguments left out or given."""
    tokenizer = tiny_tokenizer(template, special_tokens=SPECIAL_TOKENS.get(template, ()))
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": CALL_SCHEMA}}
    grammar = call_grammar(formats[template], [tool], Vocabulary(tokenizer), starts_in_thought=False)
    for arguments in ({"city": "Paris"}, {"city": "São Paulo", "days": 3, "flags": [True]}):
        written = render_answer(tokenizer, [("get_weather", arguments)])
        assert grammar_accepts(tokenizer, grammar, written), (template, written, grammar)
    wrong_name = render_answer(tokenizer, [("get_weathers", {"city": "Paris"})])
    assert not grammar_accepts(tokenizer, grammar, wrong_name)
    missing = render_answer(tokenizer, [("get_weather", {"days": 3})])
    assert not grammar_accepts(tokenizer, grammar, missing)  # "city" is required


# -- Markup: argument syntaxes learnt from the template ------------------------------------------


def test_markup_argument_syntaxes_are_learnt(formats: dict[str, CallFormat]) -> None:
    """Each argument is ``opening KEY middle VALUE closing``: the texts are the template's, the
    middle per JSON type where the template writes types apart."""
    learnt = {name: formats[name] for name in MARKUP_TEMPLATES}
    assert all(f.arguments == "markup" and f.markup is not None for f in learnt.values())
    dsml = learnt["dsml_tools"].markup
    assert dsml is not None
    bar = "\uff5cDSML\uff5c"
    assert dsml.opening == f'\n<{bar}parameter name="'
    assert dsml.texts("string") == ('" string="true">', f"</{bar}parameter>")
    for kind in ("integer", "number", "boolean", "null", "array", "object"):
        assert dsml.texts(kind) == ('" string="false">', f"</{bar}parameter>")
    kimi = learnt["kimi_k3_tools"]
    assert kimi.markup is not None
    assert (kimi.between, kimi.index_base) == (f'" index="{INDEX_SLOT}"', 1)  # from 1
    assert kimi.after_prompt().between == '" index="1"'
    for kind, named in (("string", "string"), ("integer", "number"), ("boolean", "boolean"),
                        ("null", "null"), ("array", "array"), ("object", "object")):  # fmt: skip
        assert kimi.markup.texts(kind) == (f'" type="{named}"<|sep|>', "<|close|>argument")
    lfm2 = learnt["lfm2_tools"]
    assert lfm2.markup is not None
    assert (lfm2.between, lfm2.markup.separator, lfm2.call_close) == ("(", ", ", ")")
    assert (lfm2.markup.texts("string"), lfm2.markup.texts("integer")) == (("='", "'"), ("=", ""))
    assert lfm2.markup.python == {"boolean", "null", "array"}  # True, None, [False, 8], not {}
    minimax = learnt["minimax_m3_tools"].markup
    assert minimax is not None
    assert (minimax.opening, minimax.texts("string")) == (
        "]<]minimax[>[<",
        (">", f"]<]minimax[>[</{KEY_SLOT}>"),  # the closing tag names the key
    )
    minicpm = learnt["minicpm5_tools"]
    assert minicpm.markup is not None
    assert (minicpm.call_open, minicpm.between, minicpm.separator) == ('<function name="', '">', "\n")
    assert minicpm.markup.opening == '<param name="'
    hy3 = learnt["hy3_tools"].markup
    assert hy3 is not None
    assert hy3.texts("string") == (
        "</arg_key:opensource>\n<arg_value:opensource>",
        "</arg_value:opensource>",
    )
    atem = learnt["atem_tools"]  # one message per call, to its recipient, named again
    assert (atem.call_open, atem.separator) == (" to=", "<|eom|><|start|>assistant")
    assert atem.between == f'<|message|><atem:function_calls>\n<atem:invoke name="{NAME_SLOT}">'


def test_markup_values_are_read_as_the_template_writes_them(
    formats: dict[str, CallFormat],
) -> None:
    schema = {
        "properties": {
            "note": {"type": "string"},
            "n": {"type": "integer"},
            "flag": {"type": "boolean"},
            "items": {"type": "array"},
        }
    }
    bar = "\uff5cDSML\uff5c"
    cases = [
        (
            "dsml_tools",
            f"\n\n<{bar}tool_calls>\n<{bar}invoke name=\"f\">\n"
            f'<{bar}parameter name="flag" string="false">true</{bar}parameter>\n'
            f'<{bar}parameter name="note" string="true">12</{bar}parameter>\n'
            f'<{bar}parameter name="n" string="false">7</{bar}parameter>\n'
            f"</{bar}invoke>\n</{bar}tool_calls>",
        ),
        ("lfm2_tools", "<|tool_call_start|>[f(flag=True, note='12', items=[1, 'a'], n=7)]<|tool_call_end|>"),
        (
            "minicpm5_tools",
            '<function name="f"><param name="note"><![CDATA[12]]></param>'
            '<param name="flag">True</param><param name="n">7</param></function>',
        ),
        (
            "kimi_k3_tools",
            '<|open|>response<|sep|><|close|>response<|sep|><|open|>tools<|sep|>'
            '<|open|>call tool="f" index="1"<|sep|><|open|>argument key="flag" type="boolean"'
            '<|sep|>true<|close|>argument<|sep|><|open|>argument key="note" type="string"<|sep|>'
            "12<|close|>argument<|sep|><|open|>argument key=\"n\" type=\"number\"<|sep|>7"
            "<|close|>argument<|sep|><|close|>call<|sep|><|close|>tools<|sep|>",
        ),
    ]
    for template, text in cases:
        (call,) = read_calls(text, formats[template], {"f": schema}).calls
        arguments = json.loads(call.arguments)
        assert (call.name, arguments["note"], arguments["flag"], arguments["n"]) == (
            "f", "12", True, 7
        ), template  # fmt: skip
        if "items" in arguments:
            assert arguments["items"] == [1, "a"]


def test_a_recipient_before_the_call_is_no_call_in_a_text_answer(
    formats: dict[str, CallFormat],
) -> None:
    """ATEM's answers all start `` to=RECIPIENT``: a text answer to the user is no call, and a
    call read without its recipient is still one."""
    atem = formats["atem_tools"]
    text = read_calls(" to=user<|message|>It is sunny in Paris.", atem, {})
    assert (text.calls, text.text) == ([], "to=user<|message|>It is sunny in Paris.")
    call = (
        '<|message|><atem:function_calls>\n<atem:invoke name="local_time">\n'
        '<atem:parameter name="zone">CET</atem:parameter>\n</atem:invoke>\n</atem:function_calls>'
    )
    for written in (" to=local_time" + call, "local_time" + call):
        assert read_calls(written, atem, {}).calls == [ParsedCall("local_time", '{"zone": "CET"}')]


@pytest.mark.parametrize("template", MARKUP_TEMPLATES)
def test_forced_call_grammar_takes_a_learnt_markups_own_writing(
    formats: dict[str, CallFormat], template: str
) -> None:
    """The grammar of a forced call in a learnt markup accepts the call as the template writes
    it: its tags, its type attributes, Python literals where it writes them (MiniMax-M3 writes
    lists as nested tags, which are not learnt: no list there)."""
    tokenizer = tiny_tokenizer(template, special_tokens=SPECIAL_TOKENS.get(template, ()))
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": CALL_SCHEMA}}
    call_format = formats[template].after_prompt()
    grammar = call_grammar(call_format, [tool], Vocabulary(tokenizer), starts_in_thought=False)
    given = {"city": "São Paulo", "days": 3, "flags": [True, False]}
    if template == "minimax_m3_tools":
        del given["flags"]
    opening, closing = call_format.opening, call_format.call_close + call_format.calls_close

    def call(name: str, arguments: dict[str, Any]) -> str:
        """The call as the template writes it, without what it writes around every answer
        (Kimi K3's response tags before the tools, the end of the turn after them)."""
        written = render_answer(tokenizer, [(name, arguments)])
        return written[written.index(opening) : written.rindex(closing) + len(closing)]

    for arguments in ({"city": "Paris"}, given):
        written = call("get_weather", arguments)
        assert grammar_accepts(tokenizer, grammar, written), (template, written, grammar)
    assert not grammar_accepts(tokenizer, grammar, call("get_weathers", {"city": "Paris"}))
    assert not grammar_accepts(tokenizer, grammar, call("get_weather", {"days": 3}))  # no city
    assert not grammar_accepts(tokenizer, grammar, call("get_weather", {"city": "P", "days": 2.5}))


def test_a_markups_markers_are_its_tokens_and_whole_tags() -> None:
    """The markers of a learnt markup: its added tokens and tags, none cut at the key."""
    template, vocabulary = learnt("minimax_m3_tools")
    markers = vocabulary.markers(template.call_format)
    assert "]<]minimax[>[" in markers
    assert "<tool_call>" in markers
    assert not [marker for marker in markers if KEY_SLOT in marker or marker == "</>"]
