"""The PostgreSQL store measured beside SQLite, and the PostgreSQL drivers compared.

Used by ``python -m bench store`` (workloads ``postgres_500`` and ``pg_drivers``) and
``python -m bench piano`` (``pipeline_to_store_postgres``). The server is the tests' one:
``PIANO_TEST_POSTGRES_DSN``, else the machine's 127.0.0.1:5432 as ``postgres``
(``source scripts/postgres`` starts one); each run creates a database of its own and drops it.

- ``postgres_500``: the store bench's realistic stream (100 threads, 15-event turns) in batches
  of 500 events, each ``WriteBatch`` through the `StoreWriter` actor and returning after its
  COMMIT, on SQLite and on PostgreSQL (`PostgresBackend`) in the same run: events/s and the
  median time of one batch's call (what the pipeline waits per batch).
- ``pg_drivers``: the journal alone (thread_id, seq, type, at, body), 500-row batches, one
  transaction each, written by psycopg 3 (``executemany``; one ``INSERT ... SELECT FROM
  unnest`` of arrays sent in binary, ``%b``: in text format psycopg escapes every quote of
  every JSON body with a regular expression, 40x slower; ``COPY``) and asyncpg
  (``executemany``; ``unnest``; ``copy_records_to_table``): rows/s of each.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import statistics
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from actors import ActorSystem
from piano.store import (
    CreateThread,
    PostgresBackend,
    StoreWriter,
    UpsertAgent,
    UpsertSurface,
    WriteBatch,
)
from schemas.events import ThreadEvent, encode_event

__all__ = ["admin_dsn", "driver_rates", "pg_database", "store_run"]

_MACHINE = "postgresql://postgres@127.0.0.1:5432/postgres"


def admin_dsn() -> str:
    return os.environ.get("PIANO_TEST_POSTGRES_DSN") or _MACHINE


@contextlib.contextmanager
def pg_database() -> Iterator[str]:
    """A fresh database on the bench's server; its DSN. Dropped afterwards."""
    admin = admin_dsn()
    name = f"piano_bench_{secrets.token_hex(5)}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_conninfo(admin, dbname=name)
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def _server_cpu(dsn: str) -> float:
    """CPU seconds used so far by the server processes serving `dsn`'s database (other than
    this query's): read from /proc, so only for a server on this machine (else 0)."""
    name = conninfo_to_dict(dsn).get("dbname")
    with psycopg.connect(admin_dsn(), autocommit=True) as connection:
        pids = [
            row[0]
            for row in connection.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
        ]
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{pid}/stat").read_text()
            fields = stat.rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
    return total


async def store_run(
    target: Any, batches: list[list[ThreadEvent]], threads: int, *, dsn: str = ""
) -> dict[str, float]:
    """Every batch through a `StoreWriter` on `target` (a SQLite path or an `Opener`): events/s,
    the median call time of one batch in ms, and the CPU time per batch in ms of this process
    (client: actor, store code, driver) and, with `dsn` (PostgreSQL), of the server's backend:
    the wall-clock figures move with the shared machine's load, CPU time much less."""
    async with ActorSystem() as system:
        store = await system.spawn(StoreWriter(target))
        await store.call(UpsertSurface("web", "web"), timeout=60)
        await store.call(UpsertAgent("codex", "codex"), timeout=60)
        for t in range(threads):
            await store.call(CreateThread(f"t{t}", "web", f"tab{t}", "codex"), timeout=60)
        server0 = _server_cpu(dsn) if dsn else 0.0
        times = []
        t0, c0 = time.perf_counter(), time.process_time()
        for batch in batches:
            b0 = time.perf_counter()
            await store.call(WriteBatch(batch), timeout=60)
            times.append(time.perf_counter() - b0)
        elapsed, client = time.perf_counter() - t0, time.process_time() - c0
        server = _server_cpu(dsn) - server0 if dsn else 0.0
        await store.stop(timeout=60)
    count = sum(len(batch) for batch in batches)
    return {
        "events_per_s": count / elapsed,
        "batch_median_ms": statistics.median(times) * 1e3,
        "client_cpu_ms_per_batch": client / len(batches) * 1e3,
        "server_cpu_ms_per_batch": server / len(batches) * 1e3,
    }


