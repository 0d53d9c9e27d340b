"""Notes agents keep: save, get and list titles, persisted per owner.

A note belongs to its owner, whatever agent or thread saved it. An OpenAI agent's owner is the
user, ``<surface>:<user>`` (the conversation when the surface does not name a user,
`owner_of`): the Archivist finds what the Concierge's user saved last week, and one user
never sees another's. A Codex thread's owner is the thread itself (`thread_owner`): the MCP
endpoint knows the thread a call comes from, not the user. Saving a title again replaces the
note.
`SqliteNotes` keeps them in the store's database (table ``agent_notes``, owned here:
`NOTES_TABLES`); `PostgresNotes` in a PostgreSQL store; `MemoryNotes` in memory.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Final, Protocol

import apsw

from piano.store import Database, PostgresPool, Tables, register

__all__ = [
    "NOTES_TABLES",
    "MemoryNotes",
    "Notes",
    "PostgresNotes",
    "SqliteNotes",
    "owner_of",
    "thread_owner",
]

_V1: Final = """
CREATE TABLE agent_notes (
    owner       TEXT NOT NULL,
    title       TEXT NOT NULL,
    body        TEXT NOT NULL,
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL,
    PRIMARY KEY (owner, title)
) STRICT;
"""

NOTES_TABLES: Final = register(Tables("notes", (_V1,)))
"""The notes' table in Piano's database, ``agent_notes`` (owner ``notes``)."""


def owner_of(surface: str, user: str | None, conversation: str) -> str:
    """Whose notes a message's tools see."""
    return f"{surface}:{user}" if user else f"{surface}:conversation:{conversation}"


def thread_owner(thread_id: str) -> str:
    """Whose notes a Codex thread's tools see: the thread's own (per conversation)."""
    return f"thread:{thread_id}"


class Notes(Protocol):
    """Where notes are kept (`SqliteNotes` in the daemon, `MemoryNotes` in tests)."""

    async def save(self, owner: str, title: str, body: str) -> None: ...

    async def get(self, owner: str, title: str) -> str | None: ...

    async def titles(self, owner: str) -> list[str]: ...


class MemoryNotes:
    """`Notes` in memory."""

    def __init__(self) -> None:
        self.notes: dict[str, dict[str, str]] = {}

    async def save(self, owner: str, title: str, body: str) -> None:
        self.notes.setdefault(owner, {})[title] = body

    async def get(self, owner: str, title: str) -> str | None:
        return self.notes.get(owner, {}).get(title)

    async def titles(self, owner: str) -> list[str]:
        return sorted(self.notes.get(owner, {}))


class SqliteNotes:
    """`Notes` in the store's database (`NOTES_TABLES`)."""

    def __init__(self, database: str | Path) -> None:
        self.database = Database(database, NOTES_TABLES)

    def close(self) -> None:
        self.database.close()

    async def save(self, owner: str, title: str, body: str) -> None:
        now = time.time()
        self.database.write(
            lambda db: db.execute(
                "INSERT INTO agent_notes (owner, title, body, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (owner, title) DO UPDATE SET "
                "body = excluded.body, updated_at = excluded.updated_at",
                (owner, title, body, now, now),
            )
        )

    async def get(self, owner: str, title: str) -> str | None:
        def read(db: apsw.Connection) -> str | None:
            row = db.execute(
                "SELECT body FROM agent_notes WHERE owner = ? AND title = ?", (owner, title)
            ).fetchone()
            return str(row[0]) if row else None

        return await self.database.read(read)

    async def titles(self, owner: str) -> list[str]:
        def read(db: apsw.Connection) -> list[str]:
            rows = db.execute(
                "SELECT title FROM agent_notes WHERE owner = ? ORDER BY title", (owner,)
            )
            return [str(title) for (title,) in rows]

        return await self.database.read(read)


class PostgresNotes:
    """`Notes` in a PostgreSQL store (table ``agent_notes`` of owner ``openai``), on the
    process's shared connections."""

    def __init__(self, pool: PostgresPool) -> None:
        self.pool = pool

    def close(self) -> None:
        """The pool is the daemon's: it closes it."""

    async def save(self, owner: str, title: str, body: str) -> None:
        now = time.time()
        async with self.pool.connection() as connection:
            await connection.execute(
                "INSERT INTO agent_notes (owner, title, body, created_at, updated_at) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (owner, title) DO UPDATE SET "
                "body = excluded.body, updated_at = excluded.updated_at",
                (owner, title, _no_nul(body), now, now),
            )

    async def get(self, owner: str, title: str) -> str | None:
        async with self.pool.connection() as connection:
            cursor = await connection.execute(
                "SELECT body FROM agent_notes WHERE owner = %s AND title = %s", (owner, title)
            )
            row = await cursor.fetchone()
        return str(row[0]) if row else None

    async def titles(self, owner: str) -> list[str]:
        async with self.pool.connection() as connection:
            cursor = await connection.execute(
                "SELECT title FROM agent_notes WHERE owner = %s ORDER BY title", (owner,)
            )
            return [str(title) for (title,) in await cursor.fetchall()]


def _no_nul(text: str) -> str:
    """PostgreSQL's text cannot hold NUL: it becomes U+FFFD."""
    return text.replace("\x00", "\ufffd")
