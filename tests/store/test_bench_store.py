"""Smoke test of the store benchmark: it runs with one command and prints well-formed lines.

Timings are never asserted; docs/BENCHMARKS.md (section Store) holds the measured numbers.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_store_benchmark_prints_one_json_line_per_batch_size() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "store", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(line["workload"], line["batch"]) for line in lines] == [
        ("batch_100", 100),
        ("batch_1000", 1000),
    ]
    for line in lines:
        assert line["bench"] == "store"
        assert line["unit"] == "events/s"
        assert line["threads"] == 100
        for contender in ("piano", "piano_direct", "raw_apsw"):
            assert line[contender] > 0, line
        assert line["ratio_vs_raw"] == round(line["piano"] / line["raw_apsw"], 3)
