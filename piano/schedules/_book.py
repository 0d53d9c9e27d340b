"""The schedules' table, ``schedules`` (owner ``schedules``), in SQLite or PostgreSQL.

A row is one schedule: where it came from (``config``: a ``[schedules.NAME]``, its id the
name; ``chat``: a ``/schedule``, a short random id), its agent and prompt, its timing, the
conversation its answers are posted to, its anchor (when its interval counts from) and
``last_due``: the due time of its latest run, ran or skipped. That one column is what makes a
missed run run once: at start the next run is the first due time after ``last_due``, and
when it is in the past the schedule runs once and ``last_due`` jumps to the latest due time
at or before now. A cancelled schedule keeps its row (``cancelled_at`` set), so its thread and
its history stay explainable.

`SqliteSchedules` writes through the process's one write connection (`piano.store.Database`);
`PostgresSchedules` on the daemon's shared pool. Both are `Book`s.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

import apsw

from piano.agents import ThreadKey
from piano.config import Timing
from piano.store import Database, PostgresPool, Tables, register

__all__ = [
    "SCHEDULE_TABLES",
    "Book",
    "PostgresSchedules",
    "ScheduleRow",
    "SqliteSchedules",
]

_V1: Final = """
CREATE TABLE schedules (
    id            TEXT PRIMARY KEY,
    origin        TEXT NOT NULL,
    agent         TEXT NOT NULL,
    prompt        TEXT NOT NULL,
    cron          TEXT,
    every         REAL,
    surface       TEXT NOT NULL,
    conversation  TEXT NOT NULL,
    chat_agent    TEXT NOT NULL,
    created_by    TEXT,
    created_at    REAL NOT NULL,
    anchor        REAL NOT NULL,
    last_due      REAL,
    cancelled_at  REAL
) STRICT;
"""

SCHEDULE_TABLES: Final = register(Tables("schedules", (_V1,)))
"""The schedules' table in Piano's database (owner ``schedules``)."""

_COLUMNS: Final = (
    "id, origin, agent, prompt, cron, every, surface, conversation, chat_agent, created_by, "
    "created_at, anchor, last_due"
)


@dataclass(frozen=True, slots=True)
class ScheduleRow:
    """One live schedule as stored."""

    id: str
    origin: str
    """``config`` or ``chat``."""
    agent: str
    prompt: str
    timing: Timing
    destination: ThreadKey
    """The conversation its answers are posted to."""
    created_by: str | None
    created_at: float
    anchor: float
    last_due: float | None

    def values(self) -> tuple[Any, ...]:
        return (
            self.id,
            self.origin,
            self.agent,
            self.prompt,
            self.timing.cron,
            self.timing.every,
            self.destination.surface,
            self.destination.conversation,
            self.destination.agent,
            self.created_by,
            self.created_at,
            self.anchor,
            self.last_due,
        )

    @staticmethod
    def of(row: tuple[Any, ...]) -> ScheduleRow:
        (id_, origin, agent, prompt, cron, every, surface, conversation, chat_agent) = row[:9]
        created_by, created_at, anchor, last_due = row[9:13]
        return ScheduleRow(
            id=str(id_),
            origin=str(origin),
            agent=str(agent),
            prompt=str(prompt),
            timing=Timing(cron=cron, every=None if every is None else float(every)),
            destination=ThreadKey(str(surface), str(conversation), str(chat_agent)),
            created_by=created_by,
            created_at=float(created_at),
            anchor=float(anchor),
            last_due=None if last_due is None else float(last_due),
        )


class Book(Protocol):
    """Where schedules are kept."""

    async def live(self) -> list[ScheduleRow]:
        """Every schedule not cancelled, oldest first."""
        ...

    async def add(self, row: ScheduleRow) -> None:
        """Insert a schedule, or replace the one of the same id (a config schedule changed:
        what it keeps of the old one is the caller's choice, in `row`)."""
        ...

    async def ran(self, schedule_id: str, due: float) -> None:
        """Its run for `due` was handled (ran or skipped)."""
        ...

    async def cancel(self, schedule_id: str, at: float) -> bool:
        """Cancel it; False if it was not live."""
        ...


class SqliteSchedules:
    """`Book` in the store's SQLite database."""

    def __init__(self, database: str | Path) -> None:
        self.database = Database(database, SCHEDULE_TABLES)

    def close(self) -> None:
        self.database.close()

    async def live(self) -> list[ScheduleRow]:
        def read(db: apsw.Connection) -> list[ScheduleRow]:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM schedules WHERE cancelled_at IS NULL "
                "ORDER BY created_at, id"
            )
            return [ScheduleRow.of(row) for row in rows]

        return await self.database.read(read)

    async def add(self, row: ScheduleRow) -> None:
        self.database.write(
            lambda db: db.execute(
                f"INSERT OR REPLACE INTO schedules ({_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row.values(),
            )
        )

    async def ran(self, schedule_id: str, due: float) -> None:
        self.database.write(
            lambda db: db.execute(
                "UPDATE schedules SET last_due = ? WHERE id = ?", (due, schedule_id)
            )
        )

    async def cancel(self, schedule_id: str, at: float) -> bool:
        def write(db: apsw.Connection) -> bool:
            db.execute(
                "UPDATE schedules SET cancelled_at = ? WHERE id = ? AND cancelled_at IS NULL",
                (at, schedule_id),
            )
            return db.changes() > 0

        return self.database.write(write)


class PostgresSchedules:
    """`Book` in a PostgreSQL store, on the daemon's shared connections."""

    def __init__(self, pool: PostgresPool) -> None:
        self.pool = pool

    def close(self) -> None:
        """The pool is the daemon's: it closes it."""

    async def live(self) -> list[ScheduleRow]:
        async with self.pool.connection() as connection:
            cursor = await connection.execute(
                f"SELECT {_COLUMNS} FROM schedules WHERE cancelled_at IS NULL "
                "ORDER BY created_at, id"
            )
            return [ScheduleRow.of(tuple(row)) for row in await cursor.fetchall()]

    async def add(self, row: ScheduleRow) -> None:
        names = _COLUMNS.split(", ")
        updates = ", ".join(f"{name} = excluded.{name}" for name in names[1:])
        async with self.pool.connection() as connection:
            await connection.execute(
                f"INSERT INTO schedules ({_COLUMNS}) VALUES ({', '.join(['%s'] * len(names))}) "
                f"ON CONFLICT (id) DO UPDATE SET {updates}, cancelled_at = NULL",
                tuple(_no_nul(value) for value in row.values()),
            )

    async def ran(self, schedule_id: str, due: float) -> None:
        async with self.pool.connection() as connection:
            await connection.execute(
                "UPDATE schedules SET last_due = %s WHERE id = %s", (due, schedule_id)
            )

    async def cancel(self, schedule_id: str, at: float) -> bool:
        async with self.pool.connection() as connection:
            cursor = await connection.execute(
                "UPDATE schedules SET cancelled_at = %s WHERE id = %s AND cancelled_at IS NULL",
                (at, schedule_id),
            )
            return cursor.rowcount > 0


def _no_nul(value: Any) -> Any:
    """PostgreSQL's text cannot hold NUL: it becomes U+FFFD."""
    return value.replace("\x00", "\ufffd") if isinstance(value, str) else value
