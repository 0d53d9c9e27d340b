"""The usage queries (`StoreReader.usage_by`, `turns_by`) answer the same from SQLite and from
PostgreSQL: the same rows, the model of each usage report kept, periods bounded both ways."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from piano.store import PostgresBackend, PostgresReader, StoreBackend, StoreReader
from tests.piano.test_usage import NOON, _store
from tests.postgres import pg_dsn

__all__ = ["pg_dsn"]

pytestmark = pytest.mark.anyio


async def test_usage_per_user_agent_and_model_is_the_same_on_sqlite_and_postgresql(
    tmp_path: Path, pg_dsn: str
) -> None:
    async def open_pg() -> StoreBackend:
        return await PostgresBackend.open(pg_dsn)

    await _store(tmp_path / "piano.db", NOON)
    await _store(open_pg, NOON)

    def read(reader: StoreReader) -> tuple[Any, ...]:
        try:
            return (
                reader.usage_by(),
                reader.turns_by(),
                reader.usage_by(user="bob"),
                reader.turns_by(since=NOON + 1),
                reader.usage_by(until=NOON),
            )
        finally:
            reader.close()

    sqlite = await asyncio.to_thread(read, StoreReader(tmp_path / "piano.db"))
    postgres = await asyncio.to_thread(read, PostgresReader(pg_dsn))
    assert sqlite == postgres
    rows, turns, bobs, later, earlier = sqlite
    assert {(r.user, r.agent, r.model) for r in rows} == {
        ("ada", "coder", "gpt-5.5"),
        ("bob", "helper", "gpt-5.5"),
        ("bob", "helper", "local"),
    }
    assert [(t.user, t.agent, t.turns) for t in turns] == [
        ("ada", "coder", 2),
        ("bob", "helper", 2),
    ]
    assert {r.user for r in bobs} == {"bob"}
    assert (later, earlier) == ([], [])