def _rows(batches: list[list[ThreadEvent]]) -> list[list[tuple[str, int, str, float, str]]]:
    seqs: dict[str, int] = {}
    out = []
    for batch in batches:
        rows = []
        for event in batch:
            seq = seqs[event.thread_id] = seqs.get(event.thread_id, 0) + 1
            tag = str(event.__struct_config__.tag)
            rows.append((event.thread_id, seq, tag, time.time(), encode_event(event).decode()))
        out.append(rows)
    return out


_JOURNAL = (
    "CREATE TABLE journal (thread_id text NOT NULL, seq bigint NOT NULL, type text NOT NULL, "
    "at double precision NOT NULL, body text NOT NULL, PRIMARY KEY (thread_id, seq))"
)
_INSERT = "INSERT INTO journal (thread_id, seq, type, at, body) VALUES (%s, %s, %s, %s, %s)"
_UNNEST = (
    "INSERT INTO journal (thread_id, seq, type, at, body) SELECT * FROM "
    "unnest(%b::text[], %b::bigint[], %b::text[], %b::float8[], %b::text[])"
)


@contextlib.asynccontextmanager
async def _journal_database() -> AsyncIterator[str]:
    with pg_database() as dsn:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as connection:
            await connection.execute(_JOURNAL)
        yield dsn


async def _psycopg(kind: str, batches: list[list[tuple[str, int, str, float, str]]]) -> float:
    async with (
        _journal_database() as dsn,
        await psycopg.AsyncConnection.connect(dsn, autocommit=True) as connection,
    ):
        t0 = time.perf_counter()
        for rows in batches:
            async with connection.transaction():
                if kind == "executemany":
                    async with connection.cursor() as cursor:
                        await cursor.executemany(_INSERT, rows)
                elif kind == "unnest":
                    columns = [list(c) for c in zip(*rows, strict=True)]
                    await connection.execute(_UNNEST, columns)
                else:
                    async with (
                        connection.cursor() as cursor,
                        cursor.copy(
                            "COPY journal (thread_id, seq, type, at, body) FROM STDIN"
                        ) as copy,
                    ):
                        for row in rows:
                            await copy.write_row(row)
        return time.perf_counter() - t0


async def _asyncpg(kind: str, batches: list[list[tuple[str, int, str, float, str]]]) -> float:
    import asyncpg  # the bench extra: pip install -e .[bench]

    async with _journal_database() as dsn:
        parts = conninfo_to_dict(dsn)
        connection = await asyncpg.connect(
            host=parts.get("host"),
            port=int(parts.get("port") or 5432),
            user=parts.get("user"),
            password=parts.get("password"),
            database=parts.get("dbname"),
        )
        try:
            t0 = time.perf_counter()
            for rows in batches:
                async with connection.transaction():
                    if kind == "executemany":
                        await connection.executemany(
                            "INSERT INTO journal VALUES ($1, $2, $3, $4, $5)", rows
                        )
                    elif kind == "unnest":
                        await connection.execute(
                            "INSERT INTO journal SELECT * FROM unnest($1::text[], $2::bigint[], "
                            "$3::text[], $4::float8[], $5::text[])",
                            *[list(c) for c in zip(*rows, strict=True)],
                        )
                    else:
                        await connection.copy_records_to_table("journal", records=rows)
            return time.perf_counter() - t0
        finally:
            await connection.close()


Rows = list[list[tuple[str, int, str, float, str]]]
DRIVERS: dict[str, Callable[[Rows], Coroutine[Any, Any, float]]] = {
    "psycopg_executemany": lambda b: _psycopg("executemany", b),
    "psycopg_unnest": lambda b: _psycopg("unnest", b),
    "psycopg_copy": lambda b: _psycopg("copy", b),
    "asyncpg_executemany": lambda b: _asyncpg("executemany", b),
    "asyncpg_unnest": lambda b: _asyncpg("unnest", b),
    "asyncpg_copy": lambda b: _asyncpg("copy", b),
}


def driver_rates(batches: list[list[ThreadEvent]]) -> dict[str, Any]:
    """Rows/s of each driver and method, one timed run each (the caller takes rounds)."""
    rows = _rows(batches)
    count = sum(len(r) for r in rows)
    return {name: count / asyncio.run(run(rows)) for name, run in DRIVERS.items()}


def pg_opener(dsn: str) -> Any:
    return PostgresBackend.opener(dsn)
