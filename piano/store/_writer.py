"""The store's one writer: a synchronous object owning the process's write connection.

`Writer.open(path)` is the process's one write connection to a database file, shared by every
owner of tables in it (the journal's `StoreWriter`, the Telegram surface, the OpenAI backend,
the jail's audit: see piano.store._schema) and counted: each `open` is matched by a `close`,
and the last one closes the connection. So no write in the process ever waits for SQLite's
lock held by another connection of the same process (it used to wait up to the busy timeout
on the event loop), and there is one place where transactions begin. Owners write with
``with writer.transaction() as db:`` (``BEGIN IMMEDIATE`` .. ``COMMIT``, never holding an await)
and read their own tables with ``with writer.reading() as db:``; both hold the writer's lock,
so a worker thread's transaction never interleaves with the event loop's. `Writer(path)` is a
private connection, for tools, tests and benchmarks.

A `StoreWriter` that crashes and restarts closes and reopens its backend, which gives back and
takes again the same shared connection while another owner holds it (a transaction the crash
left open was rolled back by `transaction` on its way out); the connection itself is reopened
only once every owner has closed it.

`Writer.write_batch(events)` applies a whole batch in one ``BEGIN IMMEDIATE`` transaction and
returns only once it has committed, with each event's per-thread journal sequence number: what
it returned is acknowledged, and survives the process being killed at any moment after. A batch
is atomic: if one event is invalid the transaction rolls back, `BatchRejected` names the event,
and the writer goes on with the next batch. Events are applied in the order given; the
pipeline's batcher keeps each thread's order across batches.

The other methods are the writes that are not thread events (surfaces, users, agents, threads,
pending interactions), each its own transaction; they raise `StoreError` for what the caller
got wrong (an unknown surface, agent or thread).

`StoreWriter` (piano.store._actor) is the actor that writes thread events through it, on the
event loop. Closing runs ``PRAGMA optimize`` (the reason readers do not).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Literal, TypeAlias, cast

import apsw
import msgspec
import structlog

from piano.store._apply import Applier, StaleNumbers
from piano.store._connection import StoreError, StoreFull, open_connection
from piano.store._schema import Tables, migrate, registered
from schemas.events import Interaction, ThreadEvent

__all__ = ["ThreadStatus", "Writer"]

log = structlog.get_logger(__name__)

ThreadStatus: TypeAlias = Literal["idle", "running", "archived"]

_encode_json = msgspec.json.Encoder().encode
_LAST_SEQ = "SELECT coalesce(max(seq), 0) FROM events WHERE thread_id = ?"


def _json(value: Mapping[str, object] | None) -> str:
    return _encode_json(value or {}).decode()


_shared: dict[str, Writer] = {}
_shared_lock = threading.Lock()


class Writer:
    """A write connection to a database (created, and every registered owner's tables
    migrated, on open); `Writer.open` gives the process's shared one."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._db = open_connection(self.path)
        self._lock = threading.RLock()
        self._users = 1
        self._key: str | None = None
        self._ensured: set[Tables] = set()
        try:
            found = migrate(self._db)
            self._ensured.update(registered())
        except BaseException:
            self._db.close()
            raise
        self._applier = Applier(self._db)
        log.info("store.opened", path=self.path, migrated_from=found)

    @classmethod
    def open(cls, path: str | Path) -> Writer:
        """The process's write connection to `path`, opened (and migrated) by the first caller;
        every `open` is matched by one `close`."""
        key = os.path.realpath(path)
        with _shared_lock:
            writer = _shared.get(key)
            if writer is not None:
                writer._users += 1
                return writer
            writer = cls(path)
            writer._key = key
            _shared[key] = writer
            return writer

    def ensure(self, tables: Tables) -> None:
        """Migrate one owner's tables (a feature imported after the connection opened)."""
        if tables in self._ensured:
            return
        with self._lock:
            migrate(self._db, [tables])
            self._ensured.add(tables)

    @contextmanager
    def transaction(self) -> Iterator[apsw.Connection]:
        """A ``BEGIN IMMEDIATE`` .. ``COMMIT`` transaction on the write connection, for an
        owner's own tables; rolled back if the block raises (a full disk: `StoreFull`)."""
        with self._transaction():
            yield self._db

    @contextmanager
    def reading(self) -> Iterator[apsw.Connection]:
        """The write connection, for reading an owner's tables (sees every commit)."""
        with self._lock:
            yield self._db

    # -- thread events --------------------------------------------------------------------------

    def write_batch(
        self, events: Sequence[ThreadEvent], seqs: Sequence[int] | None = None
    ) -> list[int]:
        """Apply `events` in one transaction; return their per-thread sequence numbers once
        committed. Raises `BatchRejected` (nothing written) if one of them is invalid.

        `seqs` numbers the events (the caller assigned them once, so a retry carries the same
        numbers); events whose (thread, seq) is already journaled with the same body are
        skipped, so writing a committed batch again changes nothing. Without `seqs` the events
        get the next numbers of their threads."""
        applier = self._applier
        try:
            try:
                with self._transaction():
                    numbers = applier.write(events, seqs)
            except StaleNumbers:
                applier.rolled_back()
                with self._transaction():
                    numbers = applier.write(events, seqs, careful=True)
        except BaseException:
            applier.rolled_back()
            raise
        applier.committed()
        return numbers

    def last_seqs(self, thread_ids: Iterable[str]) -> dict[str, int]:
        """Each thread's last journal sequence number (0: none yet, or an unknown thread)."""
        last = {}
        for thread_id in thread_ids:
            row = self._db.execute(_LAST_SEQ, (thread_id,)).fetchone()
            last[thread_id] = int(cast(int, row[0])) if row is not None else 0
        return last

    def execute(self, what: str, sql: str, bindings: tuple[object, ...]) -> int:
        """One statement in its own transaction, for the tables a feature owns (see
        `piano.store.Tables`); returns the last inserted rowid. A broken constraint raises
        `StoreError` naming `what`."""
        with self._transaction():
            self._execute(what, sql, bindings)
            return self._db.last_insert_rowid()

    # -- everything else ------------------------------------------------------------------------

    def upsert_surface(
        self, id: str, kind: str, *, name: str = "", config: Mapping[str, object] | None = None
    ) -> None:
        self._write(
            "upsert_surface",
            """
            INSERT INTO surfaces (id, kind, name, config, created_at, updated_at)
            VALUES (?1, ?2, ?3, ?4, ?5, ?5)
            ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, name = excluded.name,
                config = excluded.config, updated_at = excluded.updated_at
            """,
            (id, kind, name, _json(config), time.time()),
        )

    def upsert_user(
        self,
        id: str,
        surface: str,
        external_id: str,
        *,
        display_name: str = "",
        role: str = "user",
    ) -> None:
        self._write(
            "upsert_user",
            """
            INSERT INTO users (id, surface, external_id, display_name, role, created_at,
                               updated_at)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
            ON CONFLICT (id) DO UPDATE SET surface = excluded.surface,
                external_id = excluded.external_id, display_name = excluded.display_name,
                role = excluded.role, updated_at = excluded.updated_at
            """,
            (id, surface, external_id, display_name, role, time.time()),
        )

    def upsert_agent(
        self,
        name: str,
        backend: str,
        *,
        model: str = "",
        config: Mapping[str, object] | None = None,
    ) -> None:
        self._write(
            "upsert_agent",
            """
            INSERT INTO agents (name, backend, model, config, created_at, updated_at)
            VALUES (?1, ?2, ?3, ?4, ?5, ?5)
            ON CONFLICT (name) DO UPDATE SET backend = excluded.backend, model = excluded.model,
                config = excluded.config, updated_at = excluded.updated_at
            """,
            (name, backend, model, _json(config), time.time()),
        )

    def create_thread(
        self,
        id: str,
        surface: str,
        conversation: str,
        agent: str,
        *,
        codex_thread_id: str | None = None,
        at: float | None = None,
    ) -> None:
        """A new thread (idle). Its surface and agent must have been upserted."""
        self._write(
            "create_thread",
            """
            INSERT INTO threads (id, surface, conversation, agent, codex_thread_id, created_at,
                                 updated_at)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
            """,
            (id, surface, conversation, agent, codex_thread_id, at or time.time()),
        )

    def set_codex_thread_id(self, thread_id: str, codex_thread_id: str | None) -> None:
        self._update_thread(
            thread_id, "codex_thread_id = ?", codex_thread_id, "set_codex_thread_id"
        )

    def set_conversation_settings(
        self, surface: str, conversation: str, agent: str, model: str | None, effort: str | None
    ) -> None:
        """Keep the model and effort a conversation chose (None: the agent's own)."""
        self._write(
            "set_conversation_settings",
            """
            INSERT INTO conversation_settings (surface, conversation, agent, model, effort,
                                               updated_at)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6)
            ON CONFLICT (surface, conversation, agent) DO UPDATE SET model = excluded.model,
                effort = excluded.effort, updated_at = excluded.updated_at
            """,
            (surface, conversation, agent, model, effort, time.time()),
        )

    def set_thread_status(self, thread_id: str, status: ThreadStatus) -> None:
        """Archive a thread (e.g. when the user starts afresh), or reopen it as idle."""
        self._update_thread(thread_id, "status = ?", status, "set_thread_status")

    def record_interaction(
        self,
        thread_id: str,
        interaction: Interaction,
        *,
        agent: str | None = None,
        at: float | None = None,
    ) -> None:
        """A user message received and not yet started (pending). Recording the same
        interaction again changes nothing."""
        with self._transaction():
            self._execute(
                "record_interaction",
                """
                INSERT INTO interactions (id, thread_id, user, agent, text, attachments,
                                          created_at)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (id) DO NOTHING
                """,
                (
                    interaction.id,
                    thread_id,
                    interaction.user,
                    agent,
                    interaction.text,
                    _encode_json(interaction.attachments).decode(),
                    at or time.time(),
                ),
            )
            owner = self._db.execute(
                "SELECT thread_id FROM interactions WHERE id = ?", (interaction.id,)
            ).fetchone()
            if owner is None or owner[0] != thread_id:
                raise StoreError(
                    f"record_interaction: interaction {interaction.id!r} belongs to thread "
                    f"{None if owner is None else owner[0]!r}, not {thread_id!r}"
                )

    # -- lifecycle ------------------------------------------------------------------------------

    def close(self) -> None:
        """Give the connection back; the last user's close updates the query planner's
        statistics (``PRAGMA optimize``) and closes it."""
        with _shared_lock:
            self._users -= 1
            if self._users > 0:
                return
            if self._key is not None and _shared.get(self._key) is self:
                del _shared[self._key]
        try:
            self._db.pragma("optimize")
        except apsw.Error as exc:
            log.warning("store.optimize_failed", path=self.path, error=str(exc))
        self._db.close()
        log.info("store.closed", path=self.path)

    def __enter__(self) -> Writer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- helpers --------------------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        db = self._db
        with self._lock:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield
                db.execute("COMMIT")
            except BaseException as exc:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                if isinstance(exc, apsw.FullError):
                    raise StoreFull(self.path) from exc
                raise

    def _execute(self, what: str, sql: str, bindings: tuple[object, ...]) -> None:
        try:
            self._db.execute(sql, bindings)
        except (apsw.ConstraintError, apsw.MismatchError) as exc:
            raise StoreError(f"{what}: {exc} {bindings!r}") from exc

    def _write(self, what: str, sql: str, bindings: tuple[object, ...]) -> None:
        with self._transaction():
            self._execute(what, sql, bindings)

    def _update_thread(self, thread_id: str, assignment: str, value: object, what: str) -> None:
        with self._transaction():
            self._execute(what, f"UPDATE threads SET {assignment} WHERE id = ?", (value, thread_id))
            if not self._db.changes():
                raise StoreError(f"{what}: unknown thread {thread_id!r}")
