"""`Database`: how a feature reaches the tables it owns in Piano's database.

A feature that owns tables (`Tables`, registered with the store's registry) reads and writes
them through a `Database(path, tables)`, which the tools' notes (`piano.tools.SqliteNotes`)
and the OpenAI agents' histories use:

- `write(fn)` runs ``fn(connection)`` in one transaction on the process's one write connection
  (`Writer.open`), on the caller's thread (the event loop): each is a small transaction of
  microseconds, and no connection of the process ever waits for SQLite's lock held by another
  connection of the same process. The owner's tables are migrated on the first use.
- `read(fn)` runs ``fn(connection)`` in a worker thread, on a read-only connection of the
  feature's own, in one snapshot: a long history is read without blocking the loop. Reads run
  one at a time; `close` waits for the one in flight.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import apsw

from piano.store._connection import open_connection
from piano.store._schema import Tables
from piano.store._writer import Writer

__all__ = ["Database"]

T = TypeVar("T")


class Database:
    """A feature's access to its `tables` in the database at `path`; both connections open on
    first use."""

    def __init__(self, path: str | Path, tables: Tables) -> None:
        self.path = path
        self.tables = tables
        self._writer: Writer | None = None
        self._reader: apsw.Connection | None = None
        self._lock = threading.Lock()

    @property
    def writer(self) -> Writer:
        """The process's write connection (opened, and the owner's tables migrated, once)."""
        if self._writer is None:
            writer = Writer.open(self.path)
            try:
                writer.ensure(self.tables)
            except BaseException:
                writer.close()
                raise
            self._writer = writer
        return self._writer

    def write(self, fn: Callable[[apsw.Connection], T]) -> T:
        """`fn(connection)` in one transaction on the process's write connection."""
        with self.writer.transaction() as db:
            return fn(db)

    def _read(self, fn: Callable[[apsw.Connection], T]) -> T:
        with self._lock:
            if self._reader is None:
                self._reader = open_connection(self.path, query_only=True)
            reader = self._reader
            reader.execute("BEGIN")  # one snapshot for all of fn's queries
            try:
                return fn(reader)
            finally:
                reader.execute("COMMIT")

    async def read(self, fn: Callable[[apsw.Connection], T]) -> T:
        """`fn(connection)` in a worker thread, on a read-only connection."""
        self.writer  # noqa: B018 - the tables exist before the first read
        return await asyncio.to_thread(self._read, fn)

    def close(self) -> None:
        with self._lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None
