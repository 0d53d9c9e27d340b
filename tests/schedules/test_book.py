"""The schedules' table (`piano.schedules.Book`) behaves the same in SQLite and in PostgreSQL
(a real server): a schedule added is live with its timing and chat, what ran last is kept,
replacing a schedule keeps its id, and a cancelled one is no longer live (cancelling twice
says so). A NUL in a prompt is kept by SQLite and stored as U+FFFD by PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from piano.agents import ThreadKey
from piano.config import Timing
from piano.schedules import Book, PostgresSchedules, ScheduleRow, SqliteSchedules
from piano.store import PostgresBackend, StoreLocation
from tests.postgres import pg_dsn

__all__ = ["pg_dsn"]

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["sqlite", "postgres"])
async def book(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Book]:
    if request.param == "sqlite":
        sqlite = SqliteSchedules(tmp_path / "piano.db")
        yield sqlite
        sqlite.close()
        return
    dsn = request.getfixturevalue("pg_dsn")
    backend = await PostgresBackend.open(dsn)  # migrates every owner's tables
    await backend.close()
    pool = StoreLocation.postgres(dsn).pool()
    try:
        yield PostgresSchedules(pool)
    finally:
        await pool.close()


def _row(schedule_id: str, created_at: float, **changes: object) -> ScheduleRow:
    fields: dict[str, object] = {
        "id": schedule_id,
        "origin": "chat",
        "agent": "default",
        "prompt": "check the build\x00",
        "timing": Timing(every=600.0),
        "destination": ThreadKey("telegram", "42", "default"),
        "created_by": "ada",
        "created_at": created_at,
        "anchor": created_at,
        "last_due": None,
    }
    fields.update(changes)
    return ScheduleRow(**fields)  # type: ignore[arg-type]


async def test_schedules_are_kept_with_what_ran_last_and_cancelled_once(book: Book) -> None:
    await book.add(_row("s1", 100.0))
    await book.add(_row("s2", 200.0, timing=Timing(cron="0 8 * * 1-5"), created_by=None))
    await book.ran("s1", 700.0)
    [first, second] = await book.live()
    assert first.id == "s1"
    assert first.last_due == 700.0
    nul = "\x00" if isinstance(book, SqliteSchedules) else "\ufffd"  # PostgreSQL's text has no NUL
    assert first.prompt == "check the build" + nul
    assert first.destination == ThreadKey("telegram", "42", "default")
    assert (second.id, second.timing, second.created_by) == ("s2", Timing(cron="0 8 * * 1-5"), None)
    await book.add(_row("s1", 100.0, prompt="replaced", last_due=1300.0))
    assert [(row.id, row.prompt, row.last_due) for row in await book.live()] == [
        ("s1", "replaced", 1300.0),
        ("s2", "check the build" + nul, None),
    ]
    assert await book.cancel("s1", 2000.0) is True
    assert await book.cancel("s1", 2001.0) is False
    assert [row.id for row in await book.live()] == ["s2"]
