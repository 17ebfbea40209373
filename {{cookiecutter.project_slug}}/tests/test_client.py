"""create(), token accounting, prompts, errors, cancellation and the worker thread."""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path

import pytest
from autogen_core import EVENT_LOGGER_NAME, CancellationToken, FunctionCall
from autogen_core.logging import LLMCallEvent
from autogen_core.models import (
    AssistantMessage,
    FunctionExecutionResult,
    FunctionExecutionResultMessage,
    LLMMessage,
    SystemMessage,
    UserMessage,
)
from reference import bare_generate, load_model, template_ids
from scripting import StepRecorder, scripted_args, start_long_request
from tiny_models import CHAT_TEMPLATES
from transformers import (
    AutoTokenizer,
    LogitsProcessorList,
    PreTrainedTokenizerBase,
)

from {{ cookiecutter.package_name }} import (
    DEFAULT_MODEL_INFO,
    ClientClosedError,
    ContextWindowExceededError,
)
from {{ cookiecutter.package_name }} import {{ cookiecutter.client_class_name }} as Client

SYSTEM = SystemMessage(content="You are a helpful assistant.")
HELLO = UserMessage(content="Hello! How are you today?", source="user")


@pytest.fixture(scope="module")
def tokenizer(tiny_model_path: Path) -> PreTrainedTokenizerBase:
    return AutoTokenizer.from_pretrained(tiny_model_path)


async def test_create_matches_bare_generate_with_exact_usage(
    client: Client, tiny_model_path: Path, tokenizer: PreTrainedTokenizerBase
) -> None:
    prompt = template_ids(
        tokenizer,
        [{"role": "system", "content": SYSTEM.content}, {"role": "user", "content": HELLO.content}],
    )
    model = load_model(tiny_model_path)
    expected = bare_generate(model, prompt, max_new_tokens=24, do_sample=False)

    result = await client.create([SYSTEM, HELLO])

    assert result.content == tokenizer.decode(expected, skip_special_tokens=True)
    assert result.usage.prompt_tokens == len(prompt)
    assert result.usage.completion_tokens == len(expected) == 24
    assert result.finish_reason == "length"
    assert result.thought is None
    assert result.cached is False


async def test_end_of_sequence_gives_stop_and_counts_the_eos_token(
    client: Client, tokenizer: PreTrainedTokenizerBase
) -> None:
    result = await client.create(
        [HELLO], extra_create_args=scripted_args(tokenizer, "Fine, thanks.")
    )
    assert result.content == "Fine, thanks."
    assert result.finish_reason == "stop"
    answer_tokens = len(tokenizer.encode("Fine, thanks.", add_special_tokens=False))
    assert result.usage.completion_tokens == answer_tokens + 1


async def test_stop_string_ends_the_answer_and_is_removed(
    client: Client, tokenizer: PreTrainedTokenizerBase
) -> None:
    args = scripted_args(tokenizer, "Fine", " ST", "OP", " more text after the stop")
    result = await client.create([HELLO], extra_create_args={**args, "stop": ["STOP"]})
    assert result.content == "Fine "
    assert result.finish_reason == "stop"
    assert result.usage.completion_tokens < len(
        tokenizer.encode("Fine STOP more text after the stop")
    )


async def test_stop_strings_from_the_config_apply(
    tiny_model_path: Path, tokenizer: PreTrainedTokenizerBase
) -> None:
    client = Client(model_name=str(tiny_model_path), stop=["thanks"], do_sample=False)
    result = await client.create(
        [HELLO], extra_create_args=scripted_args(tokenizer, "Fine, thanks. Bye.")
    )
    assert result.content == "Fine, "
    assert result.finish_reason == "stop"
    await client.close()


