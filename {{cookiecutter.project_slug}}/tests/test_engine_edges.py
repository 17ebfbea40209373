"""The engine's edges: requests that run alone, close(), and hostile settings, each beside
good requests that must still get the answers they get alone; every call returns."""

from __future__ import annotations

import asyncio
import gc
import time
import weakref
from collections.abc import Awaitable, Callable, Collection, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest
import torch
from autogen_core.models import CreateResult
from mixing import PROMPTS, assert_good, good_ones
from reference import bare_generate, load_model, template_ids
from scripting import HELLO, StepRecorder, local_engine, start_long_request
from transformers import AutoTokenizer, LogitsProcessorList, PreTrainedTokenizerBase

from {{ cookiecutter.package_name }} import ClientClosedError
from {{ cookiecutter.package_name }} import {{ cookiecutter.client_class_name }} as Client
from {{ cookiecutter.package_name }}._core._errors import RequestFailedError
from {{ cookiecutter.package_name }}._core._generation import GenerationRequest

T = TypeVar("T")

WAIT_S = 300
"""Every call returns well within this (a bound that proves it returns, not a timing)."""

BEAMS: dict[str, Any] = {"num_beams": 2, "max_new_tokens": 400, "min_new_tokens": 400}
"""A long beam search: it runs alone, through ``generate``."""


@pytest.fixture(scope="module")
def tokenizer(tiny_model_path: Path) -> PreTrainedTokenizerBase:
    return AutoTokenizer.from_pretrained(tiny_model_path)


async def outcome(call: Awaitable[T]) -> T | BaseException:
    """What ``call`` returned or raised; it must return within ``WAIT_S``."""
    try:
        return await asyncio.wait_for(call, WAIT_S)
    except TimeoutError:
        raise AssertionError("a call did not return") from None
    except (Exception, asyncio.CancelledError) as error:
        return error


def processors(on_step: Callable[[int], object]) -> LogitsProcessorList:
    return LogitsProcessorList([StepRecorder(on_step)])


# -- 1. Prompt-lookup decoding keeps every token it accepts -------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        {"max_new_tokens": 120, "min_new_tokens": 120},
        {"max_new_tokens": 60},
        {"max_new_tokens": 60, "stop": "a piece of the answer"},
    ],
    ids=["budget", "model-ends", "stop-string"],
)
async def test_prompt_lookup_gives_the_greedy_answer(
    client: Client,
    tiny_model_path: Path,
    tokenizer: PreTrainedTokenizerBase,
    args: dict[str, Any],
) -> None:
    if "stop" in args:
        answer = str(
            (await client.create(PROMPTS[1], extra_create_args={"max_new_tokens": 60})).content
        )
        args = {**args, "stop": [answer[20:24]]}
    plain = await client.create(PROMPTS[1], extra_create_args=args)
    good = await good_ones(client)
    looked_up = await outcome(
        client.create(PROMPTS[1], extra_create_args={**args, "prompt_lookup_num_tokens": 3})
    )
    await assert_good(good, tiny_model_path, tokenizer)
    assert isinstance(looked_up, CreateResult)
    assert looked_up.content == plain.content
    assert looked_up.usage == plain.usage, "every accepted token, none past the end"
    assert looked_up.finish_reason == plain.finish_reason


# -- 2. A grammar with assisted decoding is refused before it starts ----------------------------


class AnyToken:
    """A grammar that allows every token: the engine sees a grammar, the model is free."""

    def start(self, vocab_size: int, stop_token_ids: Collection[int]) -> AnyToken:
        return self

    def structured_outputs(self) -> dict[str, Any]:
        return {}

    def server_reserve(self) -> int:
        return 0

    def completion(
        self, token_ids: Sequence[int], stop_token_ids: Collection[int], left: int
    ) -> list[int] | None:
        return None

    def mask(self, logits: torch.Tensor) -> None:
        pass

    def accept(self, token_id: int) -> None:
        pass


@pytest.mark.parametrize(
    "args",
    [{"prompt_lookup_num_tokens": 3}, {"num_beams": 2}, {"guidance_scale": 1.5}],
    ids=["prompt-lookup", "beams", "guidance"],
)
async def test_a_grammar_with_a_whole_sequence_strategy_is_refused_up_front(
    client: Client,
    tiny_model_path: Path,
    tokenizer: PreTrainedTokenizerBase,
    args: dict[str, Any],
) -> None:
    def request(**extra: Any) -> GenerationRequest:
        return GenerationRequest(
            input_ids=tokenizer.encode("Hello"),
            max_new_tokens=12,
            settings=client._chat.settings,
            extra_arguments=extra,
            constraint=AnyToken(),
        )

    good = await good_ones(client)
    refused = await outcome(client._chat.model.engine.submit(request(**args), None).result())
    constrained = await outcome(client._chat.model.engine.submit(request(), None).result())
    await assert_good(good, tiny_model_path, tokenizer)
    assert isinstance(refused, ValueError)
    assert next(iter(args)) in str(refused)
    assert not isinstance(constrained, BaseException)
    assert len(constrained.token_ids) > 0, "the same grammar alone decodes"


