"""Constrained decoding of tool calls with xgrammar (the optional ``constrained`` extra).

A forced call is a structural tag: the format's marker, then one of the allowed tools written
in the model's own call syntax, its arguments constrained by the tool's JSON schema.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import torch
import xgrammar as xgr
from transformers import LogitsProcessor, PreTrainedTokenizerBase
from xgrammar.structural_tag import (
    AnyTextFormat,
    ConstStringFormat,
    Format,
    GrammarFormat,
    OrFormat,
    SequenceFormat,
    StructuralTag,
    TagFormat,
    TokenFormat,
)

from ._text import THINK_CLOSE, single_token_id
from ._tool_parsers import ToolCallFormat

CACHE_SIZE = 64
"""Compiled grammars kept per client."""


def _marker(tokenizer: PreTrainedTokenizerBase, marker: str) -> Format:
    """The marker as its own token when the vocabulary has one (as models emit it), else text."""
    if single_token_id(tokenizer, marker) is not None:
        return TokenFormat(token=marker)
    return ConstStringFormat(value=marker)


def _arguments(schema: dict[str, Any]) -> Format:
    """Arguments valid against ``schema``, in one line with the separators of ``json.dumps``.

    That is how chat templates write calls (``tojson``), so it is what models learnt; it also
    keeps a weak model from spending its tokens on whitespace.
    """
    grammar = xgr.Grammar.from_json_schema(schema, any_whitespace=False)
    return GrammarFormat(grammar=str(grammar))


def call_structural_tag(
    tokenizer: PreTrainedTokenizerBase,
    call_format: ToolCallFormat,
    tools: Sequence[dict[str, Any]],
    *,
    starts_in_thought: bool,
) -> StructuralTag:
    """Exactly one call to one of ``tools`` (chat-template tool dicts) in ``call_format``.

    When the prompt leaves the model inside ``<think>``, the reasoning is finished first.
    """
    calls: list[Format] = []
    for tool in tools:
        function = tool["function"]
        calls.append(
            TagFormat(
                begin=call_format.opening(function["name"]),
                content=_arguments(function.get("parameters") or {"type": "object"}),
                end=call_format.closing,
            )
        )
    elements: list[Format] = [calls[0] if len(calls) == 1 else OrFormat(elements=calls)]
    if call_format.marker:
        elements.insert(0, _marker(tokenizer, call_format.marker))
    if starts_in_thought:
        thinking = TagFormat(
            begin="", content=AnyTextFormat(excludes=[THINK_CLOSE]), end=THINK_CLOSE
        )
        elements[:0] = [thinking, ConstStringFormat(value="\n\n")]
    return StructuralTag(format=SequenceFormat(elements=elements))


class GrammarCache:
    """A client's compiled grammars, keyed by their structural tag; thread-safe, bounded (LRU)."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, size: int = CACHE_SIZE) -> None:
        self._tokenizer = tokenizer
        self._size = size
        self._lock = threading.Lock()
        self._compilers: dict[tuple[int, tuple[int, ...]], xgr.GrammarCompiler] = {}
        self._grammars: OrderedDict[tuple[int, tuple[int, ...], str], xgr.CompiledGrammar] = (
            OrderedDict()
        )

    def _compiler(self, vocab_size: int, stop_token_ids: tuple[int, ...]) -> xgr.GrammarCompiler:
        key = (vocab_size, stop_token_ids)
        if key not in self._compilers:
            info = xgr.TokenizerInfo.from_huggingface(
                self._tokenizer, vocab_size=vocab_size, stop_token_ids=list(stop_token_ids)
            )
            self._compilers[key] = xgr.GrammarCompiler(info)
        return self._compilers[key]

    def compile(
        self, structural_tag: str, vocab_size: int, stop_token_ids: tuple[int, ...]
    ) -> xgr.CompiledGrammar:
        """The compiled grammar of ``structural_tag`` (JSON) for logits of ``vocab_size``."""
        key = (vocab_size, stop_token_ids, structural_tag)
        with self._lock:
            if key in self._grammars:
                self._grammars.move_to_end(key)
                return self._grammars[key]
            compiled = self._compiler(vocab_size, stop_token_ids).compile_structural_tag(
                structural_tag
            )
            self._grammars[key] = compiled
            if len(self._grammars) > self._size:
                self._grammars.popitem(last=False)
            return compiled


class ToolCallLogitsProcessor(LogitsProcessor):
    """Masks logits so that the answer follows a structural tag; one per ``generate`` call.

    The grammar is compiled (or taken from the cache) at the first step, on the thread that
    runs ``generate``, when the width of the logits (the model's vocabulary) is known.
    """

    def __init__(
        self, cache: GrammarCache, structural_tag: StructuralTag, stop_token_ids: Sequence[int]
    ) -> None:
        self._cache = cache
        self._structural_tag = structural_tag.model_dump_json()
        self._stop_token_ids = tuple(sorted(set(stop_token_ids)))
        self._processor: xgr.contrib.hf.LogitsProcessor | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self._processor is None:
            compiled = self._cache.compile(
                self._structural_tag, scores.shape[-1], self._stop_token_ids
            )
            self._processor = xgr.contrib.hf.LogitsProcessor(compiled)
        return self._processor(input_ids, scores)