async def test_reasoning_goes_to_thought(
    client: Client, tokenizer: PreTrainedTokenizerBase
) -> None:
    args = scripted_args(
        tokenizer, "<think>", "The user greets me.", "</think>", "\n\nHello there!"
    )
    result = await client.create([HELLO], extra_create_args=args)
    assert result.thought == "The user greets me."
    assert result.content == "Hello there!"
    assert result.finish_reason == "stop"


@pytest.mark.parametrize(
    "messages",
    [
        [HELLO],
        [SYSTEM, HELLO],
        [UserMessage(content=["First part.", "Second part."], source="user")],
        [
            SYSTEM,
            HELLO,
            AssistantMessage(content="I am fine.", thought="Be polite.", source="assistant"),
            UserMessage(content="What is 2 + 2?", source="user"),
        ],
        [
            HELLO,
            AssistantMessage(
                content=[FunctionCall(id="call-1", name="add", arguments='{"a": 2, "b": 2}')],
                source="assistant",
            ),
            FunctionExecutionResultMessage(
                content=[
                    FunctionExecutionResult(
                        content="4", name="add", call_id="call-1", is_error=False
                    )
                ]
            ),
        ],
    ],
    ids=["user", "system", "text-parts", "assistant-thought", "tool-results"],
)
async def test_count_tokens_is_the_prompt_the_model_gets(
    client: Client, tokenizer: PreTrainedTokenizerBase, messages: list[LLMMessage]
) -> None:
    count = client.count_tokens(messages)
    result = await client.create(messages, extra_create_args={"max_new_tokens": 1})
    assert result.usage.prompt_tokens == count
    assert client.remaining_tokens(messages) == client.context_window - count == 2048 - count


def test_messages_render_through_the_chat_template(
    client: Client, tokenizer: PreTrainedTokenizerBase
) -> None:
    history: list[LLMMessage] = [
        SYSTEM,
        UserMessage(content=["First part.", "Second part."], source="user"),
        AssistantMessage(content="I am fine.", thought="Be polite.", source="assistant"),
        AssistantMessage(
            content=[FunctionCall(id="call-1", name="add", arguments='{"a": 2}')],
            source="assistant",
        ),
        FunctionExecutionResultMessage(
            content=[
                FunctionExecutionResult(content="4", name="add", call_id="call-1", is_error=False)
            ]
        ),
    ]
    expected = template_ids(
        tokenizer,
        [
            {"role": "system", "content": SYSTEM.content},
            {"role": "user", "content": "First part.\nSecond part."},
            {"role": "assistant", "content": "I am fine.", "reasoning_content": "Be polite."},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "id": "call-1",
                        "type": "function",
                        "function": {"name": "add", "arguments": {"a": 2}},
                    }
                ],
            },
            {"role": "tool", "content": "4", "tool_call_id": "call-1", "name": "add"},
        ],
    )
    assert client.count_tokens(history) == len(expected)
    text = tokenizer.decode(expected)
    assert "<think>Be polite.</think>" in text
    assert '<tool_call>{"name": "add", "arguments": {"a": 2}}</tool_call>' in text
    assert "<tool_response>4</tool_response>" in text


async def test_context_window_override_and_overflow_error(tiny_model_path: Path) -> None:
    client = Client(
        model_name=str(tiny_model_path), context_window=20, max_new_tokens=50, do_sample=False
    )
    count = client.count_tokens([HELLO])
    assert client.remaining_tokens([HELLO]) == max(0, 20 - count)
    long = UserMessage(content="word " * 50, source="user")
    with pytest.raises(ContextWindowExceededError) as raised:
        await client.create([long])
    assert str(client.count_tokens([long])) in str(raised.value)
    assert "20" in str(raised.value)
    assert client.total_usage().prompt_tokens == 0  # nothing was generated
    await client.close()


async def test_answer_is_capped_by_the_context_window(tiny_model_path: Path) -> None:
    client = Client(
        model_name=str(tiny_model_path), context_window=30, max_new_tokens=100, do_sample=False
    )
    count = client.count_tokens([HELLO])
    result = await client.create([HELLO])
    assert result.usage.completion_tokens == 30 - count
    assert result.finish_reason == "length"
    await client.close()


