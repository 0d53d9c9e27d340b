"""A conversation as the OpenAI backend keeps it: wire-neutral messages, per thread.

Codex keeps its own history; an OpenAI agent's history is Piano's: the user's messages, what
each agent answered, its tool calls and their results, stored after every turn so a thread
that stopped when idle (or a restarted daemon) carries on where it was. The messages are
neutral (`Message`): `_responses` and `_chat` turn them into each API's input, so an agent on
Chat Completions can hand a conversation to one on the Responses API and it sees it all.

`History` is where they live: `MemoryHistory` (tests), `SqliteHistory` (the store's
database, tables ``agent_messages`` and ``agent_threads``, owned here: `HISTORY_TABLES`) or
`PostgresHistory` (the same tables in a PostgreSQL store). The active agent of a thread (after a
handoff) is kept with it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final, Literal, Protocol

import apsw
import msgspec

from piano.store import Database, PostgresPool, Tables, register

__all__ = [
    "HISTORY_TABLES",
    "History",
    "MemoryHistory",
    "Message",
    "PostgresHistory",
    "SqliteHistory",
    "ToolCall",
    "trim",
]


class ToolCall(msgspec.Struct, frozen=True, kw_only=True):
    """A function call the model made: its call id, tool name and JSON arguments."""

    id: str
    name: str
    arguments: str


class Message(msgspec.Struct, frozen=True, kw_only=True):
    """One message: a user's, an agent's (text and/or tool calls), or a tool's result. A
    user's `images` are paths of image files sent with it, read when a request is made."""

    role: Literal["user", "assistant", "tool"]
    text: str = ""
    images: tuple[str, ...] = ()
    agent: str | None = None
    calls: tuple[ToolCall, ...] = ()
    call_id: str | None = None


_V1: Final = """
CREATE TABLE agent_messages (
    thread_id  TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    role       TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'tool')),
    agent      TEXT,
    body       TEXT NOT NULL CHECK (json_valid(body)),
    at         REAL NOT NULL,
    PRIMARY KEY (thread_id, seq)
) STRICT;

CREATE TABLE agent_threads (
    thread_id     TEXT PRIMARY KEY,
    active_agent  TEXT NOT NULL,
    updated_at    REAL NOT NULL
) STRICT;
"""

HISTORY_TABLES: Final = register(Tables("openai", (_V1,)))
"""The OpenAI backend's tables in Piano's database (owner ``openai``)."""


def trim(messages: Sequence[Message], limit: int) -> list[Message]:
    """The last `limit` messages, never starting with a tool result whose call was cut off."""
    kept = list(messages[-limit:]) if limit > 0 else []
    while kept and kept[0].role == "tool":
        kept.pop(0)
    return kept


class History(Protocol):
    async def load(self, thread_id: str) -> tuple[str | None, list[Message]]:
        """The thread's active agent (None: never handed off) and its messages."""
        ...

    async def append(self, thread_id: str, agent: str, messages: Sequence[Message]) -> None:
        """Add `messages` after the thread's others and make `agent` its active agent."""
        ...


class MemoryHistory:
    """A `History` in memory."""

    def __init__(self) -> None:
        self.threads: dict[str, tuple[str | None, list[Message]]] = {}

    async def load(self, thread_id: str) -> tuple[str | None, list[Message]]:
        agent, messages = self.threads.get(thread_id, (None, []))
        return agent, list(messages)

    async def append(self, thread_id: str, agent: str, messages: Sequence[Message]) -> None:
        _, kept = self.threads.get(thread_id, (None, []))
        self.threads[thread_id] = (agent, [*kept, *messages])


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Message).decode


class SqliteHistory:
    """A `History` in the store's database (`HISTORY_TABLES`)."""

    def __init__(self, database: str | Path) -> None:
        self.database = Database(database, HISTORY_TABLES)

    def close(self) -> None:
        self.database.close()

    async def load(self, thread_id: str) -> tuple[str | None, list[Message]]:
        def read(db: apsw.Connection) -> tuple[str | None, list[Message]]:
            row = db.execute(
                "SELECT active_agent FROM agent_threads WHERE thread_id = ?", (thread_id,)
            ).fetchone()
            bodies = db.execute(
                "SELECT body FROM agent_messages WHERE thread_id = ? ORDER BY seq", (thread_id,)
            ).fetchall()
            return (str(row[0]) if row else None), [_decode(str(body)) for (body,) in bodies]

        return await self.database.read(read)

    async def append(self, thread_id: str, agent: str, messages: Sequence[Message]) -> None:
        rows = list(messages)
        now = time.time()

        def write(db: apsw.Connection) -> None:
            row = db.execute(
                "SELECT coalesce(max(seq), 0) FROM agent_messages WHERE thread_id = ?",
                (thread_id,),
            ).fetchone()
            last = int(row[0]) if row else 0
            db.executemany(
                "INSERT INTO agent_messages (thread_id, seq, role, agent, body, at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (thread_id, last + n, m.role, m.agent, _encode(m).decode(), now)
                    for n, m in enumerate(rows, 1)
                ],
            )
            db.execute(
                "INSERT INTO agent_threads (thread_id, active_agent, updated_at) "
                "VALUES (?, ?, ?) ON CONFLICT (thread_id) DO UPDATE SET "
                "active_agent = excluded.active_agent, updated_at = excluded.updated_at",
                (thread_id, agent, now),
            )

        self.database.write(write)


class PostgresHistory:
    """A `History` in a PostgreSQL store (tables ``agent_messages`` and ``agent_threads`` of
    owner ``openai``), on the process's shared connections. An append is one transaction that
    locks the thread's ``agent_threads`` row first, so two appends to one thread never take
    the same seq."""

    def __init__(self, pool: PostgresPool) -> None:
        self.pool = pool

    def close(self) -> None:
        """The pool is the daemon's: it closes it."""

    async def load(self, thread_id: str) -> tuple[str | None, list[Message]]:
        async with self.pool.connection() as connection:
            cursor = await connection.execute(
                "SELECT active_agent FROM agent_threads WHERE thread_id = %s", (thread_id,)
            )
            row = await cursor.fetchone()
            cursor = await connection.execute(
                "SELECT body::text FROM agent_messages WHERE thread_id = %s ORDER BY seq",
                (thread_id,),
            )
            bodies = await cursor.fetchall()
        return (str(row[0]) if row else None), [_decode(str(body)) for (body,) in bodies]

    async def append(self, thread_id: str, agent: str, messages: Sequence[Message]) -> None:
        now = time.time()
        async with self.pool.connection() as connection, connection.transaction():
            await connection.execute(
                "INSERT INTO agent_threads (thread_id, active_agent, updated_at) "
                "VALUES (%s, %s, %s) ON CONFLICT (thread_id) DO UPDATE SET "
                "active_agent = excluded.active_agent, updated_at = excluded.updated_at",
                (thread_id, agent, now),
            )
            cursor = await connection.execute(
                "SELECT coalesce(max(seq), 0) FROM agent_messages WHERE thread_id = %s",
                (thread_id,),
            )
            row = await cursor.fetchone()
            last = int(row[0]) if row else 0
            async with connection.cursor() as insert:
                await insert.executemany(
                    "INSERT INTO agent_messages (thread_id, seq, role, agent, body, at) "
                    "VALUES (%s, %s, %s, %s, %s::jsonb, %s)",
                    [
                        (
                            thread_id,
                            last + n,
                            m.role,
                            m.agent,
                            _encode(m).decode().replace("\\u0000", "\\ufffd"),
                            now,
                        )
                        for n, m in enumerate(messages, 1)
                    ],
                )
