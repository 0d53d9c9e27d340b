"""The jail's audit trail in Piano's store: one row per command in ``shell_commands``.

The table is the jail's own (`JAIL_TABLES`, registered with the store's owners' registry), and
its rows are written through the store's writer actor, so a command runs only once its row
has committed.

Audit first, run second: `BeginCommand` (a `StoreWrite` for the store's writer actor,
``row = await store.call(BeginCommand(...))``) inserts the command's row before it runs and
returns the row's id; only once that row has committed does the command run, and
`RecordCommand(row, result)` then fills in its outcome. A command of a thread the store does
not know is refused by `BeginCommand` (`StoreError`: the foreign key), so it never runs at all.
A row whose command never finished (the daemon died meanwhile) keeps `exit_code` NULL,
`timed_out` 0, `restart_reason` NULL and `duration` 0. `command_log` reads a thread's rows back
(oldest first) on a read-only connection.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import msgspec

from piano.store import (
    PostgresBackend,
    SqliteDialect,
    StoreBackend,
    StoreLocation,
    StoreWrite,
    Tables,
    location_of,
    open_connection,
    register,
    sqlite_writer,
)
from piano.tools.jail._types import CommandResult

__all__ = [
    "AUDIT_OUTPUT_LIMIT",
    "JAIL_TABLES",
    "BeginCommand",
    "CommandRecord",
    "RecordCommand",
    "command_log",
]

_V1: Final = """
CREATE TABLE shell_commands (
    id              INTEGER PRIMARY KEY,
    thread_id       TEXT NOT NULL REFERENCES threads(id),
    session         TEXT NOT NULL,
    command         TEXT NOT NULL,
    exit_code       INTEGER,
    timed_out       INTEGER NOT NULL CHECK (timed_out IN (0, 1)),
    restart_reason  TEXT,
    stdout          TEXT NOT NULL DEFAULT '',
    stderr          TEXT NOT NULL DEFAULT '',
    stdout_bytes    INTEGER NOT NULL,
    stderr_bytes    INTEGER NOT NULL,
    started_at      REAL NOT NULL,
    duration        REAL NOT NULL,
    recorded_at     REAL NOT NULL
) STRICT;
CREATE INDEX shell_commands_by_thread ON shell_commands (thread_id, id);
"""

JAIL_TABLES: Final = register(Tables("jail", (_V1,)))
"""The jail's table in Piano's database, ``shell_commands`` (owner ``jail``)."""

AUDIT_OUTPUT_LIMIT = 64 * 1024
"""Bytes of each of stdout and stderr kept in the audit row (the rest is counted, not kept)."""

_INSERT = """
INSERT INTO shell_commands (thread_id, session, command, exit_code, timed_out, restart_reason,
    stdout, stderr, stdout_bytes, stderr_bytes, started_at, duration, recorded_at)
VALUES (?, ?, ?, NULL, 0, NULL, '', '', 0, 0, ?, 0, ?)
"""
_PG_INSERT = """
INSERT INTO shell_commands (thread_id, session, command, exit_code, timed_out, restart_reason,
    stdout, stderr, stdout_bytes, stderr_bytes, started_at, duration, recorded_at)
VALUES (%s, %s, %s, NULL, 0, NULL, '', '', 0, 0, %s, 0, %s)
RETURNING id
"""
_PG_UPDATE = """
UPDATE shell_commands SET exit_code = %s, timed_out = %s, restart_reason = %s, stdout = %s,
    stderr = %s, stdout_bytes = %s, stderr_bytes = %s, started_at = %s, duration = %s,
    recorded_at = %s
WHERE id = %s
"""
_UPDATE = """
UPDATE shell_commands SET exit_code = ?, timed_out = ?, restart_reason = ?, stdout = ?,
    stderr = ?, stdout_bytes = ?, stderr_bytes = ?, started_at = ?, duration = ?, recorded_at = ?
WHERE id = ?
"""


class CommandRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One audited command, as stored."""

    id: int
    thread_id: str
    session: str
    command: str
    exit_code: int | None
    timed_out: bool
    restart_reason: str | None
    stdout: str
    stderr: str
    stdout_bytes: int
    stderr_bytes: int
    started_at: float
    duration: float


def _head(data: bytes) -> str:
    return data[:AUDIT_OUTPUT_LIMIT].decode("utf-8", "replace")


@dataclass(frozen=True, slots=True)
class BeginCommand(StoreWrite):
    """Record that a thread's jail is about to run `command`. Reply: the row's id, once
    committed (run the command only then)."""

    thread_id: str
    session: str
    command: str

    async def apply(self, backend: StoreBackend) -> int:
        now = time.time()
        values = (self.thread_id, self.session, self.command, now, now)
        if isinstance(backend, PostgresBackend):
            clean = tuple(_no_nul(value) for value in values)
            return await backend.execute("begin_command", _PG_INSERT, clean)
        writer = sqlite_writer(backend)
        writer.ensure(JAIL_TABLES)
        return writer.execute("begin_command", _INSERT, values)


@dataclass(frozen=True, slots=True)
class RecordCommand(StoreWrite):
    """Fill in the outcome of the command `BeginCommand` recorded as `row`. Reply: None,
    once committed."""

    row: int
    result: CommandResult

    async def apply(self, backend: StoreBackend) -> None:
        result = self.result
        values = (
            result.exit_code,
            int(result.timed_out),
            result.restart_reason.value if result.restart_reason else None,
            _head(result.stdout),
            _head(result.stderr),
            len(result.stdout),
            len(result.stderr),
            result.started_at,
            result.duration,
            time.time(),
            self.row,
        )
        if isinstance(backend, PostgresBackend):
            clean = tuple(_no_nul(value) for value in values)
            await backend.execute("record_command", _PG_UPDATE, clean)
            return
        writer = sqlite_writer(backend)
        writer.ensure(JAIL_TABLES)
        writer.execute("record_command", _UPDATE, values)


def _no_nul(value: object) -> object:
    """PostgreSQL's text cannot hold NUL (a command's output may): it becomes U+FFFD."""
    return value.replace("\x00", "\ufffd") if isinstance(value, str) else value


def command_log(path: str | Path | StoreLocation, thread_id: str) -> list[CommandRecord]:
    """Every audited command of `thread_id`, oldest first (blocking: call from a thread)."""
    location = location_of(path)
    db: Any
    if location.backend == "postgres":
        db = SqliteDialect(location.dsn, location.connect_timeout)
    else:
        db = open_connection(str(location.path), query_only=True)
    try:
        rows = db.execute(
            "SELECT id, thread_id, session, command, exit_code, timed_out, restart_reason, "
            "stdout, stderr, stdout_bytes, stderr_bytes, started_at, duration "
            "FROM shell_commands WHERE thread_id = ? ORDER BY id",
            (thread_id,),
        ).fetchall()
    finally:
        db.close()
    names = CommandRecord.__struct_fields__
    return [
        msgspec.convert(dict(zip(names, row, strict=True)), CommandRecord, strict=False)
        for row in rows
    ]