async def test_tokenizer_without_chat_template_uses_the_fallback(
    tiny_model_without_template_path: Path,
) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_without_template_path)
    assert not tokenizer.chat_template
    client = Client(
        model_name=str(tiny_model_without_template_path), max_new_tokens=8, do_sample=False
    )
    expected = tokenizer.encode(
        "System: Be brief.\nUser: Hello!\nAssistant:", add_special_tokens=False
    )
    messages: list[LLMMessage] = [
        SystemMessage(content="Be brief."),
        UserMessage(content="Hello!", source="user"),
    ]
    assert client.count_tokens(messages) == len(expected)
    result = await client.create(
        messages, extra_create_args=scripted_args(tokenizer, " Hi.", "\nUser:", " more")
    )
    assert result.content == " Hi."
    assert result.finish_reason == "stop"
    await client.close()


REJECTS_SYSTEM = (CHAT_TEMPLATES / "rejects_system.jinja").read_text(encoding="utf-8")


async def test_template_without_system_role_gets_it_folded_into_the_user_turn(
    tiny_model_path: Path, tokenizer: PreTrainedTokenizerBase
) -> None:
    client = Client(model_name=str(tiny_model_path), chat_template=REJECTS_SYSTEM, max_new_tokens=2)
    expected = tokenizer.encode(
        "<|im_start|>user\nBe brief.\n\nHello!<|im_end|>\n<|im_start|>assistant\n",
        add_special_tokens=False,
    )
    messages: list[LLMMessage] = [
        SystemMessage(content="Be brief."),
        UserMessage(content="Hello!", source="user"),
    ]
    assert client.count_tokens(messages) == len(expected)
    result = await client.create(messages)
    assert result.usage.prompt_tokens == len(expected)
    await client.close()


async def test_a_refused_later_system_message_is_folded_for_that_request_only(
    tiny_model_path: Path, tokenizer: PreTrainedTokenizerBase
) -> None:
    template = (CHAT_TEMPLATES / "rejects_later_system.jinja").read_text(encoding="utf-8")
    client = Client(model_name=str(tiny_model_path), chat_template=template, max_new_tokens=2)

    def count(text: str) -> int:
        return len(tokenizer.encode(text, add_special_tokens=False))

    later: list[LLMMessage] = [
        SystemMessage(content="Be brief."),
        UserMessage(content="Hello!", source="user"),
        AssistantMessage(content="Hi.", source="assistant"),
        SystemMessage(content="Now in French."),
        UserMessage(content="Bye!", source="user"),
    ]
    leading = later[:2]
    try:
        for _ in range(2):  # the fold of one request leaves the next one as it is
            assert client.count_tokens(later) == count(
                "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHello!<|im_end|>\n"
                "<|im_start|>assistant\nHi.<|im_end|>\n"
                "<|im_start|>user\nNow in French.\n\nBye!<|im_end|>\n<|im_start|>assistant\n"
            )
            result = await client.create(later)
            assert result.usage.prompt_tokens == client.count_tokens(later)
            assert client.count_tokens(leading) == count(
                "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHello!<|im_end|>\n"
                "<|im_start|>assistant\n"
            )
    finally:
        await client.close()


async def test_extra_create_args_pass_through_and_are_checked(client: Client) -> None:
    result = await client.create(
        [HELLO], extra_create_args={"max_new_tokens": 3, "no_repeat_ngram_size": 2}
    )
    assert result.usage.completion_tokens == 3
    with pytest.raises(ValueError, match="not_a_generation_argument"):
        await client.create([HELLO], extra_create_args={"not_a_generation_argument": 1})
    with pytest.raises(ValueError, match="temperature"):
        await client.create([HELLO], extra_create_args={"temperature": -1.0})


