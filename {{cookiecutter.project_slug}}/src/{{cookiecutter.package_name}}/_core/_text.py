"""From generated token ids to answer text: decoding, stop strings and reasoning."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from transformers import PreTrainedTokenizerBase

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"


def decode(tokenizer: PreTrainedTokenizerBase, token_ids: Sequence[int]) -> str:
    """Text of ``token_ids``, special tokens left out."""
    text = tokenizer.decode(list(token_ids), skip_special_tokens=True)
    assert isinstance(text, str)
    return text


def special_token_ids(tokenizer: PreTrainedTokenizerBase) -> set[int]:
    """Ids of the tokenizer's special tokens, added special tokens (chat markers) included."""
    special = set(tokenizer.all_special_ids)
    special.update(
        index for index, token in tokenizer.added_tokens_decoder.items() if token.special
    )
    return special


def single_token_id(tokenizer: PreTrainedTokenizerBase, text: str) -> int | None:
    """The id of the one vocabulary token that is exactly ``text``, if there is one."""
    token_id = tokenizer.convert_tokens_to_ids(text)
    if isinstance(token_id, int) and tokenizer.convert_ids_to_tokens(token_id) == text:
        return token_id
    return None


class IncrementalDecoder:
    """Decodes a growing list of token ids into text deltas.

    A delta never ends inside a multi-byte character: while the text decoded so far ends in
    a replacement character, the tokens wait for the ones that complete it. Each step decodes
    only a short window (the previous and the new tokens), so the cost per token is constant.
    """

    def __init__(
        self, tokenizer: PreTrainedTokenizerBase, keep_special: Collection[int] = ()
    ) -> None:
        """``keep_special``: special tokens written out as text (such as a tool-call marker);
        other special tokens are left out."""
        self._tokenizer = tokenizer
        self._keep = frozenset(keep_special)
        self._special = special_token_ids(tokenizer) if self._keep else set()
        self._ids: list[int] = []
        self._prefix_offset = 0
        self._read_offset = 0

    def _decode(self, ids: list[int]) -> str:
        if not self._keep:
            return decode(self._tokenizer, ids)
        kept = [i for i in ids if i in self._keep or i not in self._special]
        text = self._tokenizer.decode(kept, skip_special_tokens=False)
        assert isinstance(text, str)
        return text

    def add(self, token_ids: Sequence[int]) -> str:
        """Take new token ids; return the text they complete (may be empty)."""
        self._ids.extend(token_ids)
        return self._advance(final=False)

    def flush(self) -> str:
        """Return whatever text is still held back; call once generation is over."""
        return self._advance(final=True)

    def _advance(self, *, final: bool) -> str:
        prefix_text = self._decode(self._ids[self._prefix_offset : self._read_offset])
        new_text = self._decode(self._ids[self._prefix_offset :])
        if not final and (len(new_text) <= len(prefix_text) or new_text.endswith("\ufffd")):
            return ""
        self._prefix_offset = self._read_offset
        self._read_offset = len(self._ids)
        return new_text[len(prefix_text) :]


def _held_back_length(text: str, markers: Sequence[str]) -> int:
    """Length of the longest suffix of ``text`` that could still grow into one of ``markers``."""
    longest = 0
    for marker in markers:
        for size in range(min(len(marker) - 1, len(text)), longest, -1):
            if text.endswith(marker[:size]):
                longest = size
                break
    return longest


