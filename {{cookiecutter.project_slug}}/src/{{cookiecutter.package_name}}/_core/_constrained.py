"""Constrained decoding with llguidance, for JSON output and forced tool calls.

Why llguidance, not xgrammar (measured by ``benchmarks/bench_schemas.py`` on 400 real-world
schemas with Qwen3's 151,669-token vocabulary): llguidance compiles a schema lazily (p95 a few
tens of milliseconds against seconds), computes a token mask in about 0.1-0.3 ms everywhere,
inside strings included (xgrammar needed hand-written string patterns to keep control
characters and lone surrogates out, and those patterns cost 80 ms a token), says which keywords
it could not enforce instead of ignoring them silently, and is a small Rust wheel: xgrammar
pulls ``triton`` (about 1 GB, unused on CPU) into every Linux install. Its Lark grammars embed
JSON schemas (``%json``) and special tokens (``<[id]>``), so a forced tool call in any syntax is
one grammar.

A :class:`Grammar` is a pure description (a JSON schema or a Lark grammar) that a request
carries to the engine; ``start`` turns it into the state that masks one request's logits.
Everything that touches llguidance runs there, on the engine's thread, and is cached per
tokenizer: one llguidance tokenizer per vocabulary width, and a bounded cache of compiled
grammars (each request starts from a copy).

Special tokens never match text in llguidance: they appear in an answer only where a grammar
names them, and the request's stop tokens end it once the grammar is complete.
"""

from __future__ import annotations

import functools
import json
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Collection, Hashable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar

import torch
from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

from ._errors import CapabilityError

if TYPE_CHECKING:
    import llguidance

INSTALL_HINT = {{ ("pip install '" ~ cookiecutter.project_slug ~ "[constrained]'") | py }}
"""How to install llguidance and jsonschema, the optional dependencies of constrained decoding."""

CACHE_SIZE = 64
"""Entries each cache keeps (compiled grammars, prepared schemas); least recently used go."""

JSON_OPTIONS: dict[str, Any] = {
    "lenient": True,
    "coerce_one_of": True,
    "whitespace_flexible": False,
    "item_separator": ", ",
    "key_separator": ": ",
}
"""How llguidance writes JSON: as ``json.dumps`` does (and chat templates do), ignoring the
keywords it cannot enforce (the answer is checked against them afterwards, see ``_schema``)."""

LLGUIDANCE_HEADER = "%llguidance {}"
"""Heads a Lark grammar as llguidance's dialect (a server's other grammar backends refuse it)."""

ENDING_MARGIN = 8
"""Tokens of slack when a budgeted grammar decides it must start closing (see ``Grammar``)."""

SERVER_RESERVE = 32
"""Most tokens of a budgeted grammar's budget that a server is not given: its answer, if cut
off there, is completed in this process (``Grammar.completion``)."""

_LONGEST_ENDING = 256
_RECHECK_EVERY = 16  # tokens between two looks at the way to finish, far from the limit
_TEXT_PROBE = "\u2603"  # a character that only free text (a string, reasoning) accepts
_STRUCTURAL = ("}", "]", '"', ":", ",", "1", "0", "false")  # what closes JSON, else the least
_LONGEST_RUN = 8  # a closer taken this many times in a row is looping (digits in a number, say)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def require_grammar_library(feature: str) -> None:
    """Raise ``CapabilityError`` now (not while generating) when llguidance or jsonschema is
    not installed."""
    import importlib.util

    missing = [name for name in ("llguidance", "jsonschema") if importlib.util.find_spec(name) is None]
    if missing:
        raise CapabilityError(f"{feature} needs {' and '.join(missing)}: {INSTALL_HINT}.")


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

    def pop(self, key: K) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)


def lark_json(schema: Any) -> str:
    """A Lark expression for a JSON value valid against ``schema``, written as ``JSON_OPTIONS``
    say (llguidance's ``%json``)."""
    embedded = {**schema, "x-guidance": JSON_OPTIONS} if isinstance(schema, dict) else schema
    return "%json " + json.dumps(embedded, ensure_ascii=False)


def grammar_definition(kind: Literal["json_schema", "lark"], text: str) -> str:
    """llguidance's grammar for a JSON schema (JSON text) or a Lark grammar."""
    import llguidance

    if kind == "json_schema":
        return llguidance.LLMatcher.grammar_from_json_schema(text, overrides=JSON_OPTIONS)  # type: ignore[arg-type]
    return llguidance.LLMatcher.grammar_from_lark(text)


