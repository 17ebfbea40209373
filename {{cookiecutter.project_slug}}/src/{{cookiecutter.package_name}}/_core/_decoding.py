"""How one request chooses its tokens: its logits processors, grammar, sampling and end.

The processors are transformers' own, built from the request's settings exactly as
``generate`` builds them (temperature, top-k/top-p, repetition penalty, ``min_new_tokens``,
...), so a request decodes the same whether it runs alone or beside others. A request whose
decoding strategy needs ``generate`` itself (beam search, assisted decoding) is marked to run
alone; settings the engine cannot honour exactly are refused before the request starts.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Protocol, cast

import torch
from transformers import (
    GenerationConfig,
    LogitsProcessor,
    LogitsProcessorList,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    StopStringCriteria,
)
from transformers.generation.configuration_utils import GenerationMode

from ._config import GenerationSettings
from ._generation import (
    CLIENT_CONTROLLED,
    PASSTHROUGH_ARGUMENTS,
    SAMPLING_FIELDS,
    UNSUPPORTED,
    Constraint,
    GenerationRequest,
    TokenConstraint,
)

_STEPWISE_MODES = frozenset({GenerationMode.GREEDY_SEARCH, GenerationMode.SAMPLE})
"""Decoding strategies that choose one token per step from the logits: they can share steps."""

_STRATEGY_FIELDS = ("num_beams", "prompt_lookup_num_tokens", "assistant_early_exit", "use_mtp")
"""Generation arguments that choose a strategy needing ``generate`` itself."""


def _whole_sequence_strategy(config: GenerationConfig) -> str | None:
    """The settings that make a request need ``generate`` itself (beams, assisted decoding,
    classifier-free guidance), named; None when it chooses one token per step."""
    if config.get_generation_mode() in _STEPWISE_MODES:
        return None if config.guidance_scale in (None, 1) else f"guidance_scale={config.guidance_scale!r}"
    named = [
        f"{name}={value!r}"
        for name in _STRATEGY_FIELDS
        if (value := getattr(config, name, None)) not in (None, False, 1)
    ]
    return ", ".join(named) or str(config.get_generation_mode().value)


class _PreparesGeneration(Protocol):
    """The parts of transformers' ``GenerationMixin`` that turn arguments into processors."""

    def _prepare_generation_config(
        self, generation_config: GenerationConfig | None, **kwargs: Any
    ) -> tuple[GenerationConfig, dict[str, Any]]: ...

    def _prepare_special_tokens(
        self, generation_config: GenerationConfig, kwargs_has_attention_mask: bool | None = None,
        device: torch.device | str | None = None,
    ) -> None: ...

    def _get_logits_processor(
        self, generation_config: GenerationConfig, input_ids_seq_length: int | None = None,
        encoder_input_ids: torch.Tensor | None = None,
        logits_processor: LogitsProcessorList | None = None, device: str | None = None,
        model_kwargs: dict[str, Any] | None = None,
    ) -> LogitsProcessorList: ...


class ConstrainedLogits(LogitsProcessor):
    """Applies a request's :class:`Constraint` as a logits processor, for one sequence.

    The grammar starts at the first call (when the width of the logits is known) and then
    takes each token that was chosen, read from the end of the sequence.
    """

    def __init__(self, constraint: Constraint, stop_token_ids: set[int], prompt_length: int) -> None:
        self._constraint = constraint
        self._stop_token_ids = stop_token_ids
        self._prompt_length = prompt_length
        self._state: TokenConstraint | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self._state is None:
            self._state = self._constraint.start(scores.shape[-1], self._stop_token_ids)
        elif input_ids.shape[-1] > self._prompt_length:
            self._state.accept(int(input_ids[0, -1]))
        self._state.mask(scores[0])
        return scores


def _default_types() -> dict[str, type]:
    """The type of each generation argument that has a typed default in transformers."""
    defaults: dict[str, Any] = getattr(GenerationConfig, "_get_default_generation_params", dict)()
    return {
        name: type(value)
        for name, value in defaults.items()
        if isinstance(value, (bool, int, float, str))
    }


_DEFAULT_TYPES = _default_types()


def _has_type(value: object, expected: type) -> bool:
    if expected is bool or isinstance(value, bool):
        return isinstance(value, expected) and expected is bool
    if expected is float:
        return isinstance(value, (int, float))
    return isinstance(value, expected)


def request_settings(
    base: GenerationSettings, extra_create_args: Mapping[str, Any]
) -> tuple[GenerationSettings, dict[str, Any]]:
    """A request's settings (the client's, with its overrides) and its other ``generate``
    arguments, refused before the request starts when ``generate`` would fail on them.

    Raises:
        ValueError: an unknown argument, one the client sets itself, or a value of the wrong
            type or range; the message names it.
    """
    overrides = {k: v for k, v in extra_create_args.items() if k in GenerationSettings.model_fields}
    passthrough = {k: v for k, v in extra_create_args.items() if k not in overrides}
    for name, value in passthrough.items():
        if name in UNSUPPORTED:
            raise ValueError(f"extra_create_args[{name!r}] is not supported: {UNSUPPORTED[name]}.")
        if name in CLIENT_CONTROLLED:
            raise ValueError(
                f"extra_create_args[{name!r}] is set by the client: {CLIENT_CONTROLLED[name]}."
            )
        if name not in PASSTHROUGH_ARGUMENTS:
            raise ValueError(
                f"Unknown extra_create_args[{name!r}]: use the config's generation fields "
                f"({', '.join(GenerationSettings.model_fields)}) or transformers "
                "GenerationConfig arguments."
            )
        expected = _DEFAULT_TYPES.get(name)
        if expected is not None and not _has_type(value, expected):
            raise ValueError(
                f"extra_create_args[{name!r}] must be {expected.__name__}, not {value!r}"
            )
    plain = {name: value for name, value in passthrough.items() if name != "logits_processor"}
    try:
        config = GenerationConfig(**plain)  # type: ignore[no-untyped-call]
        config.validate(strict=True)
        config.get_generation_mode()
        settings = (
            GenerationSettings.model_validate({**base.model_dump(), **overrides})
            if overrides
            else base
        )
    except Exception as error:
        raise ValueError(f"Invalid extra_create_args: {error}") from error
    return settings, passthrough


