"""Restart latency: from a child's crash to its new instance answering a call.

Three contenders, each restarting the same trivial worker many times in a row:
- piano: a one_for_one `Supervisor`; the worker is crashed with an exit signal carrying an
  exception and the client calls the new instance as soon as its `init` has run;
- raw_asyncio: a hand-written loop (a task and a queue per worker) that awaits the worker task
  and starts a new one when it fails;
- pykka: a ThreadingActor whose failure the client notices on its `ask` future, then starts a
  replacement by hand (pykka has no supervisors).

Reports are silenced (structlog at CRITICAL, loggers cached on first use as structlog recommends
for production) so terminal rendering is not what is measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import statistics
import time
from collections.abc import Iterator
from typing import Any

import pykka
import structlog

from actors import Actor, ActorSystem, Caller
from bench.harness import Options, comparison
from supervisors import ChildSpec, Supervisor

__all__ = ["run"]


class _Crash(Exception):
    pass


class _Worker(Actor):
    def __init__(self, started: list[asyncio.Event]) -> None:
        self.started = started

    def init(self) -> None:
        self.started[0].set()

    def handle_call(self, message: Any, caller: Caller) -> Any:
        return message


def piano_latencies(n: int) -> list[float]:
    async def main() -> list[float]:
        started = [asyncio.Event()]
        out = []
        async with ActorSystem() as system:
            spec = ChildSpec("w", start=lambda: _Worker(started), name="worker")
            await system.spawn(Supervisor([spec], max_restarts=n + 1, max_seconds=3600))
            for _ in range(n):
                ref = system.whereis("worker")
                assert ref is not None
                started[0] = asyncio.Event()
                t0 = time.perf_counter()
                ref.exit(_Crash())
                await started[0].wait()
                new = system.whereis("worker")
                assert new is not None
                await new.call("ping")
                out.append(time.perf_counter() - t0)
        return out

    return asyncio.run(main())


def raw_latencies(n: int) -> list[float]:
    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        current: dict[str, Any] = {}
        ready = asyncio.Event()

        async def worker(queue: asyncio.Queue[Any]) -> None:
            while True:
                message, fut = await queue.get()
                if message == "crash":
                    raise _Crash
                fut.set_result(message)

        def start() -> None:
            queue: asyncio.Queue[Any] = asyncio.Queue()
            task = loop.create_task(worker(queue))
            current["queue"] = queue
            task.add_done_callback(restart)
            ready.set()

        def restart(task: asyncio.Task[None]) -> None:
            if not task.cancelled():
                task.exception()  # retrieved: a crash is what this loop expects
                start()

        start()
        out = []
        for _ in range(n):
            ready.clear()
            t0 = time.perf_counter()
            current["queue"].put_nowait(("crash", None))
            await ready.wait()
            fut = loop.create_future()
            current["queue"].put_nowait(("ping", fut))
            await fut
            out.append(time.perf_counter() - t0)
        return out

    return asyncio.run(main())


class _PykkaWorker(pykka.ThreadingActor):
    def on_receive(self, message: Any) -> Any:
        if message == "crash":
            raise _Crash
        return message


def pykka_latencies(n: int) -> list[float]:
    # An exception in `ask` reaches the caller and the pykka actor lives on: each "crashed"
    # worker is stopped at the end, outside the timing (its thread would keep the process up).
    refs = [_PykkaWorker.start()]
    out = []
    try:
        for _ in range(n):
            t0 = time.perf_counter()
            with contextlib.suppress(_Crash):
                refs[-1].ask("crash")
            refs.append(_PykkaWorker.start())
            refs[-1].ask("ping")
            out.append(time.perf_counter() - t0)
    finally:
        for ref in refs:
            ref.stop()
    return out


def run(options: Options) -> Iterator[dict[str, Any]]:
    if not options.wants("restart_latency"):
        return
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL),
        cache_logger_on_first_use=True,  # structlog's recommended production setting
    )
    logging.getLogger("pykka").setLevel(logging.CRITICAL)
    n = 50 if options.quick else 2000
    medians: dict[str, list[float]] = {"piano": [], "raw_asyncio": [], "pykka": []}
    p99s: dict[str, list[float]] = {"piano": [], "raw_asyncio": [], "pykka": []}
    measure = {"piano": piano_latencies, "raw_asyncio": raw_latencies, "pykka": pykka_latencies}
    for _ in range(options.rounds):
        for name, fn in measure.items():
            samples = sorted(fn(n if name != "pykka" else max(20, n // 10)))
            medians[name].append(statistics.median(samples) * 1e6)
            p99s[name].append(samples[int(len(samples) * 0.99) - 1] * 1e6)
    median: dict[str, float | None] = {n: statistics.median(v) for n, v in medians.items()}
    p99: dict[str, float | None] = {n: statistics.median(v) for n, v in p99s.items()}
    yield {
        **comparison("supervision", "restart_latency_median", "us", median, max_piano=30.0),
        "note": "latency: lower is better; ratio_vs_raw is piano/raw",
    }
    yield {
        **comparison("supervision", "restart_latency_p99", "us", p99),
        "note": "latency: lower is better; ratio_vs_raw is piano/raw",
    }