@dataclass(frozen=True)
class Grammar:
    """What a request's answer must follow; the ``Constraint`` the engine enforces.

    ``text`` is a JSON schema (``kind="json_schema"``, JSON) or a Lark grammar in llguidance's
    dialect (``kind="lark"``). With a ``budget`` (the request's token limit), the grammar closes
    in time: when the tokens left are about what the shortest way to finish needs, that way is
    taken (an open string ends where it is). ``closers`` are texts that end free text in this
    grammar (such as ``</think>`` or a value's closing tag), tried first when looking for that
    way.
    """

    kind: Literal["json_schema", "lark"]
    text: str
    tokenizer: PreTrainedTokenizerBase = field(compare=False, repr=False)
    budget: int | None = None
    closers: tuple[str, ...] = ()

    def start(self, vocab_size: int, stop_token_ids: Collection[int]) -> GrammarState:
        """A fresh grammar state for one request (on the engine's thread).

        Raises:
            CapabilityError: llguidance is missing or refuses the grammar, or the request has
                no token that ends it.
        """
        stops = set(stop_token_ids)
        if not stops and self.tokenizer.eos_token_id is not None:
            stops = {int(self.tokenizer.eos_token_id)}
        if not stops:
            raise CapabilityError(
                "Constrained decoding needs an end-of-sequence token: set eos_token_id."
            )
        compilers = Compilers.of(self.tokenizer)
        matcher = compilers.compile(self, vocab_size)
        closers = compilers.token_sequences((*self.closers, *_STRUCTURAL))
        probe = compilers.token_sequences([_TEXT_PROBE])[0]
        return GrammarState(
            matcher,
            sorted(stops),
            vocab_size,
            self.budget,
            closers,
            probe,
            walks=functools.partial(compilers.walk_start, self, vocab_size),
            on_failure=functools.partial(compilers.forget, self, vocab_size),
            on_walk_failure=functools.partial(compilers.forget, self, vocab_size, walks=True),
        )

    def structured_outputs(self) -> dict[str, Any]:
        """The same grammar as a vLLM server's ``structured_outputs`` request field.

        Both kinds go as a Lark ``grammar`` (a JSON schema inside ``%json``) headed by
        ``%llguidance {}``, which xgrammar refuses, so vLLM's ``auto`` backend hands it to
        llguidance (``guidance``): the server then writes exactly what this process would, and
        an answer it cuts off can be completed here (``completion``).
        """
        text = self.text
        if self.kind == "json_schema":
            text = "start: " + lark_json(json.loads(text))
        return {"grammar": f"{LLGUIDANCE_HEADER}\n{text}"}


    def server_reserve(self) -> int:
        """Tokens of the budget a server is not given, to complete its answer here (a server
        cannot plan the ending: see ``completion``)."""
        return 0 if self.budget is None else min(SERVER_RESERVE, self.budget // 4)

    def completion(
        self, token_ids: Sequence[int], stop_token_ids: Collection[int], left: int
    ) -> list[int] | None:
        """Tokens (a stop token last, at most ``left``) that complete an answer a server cut
        off after ``token_ids``: the shortest way to finish that the local engine would take.
        None when the answer does not follow the grammar or no ending fits. Blocking (the
        vocabulary view may need building): run it off the event loop."""
        state = self.start(max(len(self.tokenizer), max(token_ids, default=0) + 1), stop_token_ids)
        try:
            for token in token_ids:
                state.accept(token)
        except RuntimeError:
            return None
        ending = state.ending(left)
        return ending if ending is not None and len(ending) <= left else None


class Compilers:
    """One tokenizer's llguidance tokenizers (one per logits width) and compiled grammars."""

    _of: ClassVar[weakref.WeakKeyDictionary[PreTrainedTokenizerBase, Compilers]] = (
        weakref.WeakKeyDictionary()
    )
    _of_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        self._tokenizer = tokenizer
        self._vocabularies: dict[int, llguidance.LLTokenizer] = {}
        self._compiled: BoundedCache[tuple[str, str, int], llguidance.LLMatcher]
        self._compiled = BoundedCache()
        self._walk_starts: BoundedCache[tuple[str, str, int], llguidance.LLMatcher]
        self._walk_starts = BoundedCache()
        self._sequences: dict[str, list[int]] = {}
        self._lock = threading.Lock()  # one compile at a time, the cache re-checked

    @classmethod
    def of(cls, tokenizer: PreTrainedTokenizerBase) -> Compilers:
        """The compilers of ``tokenizer``, shared by everything that constrains its answers."""
        with cls._of_lock:
            found = cls._of.get(tokenizer)
            if found is None:
                found = cls._of[tokenizer] = cls(tokenizer)
            return found

    def vocabulary(self, vocab_size: int) -> llguidance.LLTokenizer:
        """llguidance's view of the vocabulary, ``vocab_size`` wide (cached; about a second to
        build for a 150k vocabulary).

        Raises:
            CapabilityError: llguidance is missing, or the tokenizer is not a fast one.
        """
        with self._lock:
            if vocab_size not in self._vocabularies:
                self._vocabularies[vocab_size] = _llguidance_tokenizer(self._tokenizer, vocab_size)
            return self._vocabularies[vocab_size]

    def compile(self, grammar: Grammar, vocab_size: int) -> llguidance.LLMatcher:
        """A fresh matcher of ``grammar`` for logits ``vocab_size`` wide (compiled once, then
        copied).

        Raises:
            CapabilityError: llguidance is missing or refuses the grammar.
        """
        key = (grammar.kind, grammar.text, vocab_size)
        compiled = self._compiled.get(key)
        if compiled is None:
            import llguidance

            vocabulary = self.vocabulary(vocab_size)
            compiled = llguidance.LLMatcher(
                vocabulary, grammar_definition(grammar.kind, grammar.text), log_level=0
            )
            if compiled.is_error():
                raise CapabilityError(f"The grammar cannot be compiled: {compiled.get_error()}")
            self._compiled.put(key, compiled)
        return compiled.deep_copy()

    def walk_start(self, grammar: Grammar, vocab_size: int) -> llguidance.LLMatcher:
        """A fresh matcher of ``grammar`` for ending walks (compiled once, then copied). It
        shares nothing with the requests' matchers: a panic in llguidance poisons a lock that
        a matcher's deep copies share, so a walk that fails must not reach a request."""
        key = (grammar.kind, grammar.text, vocab_size)
        start = self._walk_starts.get(key)
        if start is None:
            import llguidance

            start = llguidance.LLMatcher(
                self.vocabulary(vocab_size),
                grammar_definition(grammar.kind, grammar.text),
                log_level=0,
            )
            self._walk_starts.put(key, start)
        return start.deep_copy()

    def forget(self, grammar: Grammar, vocab_size: int, *, walks: bool = False) -> None:
        """Drop ``grammar``'s compiled matcher for requests (or for walks) after it failed: the
        next one compiles it again."""
        cache = self._walk_starts if walks else self._compiled
        cache.pop((grammar.kind, grammar.text, vocab_size))

    def token_sequences(self, texts: Collection[str]) -> list[list[int]]:
        """Each text as the token ids the tokenizer writes it with (cached)."""
        sequences = []
        for text in texts:
            if text not in self._sequences:
                self._sequences[text] = self._tokenizer.encode(text, add_special_tokens=False)
            sequences.append(self._sequences[text])
        return [sequence for sequence in sequences if sequence]


def _llguidance_tokenizer(
    tokenizer: PreTrainedTokenizerBase, vocab_size: int
) -> llguidance.LLTokenizer:
    try:
        import llguidance.hf
    except ImportError as error:
        raise CapabilityError(
            f"Constrained decoding needs a working llguidance ({error}): {INSTALL_HINT}"
        ) from error
    if not isinstance(tokenizer, PreTrainedTokenizerFast):
        raise CapabilityError(
            "Constrained decoding needs a fast tokenizer (tokenizer.json); "
            f"{type(tokenizer).__name__} is not one."
        )
    return llguidance.hf.from_tokenizer(tokenizer, n_vocab=vocab_size)


class GrammarState:
    """One request's grammar while it generates (a ``TokenConstraint``; engine thread only)."""

    def __init__(
        self,
        matcher: llguidance.LLMatcher,
        stop_token_ids: list[int],
        vocab_size: int,
        budget: int | None,
        closers: list[list[int]],
        probe: list[int],
        *,
        walks: Callable[[], llguidance.LLMatcher],
        on_failure: Callable[[], None],
        on_walk_failure: Callable[[], None],
    ) -> None:
        self._matcher = matcher
        self._probe = probe
        self._stops = stop_token_ids
        self._stop_index = torch.tensor(stop_token_ids)
        self._vocab_size = vocab_size
        self._left = budget
        self._closers = closers
        self._ending: list[int] = []  # the way to finish being followed, once one is needed
        self._check_below = budget or 0  # look for the way to finish at each step from here
        self._done = False  # a stop token was chosen
        self._consumed: list[int] = []
        self._walk_start: llguidance.LLMatcher | None = None
        self._walks_failed = False
        self.walks = walks
        """Makes the matcher the ending walks start from (one of its own: see :meth:`ending`)."""
        self.on_failure = on_failure
        """Called when the matcher fails, before the error is raised."""
        self.on_walk_failure = on_walk_failure
        """Called when an ending walk fails (planning then stops for this request)."""

    def mask(self, logits: torch.Tensor) -> None:
        """Set the logits of the tokens the grammar forbids now to ``-inf``, in place."""
        if (
            not self._ending
            and not self._walks_failed
            and self._left is not None
            and (self._left <= self._check_below or self._left % _RECHECK_EVERY == 0)
        ):
            self._plan_ending(self._left)
        if self._ending:
            chosen = self._ending[0]
            logits.fill_(float("-inf"))
            logits[chosen] = 0.0
            return
        logits.masked_fill_(self._forbidden(self._matcher), float("-inf"))

    def _forbidden(self, matcher: llguidance.LLMatcher) -> torch.Tensor:
        """Which tokens ``matcher`` forbids next (stop tokens until it is complete)."""
        if matcher.is_stopped():
            forbidden = torch.ones(self._vocab_size, dtype=torch.bool)
        else:
            bias = matcher.compute_logit_bias()  # one byte a token: 0 forbidden, 200 allowed
            forbidden = torch.frombuffer(bytearray(bias), dtype=torch.uint8) == 0
        if matcher.is_error():
            self.on_failure()
            raise RuntimeError(f"The grammar failed: {matcher.get_error()}")
        forbidden[self._stop_index] = not matcher.is_accepting()
        return forbidden

    def accept(self, token_id: int) -> None:
        """Advance past the token that was chosen."""
        if self._done:
            return
        if token_id in self._stops and self._matcher.is_accepting():
            self._done = True
            return
        if not self._matcher.consume_token(token_id):
            self.on_failure()
            raise RuntimeError(
                f"Token {token_id} does not follow the grammar: {self._matcher.get_error()}"
            )
        self._consumed.append(token_id)
        if self._left is not None:
            self._left -= 1
        if self._ending:
            if self._ending[0] == token_id:
                self._ending.pop(0)
            else:
                self._ending = []

    def _plan_ending(self, left: int) -> None:
        """Follow the shortest way to finish found, when the tokens left barely hold it."""
        ending = self.ending(left)
        if ending is None:  # none found that fits: look again a few tokens on
            self._check_below = left - _RECHECK_EVERY
            return
        if len(ending) <= left <= len(ending) + ENDING_MARGIN:
            self._ending = ending
        else:  # not yet (or never: then the answer runs to the limit)
            self._check_below = len(ending) + ENDING_MARGIN + _RECHECK_EVERY

    def ending(self, left: int) -> list[int] | None:
        """Tokens that complete the grammar from here, ending with a stop token.

        A greedy walk on a matcher of its own: a stop token as soon as the grammar allows one,
        else the first closer (tried in order) that makes progress:
        inside free text (a string, reasoning) only one that leaves it counts. When none fits (a
        pattern, an enum), the first token the grammar allows. None when the walk finds no end
        within ``left`` tokens (256 at most): no ending longer than the tokens left is of use.
        """
        # The walk runs on a matcher of its own, never a deep copy of the request's: llguidance
        # 1.9.1 can panic in states a walk reaches ("!s.has_pending_lexeme_bytes()" in
        # compute_logit_bias and compute_ff_tokens, found on GLM-4.7-Flash's forced calls), and
        # a panic poisons a lock that deep copies share. A failed walk ends the planning.
        if self._walk_start is None:
            self._walk_start = self.walks()
        walk = self._walk_start.deep_copy()
        if not walk.consume_tokens(self._consumed) or walk.is_error():
            self._walk_failed()
            return None
        probe = self._probe
        ending: list[int] = []
        while len(ending) < min(left, _LONGEST_ENDING):
            if walk.is_error():
                self._walk_failed()
                return None
            if walk.is_accepting():
                return [*ending, self._stops[0]]
            in_text = walk.validate_tokens(probe) == len(probe)
            recent = ending[-_LONGEST_RUN:]
            looping = recent[:1] if len(recent) == _LONGEST_RUN and len(set(recent)) == 1 else []
            for sequence in self._closers:
                if sequence == looping or walk.validate_tokens(sequence) < len(sequence):
                    continue
                trial = walk.deep_copy()
                trial.consume_tokens(sequence)
                if not (in_text and trial.validate_tokens(probe) == len(probe)):
                    walk = trial
                    ending.extend(sequence)
                    break
            else:
                first = self._first_allowed(walk)
                if first is None or not walk.consume_token(first):
                    if walk.is_error():
                        self._walk_failed()
                    return None
                ending.append(first)
        return None

    def _walk_failed(self) -> None:
        """No more walks for this request; later ones start from a newly compiled matcher."""
        self._walks_failed = True
        self.on_walk_failure()

    def _first_allowed(self, matcher: llguidance.LLMatcher) -> int | None:
        """The lowest token id ``matcher`` allows, stop tokens aside."""
        if matcher.is_stopped():
            return None
        bias = torch.frombuffer(bytearray(matcher.compute_logit_bias()), dtype=torch.uint8)
        bias[self._stop_index] = 0
        first = int(bias.argmax())
        return first if bias[first] else None
