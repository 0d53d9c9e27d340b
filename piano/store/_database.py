"""`Database`: a feature's own connection to the store's database, used from worker threads.

The tools' notes (`piano.tools.SqliteNotes`) and the OpenAI agents' histories are small
reads and writes that must not block the event loop, so each runs in a worker thread
(`run`), one at a time on one connection (opened on first use with the store's settings).
`close` waits for the one in flight: an operation whose awaiting task was cancelled still
finishes in its thread before the connection goes.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import apsw

from piano.store._connection import open_connection

__all__ = ["Database"]

T = TypeVar("T")


class Database:
    """One connection to `path` (migrated by the store writer), serialised across threads."""

    def __init__(self, path: str | Path) -> None:
        self.path = path
        self._connection: apsw.Connection | None = None
        self._lock = threading.Lock()

    def _call(self, fn: Callable[[apsw.Connection], T]) -> T:
        with self._lock:
            if self._connection is None:
                self._connection = open_connection(self.path)
            return fn(self._connection)

    async def run(self, fn: Callable[[apsw.Connection], T]) -> T:
        """`fn(connection)` in a worker thread."""
        return await asyncio.to_thread(self._call, fn)

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
