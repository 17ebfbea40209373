"""Constrained decoding with xgrammar, for JSON output and forced tool calls.

A :class:`Grammar` is a pure description (a JSON schema or an xgrammar structural tag, as JSON
text) that a request carries to the engine; ``start`` turns it into the state that masks one
request's logits. Everything that touches xgrammar (importing it, building the vocabulary,
compiling) runs there, on the engine's thread, and is cached per tokenizer: one compiler per
vocabulary, and a bounded cache of compiled grammars.

Special tokens are handled one way for every grammar: the vocabulary xgrammar sees leaves them
out (they can never be generated inside a grammar, where decoding would drop them), except the
request's stop tokens, which end it, and the ``kept`` tokens that a grammar writes itself, such
as a tool-call format's markers.
"""

from __future__ import annotations

import json
import threading
import weakref
from collections import OrderedDict
from collections.abc import Collection, Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar

import torch
from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

from ._errors import CapabilityError
from ._text import special_token_ids

if TYPE_CHECKING:
    import xgrammar as xgr

INSTALL_HINT = {{ ("pip install '" ~ cookiecutter.project_slug ~ "[constrained]'") | py }}
"""How to install xgrammar, the optional dependency that constrained decoding needs."""

CACHE_SIZE = 64
"""Entries each cache keeps (compiled grammars, converted schemas); least recently used go."""

MAX_WHITESPACE = 16
"""Most whitespace characters between two JSON tokens of JSON output."""

ENDING_MARGIN = 8
"""Tokens of slack when a budgeted grammar decides it must start closing (see ``Grammar``)."""

_LONGEST_ENDING = 256
_RECHECK_EVERY = 16  # tokens between two looks at the way to finish, far from the limit
_TEXT_PROBE = "\u2603"  # a character that only free text (a string, reasoning) accepts
_STRUCTURAL = ("}", "]", '"', "0", "false", ",", ":")  # what closes JSON, else the least it takes

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


# JSON string content, as raw text between the quotes (what xgrammar matches a pattern
# against): characters that need no escaping (no C0/C1 controls, quote, backslash or surrogate),
# simple escapes, \u escapes of non-surrogates, and well-formed surrogate pairs.
_PLAIN_RANGES = ((0x20, 0x21), (0x23, 0x5B), (0x5D, 0x7E), (0xA0, 0xD7FF), (0xE000, 0x10FFFF))
_RAW_RANGES = ((0x20, 0x7E), (0xA0, 0xD7FF), (0xE000, 0x10FFFF))  # quote and backslash too
_SIMPLE_ESCAPE = '\\\\["\\\\/bfnrt]'
_UNICODE_ESCAPE = "\\\\u(?:[0-9a-cA-Ce-fE-F][0-9a-fA-F]{3}|[dD][0-7][0-9a-fA-F]{2})"
_SURROGATE_PAIR = "\\\\u[dD][89abAB][0-9a-fA-F]{2}\\\\u[dD][c-fC-F][0-9a-fA-F]{2}"


def _plain_character(avoid: str, *, json: bool = True) -> str:
    """A regex class of the characters that need no JSON escape (``json``, else printable
    characters), but those in ``avoid``."""
    ranges: list[tuple[int, int]] = []
    for low, high in _PLAIN_RANGES if json else _RAW_RANGES:
        for code in sorted({ord(c) for c in avoid if low <= ord(c) <= high}):
            if low < code:
                ranges.append((low, code - 1))
            low = code + 1
        if low <= high:
            ranges.append((low, high))

    def char(code: int) -> str:
        return "\\" + chr(code) if chr(code) in "\\]^-[" else chr(code)

    return "[" + "".join(char(a) if a == b else f"{char(a)}-{char(b)}" for a, b in ranges) + "]"


def string_pattern(
    min_length: int = 0, max_length: int | None = None, *, avoid: str = "", escapes: bool = True
) -> str:
    """A pattern for strings of ``min_length`` to ``max_length`` characters, none of them in
    ``avoid``. With ``escapes`` (JSON) it matches the raw text, escapes counted as one character;
    without, it matches printable text as it is (no control character)."""
    character = _plain_character(avoid, json=escapes)
    if escapes:
        character = f"(?:{character}|{_SIMPLE_ESCAPE}|{_UNICODE_ESCAPE}|{_SURROGATE_PAIR})"
    if min_length == 0 and max_length is None:
        repeat = "*"
    else:
        repeat = "{" + f"{min_length},{'' if max_length is None else max_length}" + "}"
    return f"^{character}{repeat}$"