def generate_arguments(request: GenerationRequest) -> dict[str, Any]:
    """The request's settings and extra arguments as ``generate`` keyword arguments."""
    arguments: dict[str, Any] = {
        name: getattr(request.settings, name)
        for name in SAMPLING_FIELDS
        if getattr(request.settings, name) is not None
    }
    arguments.update(request.extra_arguments)
    arguments["max_new_tokens"] = request.max_new_tokens
    return arguments


def _user_processors(arguments: dict[str, Any]) -> list[LogitsProcessor]:
    given = arguments.pop("logits_processor", None) or []
    return [given] if isinstance(given, LogitsProcessor) else list(given)


class TokenChooser:
    """Chooses each next token of one request and tells when it is done."""

    _sample = False
    _generator: torch.Generator | None = None
    _stop: StopStringCriteria | None = None
    _deadline: float | None = None

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        request: GenerationRequest,
    ) -> None:
        """Raises ``ValueError`` (or the library's error) for settings ``generate`` refuses."""
        arguments = generate_arguments(request)
        user = _user_processors(arguments)
        preparer = cast(_PreparesGeneration, model)
        config, model_kwargs = preparer._prepare_generation_config(None, **arguments)
        if model_kwargs:
            raise ValueError(f"Unknown generation arguments: {sorted(model_kwargs)}")
        config.validate(strict=True)
        self.prompt_length = len(request.input_ids)
        self.max_time: float | None = config.max_time
        strategy = _whole_sequence_strategy(config)
        if strategy is not None and request.constraint is not None:
            raise ValueError(
                f"a grammar (JSON output, a forced tool call) chooses one token at a time: "
                f"{strategy} cannot be used with it."
            )
        self.runs_alone = strategy is not None or bool(request.model_inputs)
        eos = config.eos_token_id
        self.eos: frozenset[int] = frozenset(
            () if eos is None else [eos] if isinstance(eos, int) else [int(token) for token in eos]
        )
        if self.runs_alone:  # generate builds its own processors
            self._processors = LogitsProcessorList()
            return
        if request.constraint is not None:
            user.append(ConstrainedLogits(request.constraint, set(self.eos), self.prompt_length))
        preparer._prepare_special_tokens(config, True, device=model.device)
        config.max_length = self.prompt_length + request.max_new_tokens  # as generate sets it
        prompt = torch.tensor([request.input_ids], dtype=torch.long, device=model.device)
        self._processors = preparer._get_logits_processor(
            config,
            input_ids_seq_length=self.prompt_length,
            encoder_input_ids=prompt,
            logits_processor=LogitsProcessorList(user),
            device=str(model.device),
            model_kwargs={"attention_mask": torch.ones_like(prompt)},
        )
        self._sample = bool(config.do_sample)
        if self._sample:  # never the global generator: a seeded request alone draws from it
            self._generator = torch.Generator(model.device)
            if request.settings.seed is None:
                self._generator.seed()
            else:
                self._generator.manual_seed(request.settings.seed)
        stop = request.settings.stop
        self._stop = StopStringCriteria(tokenizer, stop) if stop else None
        self._ids = torch.empty((1, self.prompt_length + request.max_new_tokens), dtype=torch.long)
        self._ids[0, : self.prompt_length] = torch.tensor(request.input_ids, dtype=torch.long)
        self._length = self.prompt_length

    def start_clock(self) -> None:
        """The request starts being processed: its ``max_time`` counts from now."""
        if self.max_time is not None:
            self._deadline = time.monotonic() + self.max_time

    def out_of_time(self) -> bool:
        """Whether the request's ``max_time`` ran out."""
        return self._deadline is not None and time.monotonic() > self._deadline

    def choose(self, logits: torch.Tensor) -> int:
        """The next token from this request's logits (``[1, vocab]``, float32)."""
        scores = cast(torch.FloatTensor, logits)
        if self._processors:
            sequence = cast(torch.LongTensor, self._ids[:, : self._length])
            for processor in self._processors:  # not the list's call: it inspects each one, each time
                scores = processor(sequence, scores)
        if self._sample:
            probabilities = torch.softmax(scores, dim=-1)
            token = int(torch.multinomial(probabilities, 1, generator=self._generator))
        else:
            token = int(scores.argmax(dim=-1))
        self._ids[0, self._length] = token
        self._length += 1
        return token

    def hit_stop_string(self, logits: torch.Tensor) -> bool:
        """Whether the generated text (never the prompt) now ends with a stop string."""
        if self._stop is None:
            return False
        generated = self._ids[:, self.prompt_length : self._length]
        return bool(self._stop(generated, logits).any())