class ResponseParser:
    """Splits streamed answer text into content and reasoning, and applies stop strings.

    Text fed in comes back as content deltas that are safe to show: a stop string (and
    everything after it) never comes out, even when it arrives split across tokens, because a
    tail that could still become a stop string, or a ``<think>`` tag, is held back until it is
    decided. Text between ``<think>`` and ``</think>`` goes to ``thought``, never to content.

    With ``hold_from`` markers (such as ``<tool_call>``), content from the first marker on is
    not handed out: it stays in ``content`` and :meth:`release_held` returns it on request.
    With ``think_tags=False`` (constrained JSON) think tags are ordinary content text.
    """

    def __init__(
        self,
        stop: Sequence[str] = (),
        *,
        starts_in_thought: bool = False,
        hold_from: Sequence[str] = (),
        think_tags: bool = True,
    ) -> None:
        self._stop = list(stop)
        self._hold_from = list(hold_from)
        self._undecided = ""  # content that may still grow into a hold_from marker
        self._held: str | None = None  # content from a hold_from marker on, once one was seen
        self._pending = ""  # raw text not yet checked against stop strings
        self._tagged = ""  # text checked for stop strings, not yet split at think tags
        self._think_tags = think_tags
        self._in_thought = starts_in_thought and think_tags
        self._strip_leading = self._in_thought
        self._thought: list[str] = []
        self._content: list[str] = []
        self.stopped = False
        """True once a stop string was found."""

    @property
    def stop_strings(self) -> list[str]:
        """The stop strings this parser applies."""
        return list(self._stop)

    @property
    def content(self) -> str:
        """All content so far."""
        return "".join(self._content)

    @property
    def thought(self) -> str | None:
        """All reasoning text so far, or None when the model gave none."""
        thought = "".join(self._thought).strip()
        return thought or None

    def feed(self, text: str) -> str:
        """Take newly generated text; return the content that can be shown now."""
        if self.stopped or not text:
            return ""
        self._pending += text
        cut = self._find_stop()
        if cut is not None:
            ready, self._pending = self._pending[:cut], ""
            self.stopped = True
        else:
            keep = _held_back_length(self._pending, self._stop)
            ready = self._pending[: len(self._pending) - keep]
            self._pending = self._pending[len(ready) :]
        return self._split(ready, final=self.stopped)

    def finish(self) -> str:
        """Flush what was held back; call once generation is over."""
        ready, self._pending = self._pending, ""
        return self._split(ready, final=True)

    def _find_stop(self) -> int | None:
        positions = [p for p in (self._pending.find(s) for s in self._stop) if p >= 0]
        return min(positions) if positions else None

    def _split(self, text: str, *, final: bool) -> str:
        self._tagged += text
        shown: list[str] = []
        while self._tagged:
            tag = THINK_CLOSE if self._in_thought else THINK_OPEN
            position = self._tagged.find(tag) if self._think_tags else -1
            if position >= 0:
                piece, self._tagged = self._tagged[:position], self._tagged[position + len(tag) :]
            else:
                undecided = self._think_tags and not final
                keep = _held_back_length(self._tagged, [tag]) if undecided else 0
                piece = self._tagged[: len(self._tagged) - keep]
                self._tagged = self._tagged[len(piece) :]
            if self._in_thought:
                self._thought.append(piece)
            else:
                shown.append(self._show(piece))
            if position >= 0:
                self._in_thought = not self._in_thought
                self._strip_leading = not self._in_thought
            elif not piece:
                break
        delta = "".join(shown)
        self._content.append(delta)
        return self._hold(delta, final=final)

    def _hold(self, delta: str, *, final: bool) -> str:
        if not self._hold_from:
            return delta
        if self._held is not None:
            self._held += delta
            return ""
        text = self._undecided + delta
        positions = [p for p in (text.find(marker) for marker in self._hold_from) if p >= 0]
        if positions:
            self._held, self._undecided = text[min(positions) :], ""
            return text[: min(positions)]
        keep = 0 if final else _held_back_length(text, self._hold_from)
        self._undecided = text[len(text) - keep :]
        return text[: len(text) - keep]

    def release_held(self) -> str:
        """Hand out the content held back from a ``hold_from`` marker on (once)."""
        held, self._held = self._held or "", None
        return held

    def _show(self, piece: str) -> str:
        if self._strip_leading:
            piece = piece.lstrip()
            self._strip_leading = not piece
        return piece