def require_xgrammar(feature: str) -> None:
    """Raise ``CapabilityError`` now (not while generating) when xgrammar is not installed."""
    import importlib.util

    if importlib.util.find_spec("xgrammar") is None:
        raise CapabilityError(
            f"{feature} needs xgrammar: {INSTALL_HINT} (or pip install xgrammar)."
        )


class BoundedCache(Generic[K, V]):
    """A thread-safe mapping that keeps its ``size`` most recently used entries."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)


@dataclass(frozen=True)
class Grammar:
    """What a request's answer must follow; the ``Constraint`` the engine enforces.

    ``text`` is a JSON schema (``kind="json_schema"``) or an xgrammar structural tag
    (``kind="structural_tag"``), both JSON. ``kept`` are special tokens the grammar writes
    itself (a tool-call format's markers): they stay in the vocabulary, every other special
    token is left out. With a ``budget`` (the request's token limit), the grammar closes in time:
    when the tokens left are about what the shortest way to finish needs, that way is taken (an
    open string ends where it is). ``closers`` are texts that end free text in this grammar (such
    as ``</think>`` or a string delimiter), tried first when looking for that way.
    """

    kind: Literal["json_schema", "structural_tag"]
    text: str
    tokenizer: PreTrainedTokenizerBase = field(compare=False, repr=False)
    kept: tuple[str, ...] = ()
    budget: int | None = None
    closers: tuple[str, ...] = ()

    def start(self, vocab_size: int, stop_token_ids: Collection[int]) -> GrammarState:
        """A fresh grammar state for one request (on the engine's thread).

        Raises:
            CapabilityError: xgrammar is missing, or the request has no token that ends it.
        """
        stops = set(stop_token_ids)
        if not stops and self.tokenizer.eos_token_id is not None:
            stops = {int(self.tokenizer.eos_token_id)}
        if not stops:
            raise CapabilityError(
                "Constrained decoding needs an end-of-sequence token: set eos_token_id."
            )
        compilers = Compilers.of(self.tokenizer)
        compiled = compilers.compile(self, vocab_size)
        closers = compilers.token_sequences((*self.closers, *_STRUCTURAL))
        return GrammarState(compiled, sorted(stops), vocab_size, self.budget, closers)

    def structured_outputs(self) -> dict[str, str]:
        """The same grammar as a vLLM server's ``structured_outputs`` request field.

        The server compiles it against its own vocabulary, so the closing in time of a budgeted
        grammar (``budget``) is this process's only: on a server, a forced call that runs out of
        tokens ends with ``finish_reason="length"``. vLLM checks a structural tag without its
        tokenizer and so refuses ``token`` elements: a marker is sent as its text there (the
        server may then spell it out in pieces, which decodes to the same answer).
        """
        if self.kind == "structural_tag":
            return {"structural_tag": json.dumps(_tokens_as_text(json.loads(self.text)))}
        require_xgrammar("JSON output")
        return {"grammar": str(_json_grammar(self.text))}


def _tokens_as_text(element: Any) -> Any:
    """A structural tag (parsed JSON) with its ``token`` elements as ``const_string`` ones."""
    if isinstance(element, list):
        return [_tokens_as_text(item) for item in element]
    if not isinstance(element, dict):
        return element
    if element.get("type") == "token":
        return {"type": "const_string", "value": element["token"]}
    return {key: _tokens_as_text(value) for key, value in element.items()}


def _json_grammar(schema: str) -> xgr.Grammar:
    """The grammar of JSON valid against ``schema`` (JSON text), whitespace bounded."""
    import xgrammar as xgr

    return xgr.Grammar.from_json_schema(
        schema, any_whitespace=True, max_whitespace_cnt=MAX_WHITESPACE, strict_mode=True
    )


class Compilers:
    """One tokenizer's xgrammar compilers (one per vocabulary) and compiled grammars."""

    _of: ClassVar[weakref.WeakKeyDictionary[PreTrainedTokenizerBase, Compilers]] = (
        weakref.WeakKeyDictionary()
    )
    _of_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        self._tokenizer = tokenizer
        self._detected: dict[int, xgr.TokenizerInfo] = {}
        self._compilers: dict[tuple[int, tuple[str, ...]], xgr.GrammarCompiler] = {}
        self._compiled: BoundedCache[tuple[str, str, int, tuple[str, ...]], xgr.CompiledGrammar]
        self._compiled = BoundedCache()
        self._sequences: dict[str, list[int]] = {}
        self._lock = threading.Lock()  # compiling is slow: one at a time, the cache re-checked

    @classmethod
    def of(cls, tokenizer: PreTrainedTokenizerBase) -> Compilers:
        """The compilers of ``tokenizer``, shared by everything that constrains its answers."""
        with cls._of_lock:
            found = cls._of.get(tokenizer)
            if found is None:
                found = cls._of[tokenizer] = cls(tokenizer)
            return found

    def compile(self, grammar: Grammar, vocab_size: int) -> xgr.CompiledGrammar:
        """``grammar`` compiled for logits ``vocab_size`` wide (cached).

        Raises:
            CapabilityError: xgrammar is missing or refuses the grammar.
        """
        key = (grammar.kind, grammar.text, vocab_size, grammar.kept)
        compiled = self._compiled.get(key)
        if compiled is not None:
            return compiled
        try:
            import xgrammar  # noqa: F401 - a broken install fails here, with the hint
        except ImportError as error:
            raise CapabilityError(
                f"Constrained decoding needs a working xgrammar ({error}): {INSTALL_HINT}"
            ) from error
        with self._lock:
            compiled = self._compiled.get(key)
            if compiled is None:
                compiler = self._compiler(vocab_size, grammar.kept)
                try:
                    if grammar.kind == "json_schema":
                        compiled = compiler.compile_grammar(_json_grammar(grammar.text))
                    else:
                        compiled = compiler.compile_structural_tag(grammar.text)
                except (RuntimeError, ValueError) as error:
                    raise CapabilityError(
                        f"xgrammar cannot compile the grammar: {error}"
                    ) from error
                self._compiled.put(key, compiled)
            return compiled

    def _compiler(self, vocab_size: int, kept: tuple[str, ...]) -> xgr.GrammarCompiler:
        import xgrammar as xgr

        key = (vocab_size, kept)
        if key not in self._compilers:
            if vocab_size not in self._detected:
                self._detected[vocab_size] = detected_info(self._tokenizer, vocab_size)
            info = tokenizer_info(self._tokenizer, vocab_size, kept, self._detected[vocab_size])
            self._compilers[key] = xgr.GrammarCompiler(info, cache_enabled=False)
        return self._compilers[key]

    def token_sequences(self, texts: Collection[str]) -> list[list[int]]:
        """Each text as the token ids the tokenizer writes it with (cached)."""
        sequences = []
        for text in texts:
            if text not in self._sequences:
                self._sequences[text] = self._tokenizer.encode(text, add_special_tokens=False)
            sequences.append(self._sequences[text])
        return [sequence for sequence in sequences if sequence]


def detected_info(tokenizer: PreTrainedTokenizerBase, vocab_size: int) -> xgr.TokenizerInfo:
    """xgrammar's own reading of the vocabulary (its encoding, which :func:`tokenizer_info`
    keeps); the slow part of building a vocabulary view."""
    import xgrammar as xgr

    eos = tokenizer.eos_token_id
    return xgr.TokenizerInfo.from_huggingface(
        tokenizer, vocab_size=vocab_size, stop_token_ids=[eos if eos is not None else 0]
    )


def tokenizer_info(
    tokenizer: PreTrainedTokenizerBase,
    vocab_size: int,
    kept: Collection[str] = (),
    detected: xgr.TokenizerInfo | None = None,
) -> xgr.TokenizerInfo:
    """xgrammar's view of the vocabulary: special tokens are left out, but the ``kept`` ones.

    Left out (blanked), a special token can never be generated inside a grammar: decoding would
    drop it, and the text would differ from what the grammar checked. A request's stop tokens
    are given to each grammar state; they end the answer once the grammar is complete.
    ``detected`` is :func:`detected_info`'s result, when already at hand.
    """
    import xgrammar as xgr

    if detected is None:
        detected = detected_info(tokenizer, vocab_size)
    if not isinstance(tokenizer, PreTrainedTokenizerFast):
        return detected  # xgrammar encodes other vocabularies its own way
    blanked = special_token_ids(tokenizer) - {
        index for token in kept if isinstance(index := tokenizer.convert_tokens_to_ids(token), int)
    }
    vocabulary: list[bytes | str] = [""] * vocab_size
    for token, index in tokenizer.get_vocab().items():
        if index < vocab_size and index not in blanked:
            vocabulary[index] = token
    return xgr.TokenizerInfo.from_vocab_and_metadata(vocabulary, detected.dump_metadata())


class GrammarState:
    """One request's grammar while it generates (a ``TokenConstraint``; engine thread only)."""

    def __init__(
        self,
        compiled: xgr.CompiledGrammar,
        stop_token_ids: list[int],
        vocab_size: int,
        budget: int | None,
        closers: list[list[int]],
    ) -> None:
        import xgrammar as xgr

        self._xgr = xgr
        self._matcher = xgr.GrammarMatcher(compiled, override_stop_tokens=stop_token_ids)
        self._stops = stop_token_ids
        self._bitmask = xgr.allocate_token_bitmask(1, vocab_size)
        self._left = budget
        self._closers = closers
        self._vocab_size = vocab_size
        self._ending: list[int] = []  # the way to finish being followed, once one is needed
        self._check_below = budget or 0  # look for the way to finish at each step from here

    def mask(self, logits: torch.Tensor) -> None:
        """Set the logits of the tokens the grammar forbids now to ``-inf``, in place."""
        if self._matcher.is_terminated():  # only stop tokens remain
            allowed = logits[self._stops].clone()
            logits.fill_(float("-inf"))
            logits[self._stops] = allowed
            return
        if (
            not self._ending
            and self._left is not None
            and (self._left <= self._check_below or self._left % _RECHECK_EVERY == 0)
        ):
            self._plan_ending(self._left)
        if self._ending:
            chosen = self._ending[0]
            logits.fill_(float("-inf"))
            logits[chosen] = 0.0
            return
        self._matcher.fill_next_token_bitmask(self._bitmask)
        self._xgr.apply_token_bitmask_inplace(logits.unsqueeze(0), self._bitmask.to(logits.device))

    def accept(self, token_id: int) -> None:
        """Advance past the token that was chosen."""
        if self._matcher.is_terminated():
            return
        if not self._matcher.accept_token(token_id):
            raise RuntimeError(f"Token {token_id} does not follow the grammar (masked logits?).")
        if self._left is not None:
            self._left -= 1
        if self._ending:
            if self._ending[0] == token_id:
                self._ending.pop(0)
            else:
                self._ending = []

    def _plan_ending(self, left: int) -> None:
        """Follow the shortest way to finish found, when the tokens left barely hold it."""
        ending = self._shortest_ending()
        if ending is None:
            self._check_below = left - 1  # nothing found now: look again at the next step
            return
        if len(ending) <= left <= len(ending) + ENDING_MARGIN:
            self._ending = ending
        else:  # not yet (or never: then the answer runs to the limit)
            self._check_below = len(ending) + ENDING_MARGIN + _RECHECK_EVERY

    def _shortest_ending(self) -> list[int] | None:
        """Tokens that complete the grammar from here, ending with a stop token.

        A greedy walk on a copy of the matcher: a stop token as soon as the grammar allows one,
        the text the grammar forces, else the first closer (tried in order) that makes progress:
        inside free text (a string, reasoning) only one that leaves it counts. When none fits (a
        pattern, an enum), the first token the grammar allows. None when the walk finds no end
        within 256 tokens.
        """
        walk = self._matcher.fork()
        ending: list[int] = []
        while len(ending) < _LONGEST_ENDING:
            stop = next((token for token in self._stops if walk.accept_token(token)), None)
            if stop is not None:
                return [*ending, stop]
            forced = walk.find_jump_forward_tokens()
            if forced and all(walk.accept_token(token) for token in forced):
                ending.extend(forced)
                continue
            in_text = walk.fork().accept_string(_TEXT_PROBE)
            for sequence in self._closers:
                trial = walk.fork()
                if all(trial.accept_token(token) for token in sequence) and not (
                    in_text and trial.fork().accept_string(_TEXT_PROBE)
                ):
                    walk = trial
                    ending.extend(sequence)
                    break
            else:
                token = self._first_allowed(walk)
                if token is None or not walk.accept_token(token):
                    return None
                ending.append(token)
        return None

    def _first_allowed(self, matcher: xgr.GrammarMatcher) -> int | None:
        """The lowest token id ``matcher`` allows, stop tokens aside."""
        matcher.fill_next_token_bitmask(self._bitmask)
        row = torch.zeros(self._vocab_size)
        self._xgr.apply_token_bitmask_inplace(row.unsqueeze(0), self._bitmask)
        stops = set(self._stops)
        allowed = (row == 0).nonzero().flatten().tolist()
        return next((token for token in allowed if token not in stops), None)
