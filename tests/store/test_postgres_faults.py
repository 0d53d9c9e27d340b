"""PostgreSQL-only faults and the one contract: the same events give the same tables on both
backends; a full disk on the server refuses a batch with `StoreFull` and the backend writes
again once there is space; a server restart is survived by a retry with the same seqs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import anyio
import psycopg
import pytest

from bench.store import THREADS, events
from piano.store import PostgresBackend, StoreFull, StoreUnavailable, Writer
from schemas.events import Notice, ThreadEvent
from tests.postgres import TempCluster, fresh_database, pg_cluster, small_filesystem

__all__ = ["pg_cluster"]

pytestmark = pytest.mark.anyio

_COMPARED = {
    "interactions": 'id, thread_id, "user", agent, text, status, response, error, turn_id, '
    "created_at, started_at, finished_at",
    "items": "thread_id, id, interaction_id, turn_id, seq, kind, status, text, command, cwd, "
    "output, exit_code, tool, arguments, agent, started_at, completed_at",
    "token_usage": "thread_id, turn_id, interaction_id, input_tokens, cached_input_tokens, "
    "output_tokens, reasoning_tokens, total_tokens",
    "events": "thread_id, seq, type, body",
    "threads": "id, status",
}


async def _set_up(backend: PostgresBackend, threads: int) -> None:
    await backend.upsert_surface("web", "web")
    await backend.upsert_agent("codex", "codex")
    for t in range(threads):
        await backend.create_thread(f"t{t}", "web", f"tab{t}", "codex", at=1.0)


def _stream() -> list[ThreadEvent]:
    """The bench's realistic turns of 100 threads, interleaved, with fixed times."""
    return [event.__class__(**{**_fields(event), "at": 1000.0 + n}) for n, event in
            enumerate(events(3000))]  # fmt: skip


def _fields(event: Any) -> dict[str, Any]:
    return {name: getattr(event, name) for name in event.__struct_fields__}


def _rows(fetch: Any) -> dict[str, list[tuple[Any, ...]]]:
    return {table: sorted(map(tuple, fetch(table, columns)), key=repr)
            for table, columns in _COMPARED.items()}  # fmt: skip


async def test_the_same_batches_give_the_same_rows_on_sqlite_and_postgresql(
    tmp_path: Path,
) -> None:
    stream = _stream()
    batches = [stream[i : i + 500] for i in range(0, len(stream), 500)]
    with Writer(tmp_path / "piano.db") as writer:
        writer.upsert_surface("web", "web")
        writer.upsert_agent("codex", "codex")
        for t in range(THREADS):
            writer.create_thread(f"t{t}", "web", f"tab{t}", "codex", at=1.0)
        sqlite_seqs = [writer.write_batch(batch) for batch in batches]
    sqlite = _rows(
        lambda table, columns: _sqlite_read(tmp_path / "piano.db", f"SELECT {columns} FROM {table}")
    )
    with fresh_database() as dsn:
        backend = await PostgresBackend.open(dsn)
        try:
            await _set_up(backend, THREADS)
            pg_seqs = [await backend.write_batch(batch) for batch in batches]
        finally:
            await backend.close()
        with psycopg.connect(dsn) as connection:
            postgres = _rows(
                lambda table, columns: connection.execute(f"SELECT {columns} FROM {table}")
            )
    assert pg_seqs == sqlite_seqs
    for table in _COMPARED:
        assert postgres[table] == sqlite[table], f"{table} differs"
    assert len(postgres["items"]) > 300


def _sqlite_read(path: Path, query: str) -> list[tuple[Any, ...]]:
    import apsw

    db = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return [tuple(row) for row in db.execute(query)]
    finally:
        db.close()


def _notices(thread: str, n: int, size: int) -> list[ThreadEvent]:
    """Notices of `size` random hex characters (which PostgreSQL cannot compress away)."""
    return [
        Notice(thread_id=thread, level="info", message=os.urandom(size // 2).hex())
        for _ in range(n)
    ]


async def test_a_full_disk_on_the_server_refuses_a_batch_with_store_full_and_writes_resume(
    pg_cluster: TempCluster,
) -> None:
    with (
        small_filesystem(pg_cluster, "1m") as small,
        fresh_database(pg_cluster.dsn) as dsn,
    ):
        backend = await PostgresBackend.open(dsn)
        try:
            await _set_up(backend, 1)
            with psycopg.connect(dsn, autocommit=True) as connection:
                connection.execute(f"CREATE TABLESPACE small LOCATION '{small}'")
                connection.execute("ALTER TABLE events SET TABLESPACE small")
            written: list[int] = []
            refused: tuple[list[ThreadEvent], list[int]] | None = None
            failure = ""
            for _ in range(400):  # 1 MiB fills well before 400 batches of 20 KiB
                batch = _notices("t0", 10, 2000)
                seqs = list(range(len(written) + 1, len(written) + 11))
                try:
                    written += await backend.write_batch(batch, seqs)
                except StoreFull as exc:
                    failure, refused = str(exc), (batch, seqs)
                    break
            assert refused is not None, "the tablespace never filled up"
            assert "the disk is full" in failure
            assert written, "the first batch already failed: the test proves nothing"
            with psycopg.connect(dsn) as connection:
                (count,) = connection.execute("SELECT count(*) FROM events").fetchone() or (0,)
            assert count == len(written), "a refused batch left rows behind"

            await anyio.run_process(["mount", "-o", "remount,size=64m", str(small)])
            assert await backend.write_batch(*refused) == refused[1]  # the same batch, retried
            with psycopg.connect(dsn) as connection:
                seqs_there = [s for (s,) in connection.execute("SELECT seq FROM events ORDER BY 1")]
            assert seqs_there == list(range(1, len(written) + 11))
        finally:
            await backend.close()
            with psycopg.connect(dsn, autocommit=True) as connection:
                connection.execute("ALTER TABLE events SET TABLESPACE pg_default")
            with psycopg.connect(pg_cluster.dsn, autocommit=True) as connection:
                connection.execute(
                    f"DROP DATABASE IF EXISTS {psycopg.conninfo.conninfo_to_dict(dsn)['dbname']}"
                )
                connection.execute("DROP TABLESPACE IF EXISTS small")


async def test_a_batch_cut_by_a_server_restart_is_retried_with_the_same_seqs_and_doubles_nothing(
    pg_cluster: TempCluster,
) -> None:
    with fresh_database(pg_cluster.dsn) as dsn:
        backend = await PostgresBackend.open(dsn)
        try:
            await _set_up(backend, 1)
            first = _notices("t0", 5, 10)
            assert await backend.write_batch(first, [1, 2, 3, 4, 5]) == [1, 2, 3, 4, 5]
            pg_cluster.stop("immediate")
            second = _notices("t0", 5, 20)
            with pytest.raises(StoreUnavailable, match=r"(went away|cannot connect)"):
                await backend.write_batch(second, [6, 7, 8, 9, 10])
            pg_cluster.start()
            assert await backend.write_batch(second, [6, 7, 8, 9, 10]) == [6, 7, 8, 9, 10]
            assert await backend.write_batch(second, [6, 7, 8, 9, 10]) == [6, 7, 8, 9, 10]
            assert await backend.last_seqs(["t0"]) == {"t0": 10}
        finally:
            await backend.close()
