"""The generated project's benchmarks run end to end (on its tiny offline model, briefly)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import VLLM_PYTHON, bake_default_once, project_environment, run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def baked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bake_default_once(tmp_path_factory, "bench-bake")


@pytest.fixture(scope="module")
def tiny_model(baked: Path) -> Path:
    path = baked.parent / "tiny-model"
    build = f"import tiny_models as t, pathlib as p; t.build_tiny_model(p.Path({str(path)!r}))"
    run([sys.executable, "-c", build], baked, **project_environment(baked))
    return path


def _bench(project: Path, script: str, *arguments: str) -> tuple[str, Any]:
    results = project / f"{script}.json"
    command = [sys.executable, f"benchmarks/{script}.py", *arguments, "--json", str(results)]
    printed = run(command, project, **project_environment(project)).stdout
    return printed, json.loads(results.read_text("utf-8"))


def _targets_reported(printed: str, verdicts: dict[str, str]) -> None:
    """Each target is printed with PASS or MISS, its value and bound, as the JSON says."""
    lines = re.findall(r"^ +(PASS|MISS)  (.+?): .+ \(target [<>]=? .+\)$", printed, re.MULTILINE)
    assert lines, printed
    assert dict((name, verdict) for verdict, name in lines) == verdicts


def test_client_benchmark_compares_create_with_bare_generate(baked: Path, tiny_model: Path) -> None:
    printed, results = _bench(
        baked, "bench_client", "--model", str(tiny_model), "--new-tokens", "4", "--repeats", "2"
    )
    assert "client create()" in printed
    assert "8 concurrent create()" in printed
    (result,) = results
    assert result["new_tokens"] == 4
    assert result["prompt_tokens"] > 0
    assert len(result["create_vs_bare_pairs"]) == 2
    assert all(ratio > 0 for ratio in result["create_vs_bare_pairs"])
    assert set(result["throughput_tokens_per_s"]) == {"1", "2", "4", "8"}
    assert all(rate > 0 for rate in result["throughput_tokens_per_s"].values())
    assert result["worst_event_loop_stall_ms"] >= result["p99_event_loop_stall_ms"] >= 0
    assert result["client_loaded_peak_mb"] > 0
    assert result["bare_loaded_peak_mb"] > 0
    _targets_reported(printed, result["targets"])
    assert "create() vs bare generate" in result["targets"]


def test_json_benchmark_measures_grammar_work(baked: Path, tiny_model: Path) -> None:
    printed, result = _bench(
        baked, "bench_json", "--model", str(tiny_model), "--new-tokens", "8", "--repeats", "1"
    )
    assert "structured create()" in printed
    assert result["json_tokens_per_s"] > 0
    assert result["plain_tokens_per_s"] > 0
    assert 0 <= result["grammar_share"] < 1
    assert result["cities_compile_cached_s"] < result["cities_compile_first_s"]
    _targets_reported(printed, result["targets"])


def test_tools_benchmark_forces_calls_and_reads_native_ones(baked: Path, tiny_model: Path) -> None:
    printed, results = _bench(
        baked, "bench_tools", "--model", str(tiny_model), "--seeds", "1", "--max-new-tokens", "48"
    )
    assert "forced calls valid, required" in printed
    assert "target" in printed
    (result,) = results
    assert (result["required_valid"], result["named_valid"], result["mcp_valid"]) == (1, 1, 1)
    assert (result["read_one"], result["read_two"]) == ("PASS", "PASS")
    assert result["arguments"] == "json"
    assert result["compile_cached_ms"] < result["compile_first_ms"]
    assert result["mask_ms_per_token"] > 0
    _targets_reported(printed, result["targets"])


def test_schemas_benchmark_counts_coverage_validity_and_refusals(
    baked: Path, tiny_model: Path, tmp_path: Path
) -> None:
    corpus = {
        "github": {
            "a.json": {"type": "object", "properties": {"n": {"type": "integer"}}},
            "b.json": {"x-vendor": 1, "type": "array", "items": {"enum": ["x", "y"]}},
        },
        "store": {
            "c.json": {"type": "string", "pattern": "^(?!no)[a-z]{1,8}$"},
            "d.json": {"$ref": "https://example.com/elsewhere.json"},
        },
    }
    for folder, files in corpus.items():
        (tmp_path / folder).mkdir()
        for name, schema in files.items():
            (tmp_path / folder / name).write_text(json.dumps(schema), "utf-8")
    printed, result = _bench(
        baked, "bench_schemas", str(tmp_path), "--model", str(tiny_model), "--budget", "48"
    )
    assert result["schemas"] == 4
    assert result["accepted"] == 3
    assert result["crashes"] == 0
    assert len(result["refused"]) == 1
    assert result["refused"][0].startswith("store/d.json")
    assert sum(result["outcomes"].values()) == 4
    assert result["compile_p95_ms"] >= result["compile_p50_ms"] > 0
    _targets_reported(printed, result["targets"])


def test_engine_benchmark_compares_workloads_with_their_baselines(
    baked: Path, tiny_model: Path
) -> None:
    printed, result = _bench(baked, "bench_engine", "--model", str(tiny_model), "--repeats", "1")
    assert "staggered arrivals" in printed
    for ratio in (
        "single_vs_bare",
        "gathered_vs_static_batch",
        "staggered_vs_static_batch",
        "short_behind_long_vs_alone",
        "conversation_vs_reuse_limit",
    ):
        assert result[ratio] > 0
    assert len(result["targets"]) == 5
    _targets_reported(printed, result["targets"])
    tokens = result["conversation_prompt_tokens"]
    assert tokens == sorted(tokens)
    assert tokens[0] >= 1000


def test_engine_benchmark_runs_the_batching_workloads_alone(baked: Path, tiny_model: Path) -> None:
    arguments = ("--model", str(tiny_model), "--repeats", "1", "--workloads", "batching")
    printed, result = _bench(baked, "bench_engine", *arguments, "--new-tokens", "8")
    assert result["new_tokens"] == 8
    assert set(result["targets"]) == {
        "single request vs bare generate",
        "gathered vs static batch",
        "staggered arrivals vs static batch",
    }
    _targets_reported(printed, result["targets"])


@pytest.mark.skipif(VLLM_PYTHON is None, reason="no vLLM: set VLLM_TEST_PYTHON (.ci/run does)")
@pytest.mark.xdist_group("vllm")  # one vLLM server at a time
def test_remote_benchmark_compares_with_the_servers_own_api(baked: Path) -> None:
    assert VLLM_PYTHON is not None
    printed, result = _bench(
        baked, "bench_remote", "--vllm-python", VLLM_PYTHON, "--seeds", "2", "--repeats", "2"
    )
    checks = ["forced calls, required", "forced calls, named tool", "structured output"]
    assert list(result["validity"]) == checks
    for check in checks:
        ours, theirs = result["validity"][check]["ours"], result["validity"][check]["vllm"]
        assert sum(ours.values()) == sum(theirs.values()) == 2
        assert ours["invalid"] == 0, check
        assert check in printed
    for side in ("ours", "bare"):
        assert result[f"first_chunk_{side}_s"] > 0
        assert result[f"tokens_per_s_{side}"] > 0
    _targets_reported(printed, result["targets"])