async def test_seeded_sampling_repeats(tiny_model_path: Path) -> None:
    client = Client(
        model_name=str(tiny_model_path), do_sample=True, temperature=1.0, seed=7, max_new_tokens=12
    )
    first = await client.create([HELLO])
    second = await client.create([HELLO])
    other = await client.create([HELLO], extra_create_args={"seed": 8})
    assert first.content == second.content
    assert other.content != first.content
    await client.close()


async def test_usage_accumulates_under_concurrent_calls(tiny_model_path: Path) -> None:
    client = Client(model_name=str(tiny_model_path), max_new_tokens=5, do_sample=False)
    prompts = [UserMessage(content="x " * n, source="user") for n in range(1, 7)]
    results = await asyncio.gather(*(client.create([p]) for p in prompts))
    total = client.total_usage()
    assert total.prompt_tokens == sum(r.usage.prompt_tokens for r in results)
    assert total.completion_tokens == sum(r.usage.completion_tokens for r in results) == 30
    assert client.actual_usage() == total
    await client.close()


async def test_all_generation_runs_on_the_client_worker_thread(client: Client) -> None:
    recorders = [StepRecorder() for _ in range(3)]
    await asyncio.gather(
        *(
            client.create([HELLO], extra_create_args={"logits_processor": LogitsProcessorList([r])})
            for r in recorders
        )
    )
    threads = set().union(*(r.threads for r in recorders))
    assert len(threads) == 1
    assert threads != {threading.current_thread().name}


async def test_cancellation_stops_generate_within_one_step(client: Client) -> None:
    token = CancellationToken()
    steps_after_cancel = 0

    def on_step(step: int) -> None:
        nonlocal steps_after_cancel
        if token.is_cancelled():
            steps_after_cancel += 1

    recorder = StepRecorder(on_step)
    loop = asyncio.get_running_loop()
    recorder_with_cancel = StepRecorder(
        lambda step: step == 5 and loop.call_soon_threadsafe(token.cancel)
    )
    processors = LogitsProcessorList([recorder_with_cancel, recorder])
    with pytest.raises(asyncio.CancelledError):
        await client.create(
            [HELLO],
            cancellation_token=token,
            extra_create_args={"max_new_tokens": 5000, "logits_processor": processors},
        )
    assert recorder.steps < 100
    assert steps_after_cancel <= 1
    # The client is ready for the next request.
    result = await client.create([HELLO], extra_create_args={"max_new_tokens": 4})
    assert result.usage.completion_tokens == 4


async def test_cancelling_the_task_stops_the_model(client: Client) -> None:
    task, recorder = await start_long_request(client)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    steps_at_return = recorder.steps
    result = await client.create([HELLO], extra_create_args={"max_new_tokens": 2})
    assert result.usage.completion_tokens == 2
    assert recorder.steps == steps_at_return < 5000


async def test_errors_from_the_model_propagate_with_their_type(client: Client) -> None:
    def fail(step: int) -> None:
        raise RuntimeError("logits processor exploded")

    with pytest.raises(RuntimeError, match="logits processor exploded"):
        await client.create(
            [HELLO],
            extra_create_args={"logits_processor": LogitsProcessorList([StepRecorder(fail)])},
        )
    result = await client.create([HELLO], extra_create_args={"max_new_tokens": 2})
    assert result.usage.completion_tokens == 2


async def test_loading_errors_surface(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="does-not-exist"):
        Client(model_name=str(tmp_path / "does-not-exist"), local_files_only=True)


async def test_llm_call_event_is_logged(client: Client, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger=EVENT_LOGGER_NAME):
        result = await client.create([HELLO])
    events = [r.msg for r in caplog.records if isinstance(r.msg, LLMCallEvent)]
    assert len(events) == 1
    assert events[0].kwargs["prompt_tokens"] == result.usage.prompt_tokens
    assert events[0].kwargs["completion_tokens"] == result.usage.completion_tokens
    assert events[0].kwargs["messages"] == [{"role": "user", "content": HELLO.content}]


