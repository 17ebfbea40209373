"""Benchmark structured output on real-world JSON schemas: coverage, validity, speed.

Run from the project root with a folder of schemas (one ``*.json`` schema a file, in
subfolders by source) and a model whose vocabulary is a real one::

    python benchmarks/bench_schemas.py CORPUS --model PATH [--per-folder 40]

The corpus this project measures with is JSONSchemaBench (github.com/guidance-ai/
jsonschemabench, folder ``data/``: about 10,000 schemas from GitHub, Kubernetes, SchemaStore,
Snowplow, the Washington Post's content API and the Glaive function-calling set; curated for
the paper arXiv:2501.10868; MIT licence per its dataset card). It is not shipped here: fetch
it and point ``CORPUS`` at its ``data`` folder. The sample is deterministic: from each
subfolder, ``--per-folder`` files evenly spaced in name order (40 of each of the 10 sources:
400 schemas).

For each schema it prepares the grammar as the client does (``_schema.prepare_schema``:
refused, or accepted with what is only approximated), compiles it for the model's vocabulary,
and generates answers with random logits (what a random-weight model gives, at temperature
1) under a token budget, the client's way: the grammar closes in time, and an answer that
fails its check is sampled again up to ``max_resamples`` times. It prints coverage, answers
valid, crashes (any other exception), compile time p50/p95, the mask time per token, and
PASS/MISS against the targets. ``--compare`` adds llguidance without the client's
preparation (strict, as vLLM uses it) and, where installed, xgrammar.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from _report import Target, print_targets
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from {{ cookiecutter.package_name }}._core._constrained import Compilers, Grammar, GrammarState
from {{ cookiecutter.package_name }}._core._schema import UnsupportedSchemaError, prepare_schema

MAX_RESAMPLES = 2  # the client's default


def sample(corpus: Path, per_folder: int) -> list[Path]:
    """``per_folder`` schemas of each subfolder, evenly spaced in name order."""
    chosen: list[Path] = []
    for folder in sorted(p for p in corpus.iterdir() if p.is_dir()):
        files = sorted(folder.glob("*.json"))
        if len(files) <= per_folder:
            chosen += files
        else:
            chosen += [files[len(files) * i // per_folder] for i in range(per_folder)]
    return chosen


def _answer(
    state: GrammarState,
    tokenizer: PreTrainedTokenizerBase,
    vocab: int,
    budget: int,
    generator: torch.Generator,
) -> tuple[str | None, list[float]]:
    """One answer with random logits, or None when it ran out of tokens; mask times."""
    eos = tokenizer.eos_token_id
    ids: list[int] = []
    masks: list[float] = []
    for _ in range(budget + 1):
        logits = torch.randn(vocab, generator=generator)
        started = time.perf_counter()
        state.mask(logits)
        masks.append(time.perf_counter() - started)
        token = int(torch.multinomial(torch.softmax(logits, -1), 1, generator=generator))
        if token == eos:
            return str(tokenizer.decode(ids, skip_special_tokens=True)), masks
        state.accept(token)
        ids.append(token)
    return None, masks


def _measure_one(
    path: Path, tokenizer: PreTrainedTokenizerBase, vocab: int, budget: int, seed: int
) -> dict[str, Any]:
    schema = json.loads(path.read_text(encoding="utf-8"))
    try:
        prepared = prepare_schema(schema)
    except UnsupportedSchemaError as error:
        return {"outcome": "refused", "why": error.problems[0][:120]}
    grammar = Grammar("json_schema", json.dumps(prepared.grammar_schema), tokenizer, budget=budget)
    started = time.perf_counter()
    Compilers.of(tokenizer).compile(grammar, vocab)
    compile_s = time.perf_counter() - started
    generator = torch.Generator().manual_seed(seed)
    masks: list[float] = []
    for attempt in range(1 + MAX_RESAMPLES):
        state = grammar.start(vocab, [tokenizer.eos_token_id])
        text, times = _answer(state, tokenizer, vocab, budget, generator)
        masks += times
        if text is None:
            return {"outcome": "length", "compile_s": compile_s, "masks": masks}
        if not prepared.errors(json.loads(text)):
            outcome = "valid" if attempt == 0 else "valid after resampling"
            return {"outcome": outcome, "compile_s": compile_s, "masks": masks}
    return {"outcome": "invalid (InvalidAnswerError)", "compile_s": compile_s, "masks": masks}


def _compare(paths: list[Path], tokenizer: PreTrainedTokenizerBase) -> dict[str, str]:
    """Compile-only coverage of the libraries alone, on the same sample."""
    import llguidance
    import llguidance.hf

    found: dict[str, str] = {}
    vocabulary = llguidance.hf.from_tokenizer(tokenizer)  # type: ignore[arg-type]
    accepted = 0
    for path in paths:
        grammar = llguidance.LLMatcher.grammar_from_json_schema(path.read_text(encoding="utf-8"))
        accepted += not llguidance.LLMatcher(vocabulary, grammar, log_level=0).is_error()
    found["llguidance alone (strict)"] = f"{accepted}/{len(paths)} compile"
    try:
        import xgrammar as xgr  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        found["xgrammar alone"] = "not installed"
        return found
    compiler = xgr.GrammarCompiler(xgr.TokenizerInfo.from_huggingface(tokenizer))
    accepted = 0
    for path in paths:
        try:
            compiler.compile_json_schema(path.read_text(encoding="utf-8"))
            accepted += 1
        except Exception:  # any refusal counts as not compiled
            pass
    found["xgrammar alone"] = f"{accepted}/{len(paths)} compile (some keywords ignored)"
    return found


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[int(q * (len(ordered) - 1))] if ordered else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("corpus", type=Path, help="folder of schema folders (JSONSchemaBench data/)")
    parser.add_argument("--model", required=True, help="model path or id (its tokenizer is used)")
    parser.add_argument("--per-folder", type=int, default=40)
    parser.add_argument("--budget", type=int, default=256, help="token budget of an answer")
    parser.add_argument("--compare", action="store_true", help="also the libraries alone")
    parser.add_argument("--json", type=Path, help="write the results here")
    arguments = parser.parse_args(argv)

    tokenizer = AutoTokenizer.from_pretrained(arguments.model)
    vocab = len(tokenizer)
    started = time.perf_counter()
    Compilers.of(tokenizer).vocabulary(vocab)
    vocabulary_s = time.perf_counter() - started
    paths = sample(arguments.corpus, arguments.per_folder)
    outcomes: dict[str, int] = {}
    crashes: list[str] = []
    refusals: list[str] = []
    compile_times: list[float] = []
    masks: list[float] = []
    for index, path in enumerate(paths):
        try:
            found = _measure_one(path, tokenizer, vocab, arguments.budget, seed=index)
        except Exception:  # a crash is what this benchmark counts
            crashes.append(f"{path.parent.name}/{path.name}: {traceback.format_exc(limit=2)}")
            continue
        outcomes[found["outcome"]] = outcomes.get(found["outcome"], 0) + 1
        if found["outcome"] == "refused":
            refusals.append(f"{path.parent.name}/{path.name}: {found['why']}")
            continue
        compile_times.append(found["compile_s"])
        masks += found["masks"]
    total = len(paths)
    accepted = total - outcomes.get("refused", 0) - len(crashes)
    answered = sum(n for k, n in outcomes.items() if k.startswith("valid"))
    results: dict[str, Any] = {
        "model": arguments.model,
        "vocab_size": vocab,
        "schemas": total,
        "accepted": accepted,
        "outcomes": outcomes,
        "crashes": len(crashes),
        "vocabulary_build_s": vocabulary_s,
        "compile_p50_ms": _quantile(compile_times, 0.5) * 1000,
        "compile_p95_ms": _quantile(compile_times, 0.95) * 1000,
        "mask_mean_ms": statistics.mean(masks) * 1000 if masks else float("nan"),
        "mask_p95_ms": _quantile(masks, 0.95) * 1000,
        "refused": refusals,
    }
    print(f"{total} schemas from {arguments.corpus}, vocabulary {vocab}")
    print(f"  budget {arguments.budget} tokens an answer, {MAX_RESAMPLES} resamples")
    print(f"  accepted {accepted}/{total} ({accepted / total:.1%}), crashes {len(crashes)}")
    for outcome, count in sorted(outcomes.items()):
        print(f"    {outcome:<32} {count}")
    print(f"  vocabulary view built once: {vocabulary_s:.2f} s")
    print(
        f"  compile p50 {results['compile_p50_ms']:.1f} ms, "
        f"p95 {results['compile_p95_ms']:.1f} ms; mask per token "
        f"mean {results['mask_mean_ms']:.3f} ms, p95 {results['mask_p95_ms']:.3f} ms"
    )
    for line in refusals + crashes:
        print(f"  {line.strip()}")
    if arguments.compare:
        results["compare"] = _compare(paths, tokenizer)
        for name, value in results["compare"].items():
            print(f"  {name}: {value}")
    invalid = outcomes.get("invalid (InvalidAnswerError)", 0)
    results["targets"] = print_targets(
        [
            Target("accepted", 100 * accepted / total, ">=", 95, " %"),
            Target("crashes", len(crashes), "<=", 0, ""),
            Target("answers valid of accepted", 100 * answered / max(accepted, 1), ">=", 90, " %"),
            Target("answers refused as invalid", invalid, "<=", total // 20, ""),
            Target("compile p95", results["compile_p95_ms"], "<", 1000, " ms"),
            Target("mask per token (mean)", results["mask_mean_ms"], "<=", 1, " ms"),
        ]
    )
    if arguments.json:
        arguments.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
