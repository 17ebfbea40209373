"""xgrammar glue: JSON schemas compiled into grammars, and the logits processor that applies them.

Importing this module needs the optional ``xgrammar`` package; ``_json_output`` imports it
on the worker thread, when a request asks for JSON.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Collection
from typing import Generic, TypeVar

import xgrammar as xgr
from transformers import LogitsProcessor, PreTrainedTokenizerBase, PreTrainedTokenizerFast
from xgrammar.contrib.hf import LogitsProcessor as XgrammarLogitsProcessor

from ._schema import UnsupportedSchemaError
from ._text import special_token_ids

MAX_WHITESPACE = 16
"""Most whitespace characters between two JSON tokens: room for indentation, no endless runs."""

CACHE_SIZE = 64
"""Grammars kept per client; the least recently used are dropped first."""

K = TypeVar("K")
V = TypeVar("V")
_CompiledKey = tuple[str, int, frozenset[int]]


def tokenizer_info(
    tokenizer: PreTrainedTokenizerBase, vocab_size: int, stop_token_ids: Collection[int]
) -> xgr.TokenizerInfo:
    """xgrammar's view of the vocabulary, in which only the stop tokens are special.

    Other special tokens (``<|im_start|>``, padding) are blanked out, so the grammar never
    allows them: decoding drops them, and the text would differ from what the grammar checked.
    """
    detected = xgr.TokenizerInfo.from_huggingface(
        tokenizer, vocab_size=vocab_size, stop_token_ids=sorted(stop_token_ids)
    )
    if not isinstance(tokenizer, PreTrainedTokenizerFast):
        return detected  # xgrammar encodes other vocabularies its own way
    special = special_token_ids(tokenizer)
    vocabulary: list[bytes | str] = [""] * vocab_size
    for token, index in tokenizer.get_vocab().items():
        if index < vocab_size and (index not in special or index in stop_token_ids):
            vocabulary[index] = token
    return xgr.TokenizerInfo.from_vocab_and_metadata(vocabulary, detected.dump_metadata())


class _LeastRecentlyUsed(Generic[K, V]):
    """A mapping that keeps its ``size`` most recently used entries."""

    def __init__(self, size: int) -> None:
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._size = size

    def get(self, key: K) -> V | None:
        value = self._entries.get(key)
        if value is not None:
            self._entries.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)


class GrammarCache:
    """One client's grammars: converted once per schema, compiled once per vocabulary.

    ``grammar`` converts a schema (about a millisecond); ``compiled`` builds its token masks,
    the slow part, which grows with the vocabulary. Both run on the worker thread, inside the
    first step of ``generate``.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        self._tokenizer = tokenizer
        self._grammars: _LeastRecentlyUsed[str, xgr.Grammar] = _LeastRecentlyUsed(CACHE_SIZE)
        self._compiled: _LeastRecentlyUsed[_CompiledKey, xgr.CompiledGrammar] = _LeastRecentlyUsed(
            CACHE_SIZE
        )
        self._compilers: dict[tuple[int, frozenset[int]], xgr.GrammarCompiler] = {}
        self._grammar_lock = threading.Lock()  # short: never held while compiling
        self._compile_lock = threading.Lock()

    def grammar(self, schema_json: str) -> xgr.Grammar:
        """The grammar of a JSON schema (cached).

        Raises:
            UnsupportedSchemaError: xgrammar refuses the schema.
        """
        with self._grammar_lock:
            grammar = self._grammars.get(schema_json)
            if grammar is None:
                try:
                    grammar = xgr.Grammar.from_json_schema(
                        schema_json,
                        any_whitespace=True,
                        max_whitespace_cnt=MAX_WHITESPACE,
                        strict_mode=True,
                    )
                except (RuntimeError, ValueError) as error:
                    raise UnsupportedSchemaError(
                        [f"$: xgrammar cannot convert it: {error}"]
                    ) from error
                self._grammars.put(schema_json, grammar)
            return grammar

    def processor(
        self, schema_json: str, vocab_size: int, stop_token_ids: Collection[int]
    ) -> LogitsProcessor:
        """A fresh logits processor for one ``generate`` call (it is stateful)."""
        return XgrammarLogitsProcessor(self.compiled(schema_json, vocab_size, stop_token_ids))

    def compiled(
        self, schema_json: str, vocab_size: int, stop_token_ids: Collection[int]
    ) -> xgr.CompiledGrammar:
        """The grammar compiled against the vocabulary (cached)."""
        stops = frozenset(stop_token_ids)
        key = (schema_json, vocab_size, stops)
        grammar = self.grammar(schema_json)
        with self._compile_lock:
            compiled = self._compiled.get(key)
            if compiled is None:
                compiler = self._compilers.get((vocab_size, stops))
                if compiler is None:
                    info = tokenizer_info(self._tokenizer, vocab_size, stops)
                    compiler = xgr.GrammarCompiler(info, cache_enabled=False)
                    self._compilers[(vocab_size, stops)] = compiler
                compiled = compiler.compile_grammar(grammar)
                self._compiled.put(key, compiled)
            return compiled
