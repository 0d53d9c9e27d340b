"""Store throughput: thread events persisted per second, in batches, across 100 threads.

Workloads ``batch_100`` and ``batch_1000``: a stream of events from 100 threads interleaved
round-robin, each thread repeating a realistic turn (turn started, a command streaming its output
in 4 deltas then completed, an agent message streaming 4 deltas then completed, token usage,
turn completed: 15 events), written in batches of 100 or 1000 events to a fresh database.
Contenders, measured interleaved round by round (medians, [min, max] spread beside them):
- piano: `StoreWriter` actor, one ``call(WriteBatch(batch))`` per batch, each returning after
  its commit (what the pipeline pays: actor hop, journal, tables, commit);
- piano_direct: `Writer.write_batch` called directly (the same work without the actor hop);
- raw_apsw: the floor: the same events msgspec-encoded and inserted with one apsw
  ``executemany`` into a bare journal table, one transaction per batch, same pragmas.
Timings cover writing only; set-up (surfaces, agents, threads) is outside them.

Workloads ``postgres_100`` and ``postgres_500`` (the same stream in batches of 100 and 500
events through the `StoreWriter` on SQLite and on PostgreSQL, same run: events/s and the median
time of one batch's call; targets for PostgreSQL: 20,000 events/s, 5 ms per batch) and
``pg_drivers`` (psycopg against asyncpg on the journal alone) are bench.pg_store's; they need
a PostgreSQL server (``source scripts/postgres``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import structlog

from actors import ActorSystem
from bench.harness import Options, medians, sample_rounds, spread
from piano.store import (
    CreateThread,
    StoreWriter,
    UpsertAgent,
    UpsertSurface,
    WriteBatch,
    Writer,
    open_connection,
)
from schemas.events import (
    Interaction,
    Item,
    ItemCompleted,
    ItemDelta,
    ItemStarted,
    ThreadEvent,
    TokenUsage,
    TurnCompleted,
    TurnStarted,
    encode_event,
)

__all__ = ["run"]

THREADS = 100
EVENTS_PER_TURN = 15


def _turn(thread: str, n: int) -> list[ThreadEvent]:
    turn, interaction = f"{thread}-turn{n}", f"{thread}-i{n}"
    meta: dict[str, Any] = {"thread_id": thread, "turn_id": turn, "interaction_id": interaction}
    command, message = f"{turn}-cmd", f"{turn}-msg"
    line = "collected 12 items, all passed in 0.42s ...\n"
    return [
        TurnStarted(
            interaction=Interaction(id=interaction, text="run the tests please", user="alice"),
            agent="codex",
            **meta,
        ),
        ItemStarted(item=Item(id=command, kind="command", command="pytest -q"), **meta),
        *(ItemDelta(item_id=command, stream="output", delta=line, **meta) for _ in range(4)),
        ItemCompleted(
            item=Item(
                id=command,
                kind="command",
                command="pytest -q",
                status="completed",
                output=line * 4,
                exit_code=0,
            ),
            **meta,
        ),
        ItemStarted(item=Item(id=message, kind="agent_message"), **meta),
        *(ItemDelta(item_id=message, stream="text", delta="All pass. ", **meta) for _ in range(4)),
        ItemCompleted(
            item=Item(id=message, kind="agent_message", status="completed", text="All pass." * 4),
            **meta,
        ),
        TokenUsage(input_tokens=1200, output_tokens=80, total_tokens=1280, **meta),
        TurnCompleted(status="completed", response="All pass." * 4, **meta),
    ]


def events(total: int) -> list[ThreadEvent]:
    """`total` events from THREADS threads, interleaved one event per thread at a time."""
    turns = max(1, total // (THREADS * EVENTS_PER_TURN))
    scripts = [[event for n in range(turns) for event in _turn(f"t{t}", n)] for t in range(THREADS)]
    return [script[i] for i in range(len(scripts[0])) for script in scripts][:total]


def _set_up(writer: Writer) -> None:
    writer.upsert_surface("web", "web")
    writer.upsert_agent("codex", "codex")
    for t in range(THREADS):
        writer.create_thread(f"t{t}", "web", f"tab{t}", "codex")


def _batches(stream: list[ThreadEvent], size: int) -> list[list[ThreadEvent]]:
    return [stream[i : i + size] for i in range(0, len(stream), size)]


def _in_temp_dir(measure: Callable[[Path], float]) -> float:
    directory = Path(tempfile.mkdtemp(prefix="piano-bench-store-"))
    try:
        return measure(directory / "store.db")
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def piano_direct(batches: list[list[ThreadEvent]]) -> float:
    def measure(path: Path) -> float:
        with Writer(path) as writer:
            _set_up(writer)
            t0 = time.perf_counter()
            for batch in batches:
                writer.write_batch(batch)
            return time.perf_counter() - t0

    return _in_temp_dir(measure)


def piano_actor(batches: list[list[ThreadEvent]]) -> float:
    async def main(path: Path) -> float:
        async with ActorSystem() as system:
            store = await system.spawn(StoreWriter(path))
            await store.call(UpsertSurface("web", "web"), timeout=60)
            await store.call(UpsertAgent("codex", "codex"), timeout=60)
            for t in range(THREADS):
                await store.call(CreateThread(f"t{t}", "web", f"tab{t}", "codex"), timeout=60)
            t0 = time.perf_counter()
            for batch in batches:
                await store.call(WriteBatch(batch), timeout=60)
            elapsed = time.perf_counter() - t0
            await store.stop(timeout=60)
            return elapsed

    return _in_temp_dir(lambda path: asyncio.run(main(path)))


def raw_apsw(batches: list[list[ThreadEvent]]) -> float:
    def measure(path: Path) -> float:
        db = open_connection(path)
        try:
            db.execute(
                "CREATE TABLE journal (rowid INTEGER PRIMARY KEY, thread_id TEXT NOT NULL, "
                "seq INTEGER NOT NULL, body TEXT NOT NULL, UNIQUE (thread_id, seq)) STRICT"
            )
            seqs: dict[str, int] = {}
            t0 = time.perf_counter()
            for batch in batches:
                rows = []
                for event in batch:
                    seq = seqs[event.thread_id] = seqs.get(event.thread_id, 0) + 1
                    rows.append((event.thread_id, seq, encode_event(event).decode()))
                db.execute("BEGIN IMMEDIATE")
                db.executemany("INSERT INTO journal (thread_id, seq, body) VALUES (?, ?, ?)", rows)
                db.execute("COMMIT")
            return time.perf_counter() - t0
        finally:
            db.close()

    return _in_temp_dir(measure)


def _rate(
    contender: Callable[[list[list[ThreadEvent]]], float], batches: list[list[ThreadEvent]]
) -> Callable[[], float]:
    """Events per second of one timed run."""
    count = sum(len(batch) for batch in batches)
    return lambda: count / contender(batches)


def _postgres_batches(options: Options, stream: list[ThreadEvent], size: int) -> dict[str, Any]:
    """The stream in batches of `size` through the `StoreWriter`, SQLite and PostgreSQL."""
    from bench.pg_store import pg_database, pg_opener, store_run

    batches = _batches(stream, size)
    rounds: dict[str, list[dict[str, float]]] = {"sqlite": [], "postgres": []}
    for _ in range(options.rounds):
        with pg_database() as dsn:
            rounds["postgres"].append(
                asyncio.run(store_run(pg_opener(dsn), batches, THREADS, dsn=dsn))
            )
        directory = Path(tempfile.mkdtemp(prefix="piano-bench-store-"))
        try:
            rounds["sqlite"].append(
                asyncio.run(store_run(directory / "store.db", batches, THREADS))
            )
        finally:
            shutil.rmtree(directory, ignore_errors=True)
    line: dict[str, Any] = {"bench": "store", "workload": f"postgres_{size}", "batch": size}
    for name, results in rounds.items():
        for key in (
            "events_per_s",
            "batch_median_ms",
            "client_cpu_ms_per_batch",
            *(["server_cpu_ms_per_batch"] if name == "postgres" else []),
        ):
            line[f"{name}_{key}"] = round(statistics.median(r[key] for r in results), 2)
    line["postgres_vs_sqlite"] = round(
        line["postgres_events_per_s"] / line["sqlite_events_per_s"], 3
    )
    line["target"] = {"min_postgres_events_per_s": 20_000, "max_postgres_batch_median_ms": 5}
    line["met"] = line["postgres_events_per_s"] >= 20_000 and line["postgres_batch_median_ms"] <= 5
    line["cores"] = os.cpu_count()
    line["load_average"] = round(os.getloadavg()[0], 2)
    return line


def _postgres(options: Options, stream: list[ThreadEvent]) -> Iterator[dict[str, Any]]:
    from bench.pg_store import driver_rates

    for size in (100, 500):
        if options.wants(f"postgres_{size}"):
            yield _postgres_batches(options, stream, size)
    batches = _batches(stream, 500)
    if options.wants("pg_drivers"):
        samples: dict[str, list[float]] = {}
        for _ in range(options.rounds):
            for name, rate in driver_rates(batches).items():
                samples.setdefault(name, []).append(rate)
        median = {name: round(statistics.median(values), 1) for name, values in samples.items()}
        yield {
            "bench": "store",
            "workload": "pg_drivers",
            "unit": "journal rows/s",
            "batch": 500,
            **median,
            "spread": spread(samples),
            "target": {},
            "met": True,
        }


def run(options: Options) -> Iterator[dict[str, Any]]:
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL),
        cache_logger_on_first_use=True,
    )
    total = 3000 if options.quick else 60_000
    stream = events(total)
    for size in (100, 1000):
        workload = f"batch_{size}"
        if not options.wants(workload):
            continue
        batches = _batches(stream, size)
        samples = sample_rounds(
            options.rounds,
            {
                "piano": _rate(piano_actor, batches),
                "piano_direct": _rate(piano_direct, batches),
                "raw_apsw": _rate(raw_apsw, batches),
            },
        )
        median = {name: value or 0.0 for name, value in medians(samples).items()}
        yield {
            "bench": "store",
            "workload": workload,
            "unit": "events/s",
            "piano": round(median["piano"], 1),
            "piano_direct": round(median["piano_direct"], 1),
            "raw_apsw": round(median["raw_apsw"], 1),
            "ratio_vs_raw": round(median["piano"] / median["raw_apsw"], 3),
            "spread": spread(samples),
            "events": len(stream),
            "threads": THREADS,
            "batch": size,
            "target": {},
            "met": True,
        }
    yield from _postgres(options, stream)
