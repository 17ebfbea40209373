"""Prefix reuse: keys and values of token sequences the model already processed.

Agents send the same start again and again: the system prompt, the tools, the conversation so
far. Each finished request leaves its keys and values here (prompt and answer); a new prompt
that starts with the same tokens takes them and is prefilled from where they end. Entries are
kept within a byte budget, the least recently used evicted first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import torch

from ._kv_batch import LayerKV


@dataclass(frozen=True)
class _Entry:
    tokens: torch.Tensor
    layers: list[LayerKV]
    nbytes: int


def _nbytes(layers: list[LayerKV]) -> int:
    return sum(k.nbytes + v.nbytes for kv in layers if kv is not None for k, v in [kv])


def _common_length(tokens: torch.Tensor, other: torch.Tensor) -> int:
    length = min(len(tokens), len(other))
    differs = (tokens[:length] != other[:length]).nonzero()
    return int(differs[0]) if differs.numel() else length


def _prefix_of(layers: list[LayerKV], length: int) -> list[LayerKV]:
    return [None if kv is None else (kv[0][:, :, :length], kv[1][:, :, :length]) for kv in layers]


class PrefixCache:
    """Token sequences with their keys and values, within ``budget_bytes`` (0: keeps nothing).

    Thread-safe, although only the engine thread uses it.
    """

    def __init__(self, budget_bytes: int) -> None:
        self.budget_bytes = budget_bytes
        self._entries: OrderedDict[int, _Entry] = OrderedDict()
        self._next_key = 0
        self._lock = threading.Lock()
        self.nbytes = 0
        """Bytes held now."""

    def __len__(self) -> int:
        return len(self._entries)

    def longest(self, tokens: list[int]) -> tuple[int, list[LayerKV]]:
        """The most leading tokens of ``tokens`` (all but the last, which must be processed to
        get the next token's logits) found here, and their keys and values (views)."""
        if not self._entries or len(tokens) < 2:
            return 0, []
        wanted = torch.tensor(tokens[:-1])
        with self._lock:
            best_key, best_length = None, 0
            for key, entry in self._entries.items():
                length = _common_length(wanted, entry.tokens)
                if length > best_length:
                    best_key, best_length = key, length
            if best_key is None:
                return 0, []
            self._entries.move_to_end(best_key)
            return best_length, _prefix_of(self._entries[best_key].layers, best_length)

    def store(self, tokens: list[int], layers: list[LayerKV]) -> None:
        """Keep ``layers``, the keys and values of ``tokens``, evicting old entries to fit.

        Entries that are a prefix of ``tokens`` are dropped (the new one holds them); nothing
        is stored when an entry already holds ``tokens``, or when it alone exceeds the budget.
        """
        nbytes = _nbytes(layers)
        if not tokens or nbytes > self.budget_bytes:
            return
        new = torch.tensor(tokens)
        with self._lock:
            for key, entry in list(self._entries.items()):
                common = _common_length(new, entry.tokens)
                if common == len(new):  # already held, by this entry or a longer one
                    self._entries.move_to_end(key)
                    return
                if common == len(entry.tokens):
                    self._drop(key)
            while self._entries and self.nbytes + nbytes > self.budget_bytes:
                self._drop(next(iter(self._entries)))
            self._entries[self._next_key] = _Entry(new, layers, nbytes)
            self._next_key += 1
            self.nbytes += nbytes

    def clear(self) -> None:
        """Drop every entry."""
        with self._lock:
            self._entries.clear()
            self.nbytes = 0

    def _drop(self, key: int) -> None:
        self.nbytes -= self._entries.pop(key).nbytes
