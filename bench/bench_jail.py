"""Benchmark: jail start (spawn -> first answered command) and per-command round trips.

Prints one JSON line per measurement: {"bench": "jail", "what": ..., "limits": ..., "n": ...,
"median_ms": ..., "p99_ms": ...}. Run: .venv/bin/python bench/bench_jail.py [--n 500] [--starts 30]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import logging
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import structlog

from piano.tools.jail import JailConfig, JailedShell


def _report(what: str, limits: str, samples: list[float]) -> None:
    samples.sort()
    n = len(samples)
    print(
        json.dumps(
            {
                "bench": "jail",
                "what": what,
                "limits": limits,
                "n": n,
                "median_ms": round(statistics.median(samples), 3),
                "p99_ms": round(samples[min(n - 1, int(n * 0.99))], 3),
            }
        ),
        flush=True,
    )


async def _time(n: int, action: Callable[[], Awaitable[object]]) -> list[float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        await action()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def _round_trips(config: JailConfig, n: int) -> None:
    async with JailedShell(config) as shell:
        assert shell.limits is not None
        limits = f"memory={shell.limits.memory},pids={shell.limits.pids}"
        for command in ("true", "echo hi", "ls /usr/bin | wc -l"):
            await shell.run(command)
            samples = await _time(n, functools.partial(shell.run, command))
            _report(f"run {command!r}", limits, samples)


async def _starts(config: JailConfig, starts: int) -> None:
    start_samples: list[float] = []
    close_samples: list[float] = []
    limits = ""
    for _ in range(starts):
        shell = JailedShell(config)
        started = time.perf_counter()
        await shell.start()
        start_samples.append((time.perf_counter() - started) * 1000)
        assert shell.limits is not None
        limits = f"memory={shell.limits.memory},pids={shell.limits.pids}"
        started = time.perf_counter()
        await shell.close()
        close_samples.append((time.perf_counter() - started) * 1000)
    _report("start", limits, start_samples)
    _report("close", limits, close_samples)


async def main(n: int, starts: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-jail-") as tmp:
        for backend in ("auto", "prlimit"):
            config = JailConfig(workspace=Path(tmp) / "workspace", limit_backend=backend)
            await _starts(config, starts)
            await _round_trips(config, n)


if __name__ == "__main__":
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--starts", type=int, default=30)
    args = parser.parse_args()
    asyncio.run(main(args.n, args.starts))
