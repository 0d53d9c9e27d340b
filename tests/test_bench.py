"""Smoke test of the benchmarks: they run with one command and print well-formed JSON lines.

Timings are never asserted here; docs/BENCHMARKS.md holds the measured numbers.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent

RUNTIME_WORKLOADS = {
    "call_round_trip",
    "cast_1_sender",
    "cast_100_senders",
    "spawn_stop_10k",
    "spawn_stop_100k",
    "idle_memory_100k",
    "idle_1m",
}
KEYS = {
    "bench",
    "workload",
    "unit",
    "piano",
    "raw_asyncio",
    "pykka",
    "ratio_vs_raw",
    "ratio_vs_pykka",
    "target",
    "met",
}


def _run(*args: str) -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "bench", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_the_runtime_benchmark_prints_one_well_formed_json_line_per_workload() -> None:
    lines = _run("runtime", "--quick")

    assert {line["workload"] for line in lines} == RUNTIME_WORKLOADS
    assert len(lines) == len(RUNTIME_WORKLOADS)
    for line in lines:
        assert line.keys() >= KEYS, line
        assert line["bench"] == "runtime"
        assert isinstance(line["piano"], float), line
        assert line["piano"] > 0, line
        assert isinstance(line["met"], bool)
        assert isinstance(line["target"], dict), line
        assert line["target"], line
        if line["workload"] != "idle_1m":
            assert line["raw_asyncio"] > 0, line
            ratio = line["piano"] / line["raw_asyncio"]
            assert line["ratio_vs_raw"] == pytest.approx(ratio, rel=0.01), line
        if line["pykka"] is not None:
            assert line["ratio_vs_pykka"] is not None, line
            assert line["ratio_vs_pykka"] > 0, line


def test_idle_piano_actors_hold_no_task() -> None:
    (line,) = _run("runtime", "--quick", "--workload", "idle_1m")

    assert line["tasks"] == 0
    assert line["alive"] == line["n"]


def test_an_unknown_benchmark_is_refused_with_the_known_names() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "nonesuch"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "runtime" in done.stderr


def test_the_piano_benchmark_verifies_per_thread_order_through_the_real_codex() -> None:
    lines = _run("piano", "--quick", "--rounds", "1")
    turns = [line for line in lines if line["workload"] == "codex_turns"]
    assert [line["threads"] for line in turns] == [1, 2]
    for line in turns + [line for line in lines if line["workload"] == "pipeline_to_store"]:
        assert line["order_verified"] is True, line
        assert line["events_per_s"] > 0, line
    for line in turns:
        assert line["events"] > 0, line
        assert 0 < line["surface_median_us"] <= line["surface_p99_us"], line
        assert 0 < line["stored_median_us"] <= line["stored_p99_us"], line
    (cost,) = [line for line in lines if line["workload"] == "turn_cost"]
    assert cost["turns"] > 0, cost
    assert cost["piano"] > 0, cost
    assert cost["codex_alone"] > 0, cost
    assert 0 < cost["piano_tail_ms"] < cost["piano"], cost
    assert cost["piano_sse"] > 0, cost
    assert abs(cost["ratio_vs_codex"] - cost["piano"] / cost["codex_alone"]) < 0.01, cost


def test_every_other_benchmark_runs_to_the_end_and_prints_json_lines() -> None:
    """`python -m bench` is one command: each suite must finish (a leaked thread once kept
    the supervision suite from ever exiting) and print only JSON lines naming their suite."""
    others = ["supervision", "pipeline", "store", "jail", "webfetch", "web", "tools", "rabbitmq"]
    lines = _run(*others, "--quick")
    assert {line["bench"] for line in lines} == set(others)