# -- 3. close() cancels a request running alone -------------------------------------------------


async def test_close_cancels_a_request_running_alone(
    tiny_model_path: Path, tokenizer: PreTrainedTokenizerBase
) -> None:
    client = Client(model_name=str(tiny_model_path), do_sample=False)
    beams, _ = await start_long_request(client, **BEAMS)
    good = await good_ones(client)
    await client.close()
    outcomes = await asyncio.gather(outcome(beams), *(outcome(task) for task in good))
    assert isinstance(outcomes[0], asyncio.CancelledError), "not a truncated answer"
    for result in outcomes[1:]:  # finished before the close, or cancelled or refused by it
        assert isinstance(result, (CreateResult, asyncio.CancelledError, ClientClosedError))


# -- 4. A seeded request alone draws from nobody else's generator -------------------------------


async def test_a_seeded_request_alone_gives_its_answer_beside_unseeded_sampling(
    client: Client,
) -> None:
    seeded = {
        "num_beams": 2,
        "do_sample": True,
        "seed": 7,
        "max_new_tokens": 24,
        "min_new_tokens": 24,
    }
    first = await client.create(PROMPTS[1], extra_create_args=seeded)
    samplers = [
        # min_new_tokens: an unseeded sampler must not end (by an end token) before it is
        # cancelled.
        (await start_long_request(client, prompt, do_sample=True, temperature=1.5, min_new_tokens=5000))[0]
        for prompt in (PROMPTS[0], PROMPTS[2])
    ]
    again = await outcome(client.create(PROMPTS[1], extra_create_args=seeded))
    for sampler in samplers:
        sampler.cancel()
        assert isinstance(await outcome(sampler), asyncio.CancelledError)
    assert isinstance(again, CreateResult)
    assert again.content == first.content


# -- 6. Settings the engine honours exactly, and those it refuses -------------------------------


def sleep_a_little(step: int) -> None:
    time.sleep(0.005)  # each step takes at least this: 1500 steps take far more than max_time


@pytest.mark.parametrize("alone", [False, True], ids=["batched", "alone"])
async def test_max_time_ends_a_request_as_length(
    client: Client, tiny_model_path: Path, tokenizer: PreTrainedTokenizerBase, alone: bool
) -> None:
    args: dict[str, Any] = {
        "max_time": 0.05,
        "max_new_tokens": 1500,
        "min_new_tokens": 1500,
        "logits_processor": processors(sleep_a_little),
    }
    if alone:
        args["num_beams"] = 2
    good = await good_ones(client)
    result = await outcome(client.create([HELLO], extra_create_args=args))
    await assert_good(good, tiny_model_path, tokenizer)
    assert isinstance(result, CreateResult)
    assert 0 < result.usage.completion_tokens < 1500
    assert result.finish_reason == "length"


async def test_forced_eos_token_ends_the_answer_as_generate_does(
    client: Client, tiny_model_path: Path, tokenizer: PreTrainedTokenizerBase
) -> None:
    forced = tokenizer.encode(" dog")[0]
    prompt = template_ids(tokenizer, [{"role": "user", "content": PROMPTS[2][0].content}])
    model = load_model(tiny_model_path)
    expected = bare_generate(
        model, prompt, max_new_tokens=6, forced_eos_token_id=forced, do_sample=False
    )
    assert (
        expected[-1]
        == forced
        != bare_generate(model, prompt, max_new_tokens=6, do_sample=False)[-1]
    )
    request = GenerationRequest(
        input_ids=prompt,
        max_new_tokens=6,
        settings=client._chat.settings,
        extra_arguments={"forced_eos_token_id": forced},
    )
    good = await good_ones(client)
    output = await outcome(client._chat.model.engine.submit(request, None).result())
    await assert_good(good, tiny_model_path, tokenizer)
    assert not isinstance(output, BaseException)
    assert output.token_ids == expected


