"""Opening Piano's database: one place that sets every connection up the same way.

Every connection is configured as apsw's best practice recommends (WAL, foreign keys on, double
quotes only for identifiers, recursive triggers), except two points measured in
shared/notes/ecosystem.md: the busy timeout is 5 s instead of 100 ms, and ``PRAGMA optimize`` does
not run at every open (a reader opening while the writer is busy then fails with `BusyError`); the
writer runs it when it closes. The hooks are applied to Piano's own connections only, never
through the process-wide ``apsw.connection_hooks``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Final

import apsw
import apsw.bestpractice
import apsw.ext

__all__ = [
    "BUSY_TIMEOUT_MS",
    "BatchRejected",
    "SchemaTooNew",
    "SeqTaken",
    "StoreError",
    "StoreUnavailable",
    "open_connection",
]

BUSY_TIMEOUT_MS: Final = 5000


class StoreError(Exception):
    """Base of the store's own errors."""


class StoreFull(StoreError):
    """A write was refused because the disk (or the database's quota) is full: nothing of it
    was written. The store keeps running, and writes succeed again once space returns."""

    def __init__(self, path: str) -> None:
        super().__init__(f"the disk is full (writing {path})")
        self.path = path


class StoreUnavailable(StoreError):
    """The database cannot be reached (a PostgreSQL server down, restarting, refusing the DSN):
    nothing of the call was written, or its outcome is unknown (a connection lost during
    COMMIT); the message is one line saying why. The backend stays usable and connects again
    at its next call, so a caller retries (a batch with the same seqs changes nothing if it
    did commit)."""


class SchemaTooNew(StoreError):
    """The database was written by a newer Piano: its schema version (the layout's, or one
    owner's tables') is beyond this code's."""

    def __init__(self, path: str, found: int, known: int, *, owner: str | None = None) -> None:
        super().__init__(path, found, known)
        self.path = path
        self.found = found
        self.known = known
        self.owner = owner

    def __str__(self) -> str:
        what = "schema version" if self.owner is None else f"{self.owner} tables at version"
        return (
            f"database {self.path} has {what} {self.found}, newer than the {self.known} "
            "this Piano knows: upgrade Piano, or point it at another database file"
        )


class BatchRejected(StoreError):
    """A batch was rolled back because of one event: nothing of the batch was written.

    `index` is the position of the offending event in the batch and `event` the event itself, so
    the caller may drop it and write the rest again.
    """

    def __init__(self, index: int, event: object, problem: str) -> None:
        super().__init__(index, event, problem)
        self.index = index
        self.event = event
        self.problem = problem

    def __str__(self) -> str:
        kind = getattr(type(self.event), "__name__", "object")
        thread = getattr(self.event, "thread_id", None)
        return f"batch rejected at event {self.index} ({kind}, thread {thread!r}): {self.problem}"


class SeqTaken(BatchRejected):
    """A batch numbered an event with a journal sequence number another event already has: the
    caller's numbering is stale (e.g. a batch whose outcome it never learned did commit). Nothing
    of the batch was written; number the batch again from the store's `last_seqs` and retry."""

    def __init__(self, index: int, event: object, thread_id: str, seq: int) -> None:
        super().__init__(index, event, f"seq {seq} of thread {thread_id!r} is another event's")
        self.thread_id = thread_id
        self.seq = seq


def _connection_busy_timeout_5s(connection: apsw.Connection) -> None:
    connection.set_busy_timeout(BUSY_TIMEOUT_MS)


_REPLACED: Final = {"connection_busy_timeout", "connection_optimize"}
_HOOKS: Final[tuple[Callable[[apsw.Connection], None], ...]] = (
    _connection_busy_timeout_5s,
    *(
        hook
        for hook in apsw.bestpractice.recommended
        if hook.__name__.startswith("connection_") and hook.__name__ not in _REPLACED
    ),
)
_library_ready = False
_library_lock = threading.Lock()


def _set_up_library() -> None:
    """Forward SQLite's own log to Python logging, once per process (apsw's library_logging)."""
    global _library_ready
    with _library_lock:
        if not _library_ready:
            apsw.ext.log_sqlite()
            _library_ready = True


def open_connection(path: str | Path, *, query_only: bool = False) -> apsw.Connection:
    """Open `path` (created if missing) configured for Piano: WAL, synchronous=NORMAL, foreign
    keys, a 5 s busy timeout. A `query_only` connection refuses every write.

    synchronous=NORMAL in WAL mode: a committed transaction survives the process being killed;
    after a power loss the last transactions may be rolled back, but the database stays intact.
    """
    _set_up_library()
    connection = apsw.Connection(str(path))
    for hook in _HOOKS:
        hook(connection)
    connection.pragma("synchronous", "NORMAL")
    if query_only:
        connection.pragma("query_only", True)
    return connection
