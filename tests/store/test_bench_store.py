"""Smoke test of the store benchmark: it runs with one command and prints well-formed lines
(the PostgreSQL workloads on the tests' server, ``PIANO_TEST_POSTGRES_DSN``).

Timings are never asserted; docs/BENCHMARKS.md (section Store) holds the measured numbers.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.postgres import admin_dsn

ROOT = Path(__file__).resolve().parents[2]


def test_the_store_benchmark_prints_one_json_line_per_workload() -> None:
    admin_dsn()  # a server for the PostgreSQL workloads, or a failure saying how to get one
    done = subprocess.run(
        [sys.executable, "-m", "bench", "store", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert done.returncode == 0, done.stderr
    every = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(line["workload"], line["batch"]) for line in every] == [
        ("batch_100", 100),
        ("batch_1000", 1000),
        ("postgres_100", 100),
        ("postgres_500", 500),
        ("pg_drivers", 500),
    ]
    lines, postgres, drivers = every[:2], every[2:4], every[4]
    for line in postgres:
        assert line["postgres_events_per_s"] > 0
        assert line["sqlite_events_per_s"] > 0
        assert line["postgres_batch_median_ms"] > 0
    assert set(drivers) >= {"psycopg_unnest", "psycopg_copy", "asyncpg_unnest", "asyncpg_copy"}
    assert all(drivers[name] > 0 for name in drivers if name.startswith(("psycopg", "asyncpg")))
    for line in lines:
        assert line["bench"] == "store"
        assert line["unit"] == "events/s"
        assert line["threads"] == 100
        for contender in ("piano", "piano_direct", "raw_apsw"):
            assert line[contender] > 0, line
        assert line["ratio_vs_raw"] == round(line["piano"] / line["raw_apsw"], 3)