def decoding_settings(prompt: list[int], first: int, second: int) -> list[dict[str, Any]]:
    """``generate`` settings that change greedy answers, about the answer's first two tokens."""
    return [
        {"min_length": len(prompt) + 10},
        {"no_repeat_ngram_size": 2},
        {"bad_words_ids": [[first]]},
        {"suppress_tokens": [second]},
        {"begin_suppress_tokens": [first]},
        {"sequence_bias": {(first,): -100.0}},
        {"exponential_decay_length_penalty": (2, 1.5)},
        {"encoder_repetition_penalty": 1.5},
        {"encoder_no_repeat_ngram_size": 2},
        {"repetition_penalty": 1.5},
        {"renormalize_logits": True},
        {"min_new_tokens": 10},
        {"eos_token_id": [second]},
        {"forced_eos_token_id": second},
        {"use_cache": False},
        {"watermarking_config": {"greenlist_ratio": 0.25}},
    ]


async def test_decoding_settings_decoding_together_give_what_generate_gives(
    client: Client, tiny_model_path: Path, tokenizer: PreTrainedTokenizerBase
) -> None:
    prompt = template_ids(tokenizer, [{"role": "user", "content": PROMPTS[2][0].content}])
    model = load_model(tiny_model_path)
    plain = bare_generate(model, prompt, max_new_tokens=12, do_sample=False)
    settings = decoding_settings(prompt, plain[0], plain[1])
    expected = [
        bare_generate(model, prompt, max_new_tokens=12, do_sample=False, **args)
        for args in settings
    ]
    generations = [
        client._chat.model.engine.submit(
            GenerationRequest(prompt, 12, client._chat.settings, extra_arguments=args), None
        )
        for args in settings
    ]
    outputs = await asyncio.gather(*(outcome(generation.result()) for generation in generations))
    for args, output, ids in zip(settings, outputs, expected, strict=True):
        assert not isinstance(output, BaseException), args
        assert output.token_ids == ids, args


@pytest.mark.parametrize(
    "args",
    [
        {"penalty_alpha": 0.6, "top_k": 4},
        {"dola_layers": "high"},
        {"num_beams": 2, "num_beam_groups": 2, "diversity_penalty": 1.0},
        {"constraints": []},
        {"token_healing": True},
        {"cache_implementation": "static"},
    ],
    ids=lambda args: next(iter(args)) if "num_beam_groups" not in args else "num_beam_groups",
)
async def test_settings_the_engine_cannot_honour_are_refused_naming_them(
    client: Client, tiny_model_path: Path, tokenizer: PreTrainedTokenizerBase, args: dict[str, Any]
) -> None:
    named = "num_beam_groups" if "num_beam_groups" in args else next(iter(args))
    good = await good_ones(client)
    with pytest.raises(ValueError, match=named):
        await client.create([HELLO], extra_create_args=args)
    await assert_good(good, tiny_model_path, tokenizer)


# -- 7. What a request's processor raises, SystemExit included, ends that request only ----------


@pytest.mark.parametrize("raised", [SystemExit, KeyboardInterrupt, GeneratorExit])
@pytest.mark.parametrize("alone", [False, True], ids=["batched", "alone"])
async def test_a_processor_raising_any_base_exception_fails_its_request_only(
    client: Client,
    tiny_model_path: Path,
    tokenizer: PreTrainedTokenizerBase,
    raised: type[BaseException],
    alone: bool,
) -> None:
    def leave(step: int) -> None:
        if step == 3:
            raise raised("leaving")

    args: dict[str, Any] = {"max_new_tokens": 50, "logits_processor": processors(leave)}
    if alone:
        args["num_beams"] = 2
    good = await good_ones(client)
    failed = await outcome(client.create([HELLO], extra_create_args=args))
    await assert_good(good, tiny_model_path, tokenizer)
    assert isinstance(failed, RequestFailedError)
    assert raised.__name__ in str(failed)
    later = await outcome(client.create([HELLO], extra_create_args={"max_new_tokens": 3}))
    assert isinstance(later, CreateResult), "the engine goes on"


# -- 8. close() lets go of the model ------------------------------------------------------------


async def test_close_lets_go_of_the_model_while_the_client_lives(tiny_model_path: Path) -> None:
    # A prefix cache size no other test uses: a model of its own, not one shared with them.
    client = Client(model_name=str(tiny_model_path), do_sample=False, prefix_cache_mb=11)
    running, _ = await start_long_request(client)
    beams = asyncio.ensure_future(client.create(PROMPTS[1], extra_create_args=BEAMS))
    model = weakref.ref(local_engine(client).model.result())
    await client.close()
    outcomes = await asyncio.gather(outcome(running), outcome(beams))
    assert all(isinstance(o, (asyncio.CancelledError, ClientClosedError)) for o in outcomes)
    gc.collect()
    assert model() is None, "the model is released at close(), not when the client goes"
    assert client.model_info  # the client itself is still here