async def test_closed_client_refuses_work_and_releases_the_worker(tiny_model_path: Path) -> None:
    before = set(threading.enumerate())
    # A prefix cache size no other test uses: a model of its own, not one shared with them.
    client = Client(model_name=str(tiny_model_path), max_new_tokens=2, prefix_cache_mb=5)
    await client.create([HELLO])
    worker_threads = set(threading.enumerate()) - before
    assert worker_threads
    await client.close()
    assert not any(t.is_alive() for t in worker_threads)
    with pytest.raises(ClientClosedError):
        await client.create([HELLO])
    with pytest.raises(ClientClosedError):
        client.count_tokens([HELLO])
    await client.close()  # closing twice is harmless


async def test_clients_created_together_load_the_same_model(tiny_model_path: Path) -> None:
    clients = [Client(model_name=str(tiny_model_path), do_sample=False) for _ in range(3)]
    answers = [
        (await c.create([HELLO], extra_create_args={"max_new_tokens": 6})).content for c in clients
    ]
    assert answers[0] == answers[1] == answers[2]
    for c in clients:
        await c.close()


async def test_close_stops_running_and_queued_requests(tiny_model_path: Path) -> None:
    client = Client(model_name=str(tiny_model_path), do_sample=False, max_batch_size=1)
    running, recorder = await start_long_request(client)
    queued = asyncio.create_task(client.create([HELLO]))  # no room: it waits
    await asyncio.sleep(0.05)
    await client.close()
    with pytest.raises(asyncio.CancelledError):
        await running
    with pytest.raises(ClientClosedError):
        await queued
    assert recorder.steps < 5000


async def test_cancelling_a_queued_request_drops_it_at_once(tiny_model_path: Path) -> None:
    client = Client(model_name=str(tiny_model_path), do_sample=False, max_batch_size=1)
    running, recorder = await start_long_request(client)
    token = CancellationToken()
    queued = asyncio.create_task(  # no room beside the long request: it waits
        client.create([HELLO], cancellation_token=token)
    )
    await asyncio.sleep(0.05)
    before = client.total_usage()
    token.cancel()
    with pytest.raises(asyncio.CancelledError):
        await queued
    assert not running.done(), "the queued request waited for the running one"
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    usage = client.total_usage()
    assert usage.completion_tokens - before.completion_tokens == recorder.steps  # running only
    assert usage.prompt_tokens - before.prompt_tokens == client.count_tokens([HELLO])
    await client.close()


async def test_close_while_the_model_loads_fails_the_waiting_request(
    tiny_model_path: Path,
) -> None:
    client = Client(model_name=str(tiny_model_path))
    waiting = asyncio.create_task(client.create([HELLO]))
    await asyncio.sleep(0)  # the request now waits for the weights
    await client.close()
    with pytest.raises(ClientClosedError):
        await waiting


async def test_cancelled_generations_count_in_total_usage(client: Client) -> None:
    before = client.total_usage()
    task, recorder = await start_long_request(client)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    usage = client.total_usage()
    assert usage.completion_tokens - before.completion_tokens == recorder.steps > 0
    assert usage.prompt_tokens - before.prompt_tokens == client.count_tokens([HELLO])


async def test_pad_token_id_may_be_given_per_request(client: Client) -> None:
    result = await client.create([HELLO], extra_create_args={"max_new_tokens": 3, "pad_token_id": 0})
    assert result.usage.completion_tokens == 3


def test_model_info_is_each_clients_own(client: Client) -> None:
    default_vision = DEFAULT_MODEL_INFO["vision"]
    client.model_info["vision"] = not default_vision
    try:
        assert DEFAULT_MODEL_INFO["vision"] is default_vision
        assert client.dump_component().config.get("model_info") is None
    finally:
        client.model_info["vision"] = default_vision
