"""`StoreReader`: read-only queries on their own connection, concurrent with the writer (WAL).

A reader never blocks the writer and always sees whole committed batches: each method reads
one snapshot. Its methods are synchronous and may block briefly; call them from a thread
(``await asyncio.to_thread(reader.threads)``) or from a `ThreadActor`. A reader is safe to share
between threads (calls are serialised); open several for parallel reads. The connection is
``query_only``: a reader cannot write by mistake.

The database must have been migrated by the writer (`Writer` / `StoreWriter`) first.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any, Final, TypeVar, cast

import apsw
import msgspec

from piano.store._connection import SchemaTooNew, StoreError, open_connection
from piano.store._records import (
    AgentRecord,
    ApprovalRecord,
    ConversationSettings,
    InteractionRecord,
    ItemRecord,
    JournalEntry,
    SurfaceRecord,
    ThreadRecord,
    TurnCount,
    UsageRow,
    UsageTotals,
    UserRecord,
)
from piano.store._schema import JOURNAL, SCHEMA_VERSION, owner_versions, schema_version
from piano.store._transcript import Transcript, render_transcript
from schemas.events import decode_event

__all__ = ["StoreReader"]

R = TypeVar("R", bound=msgspec.Struct)

_JSON_COLUMNS: Final = frozenset({"config", "attachments", "changes"})
_decode_json = msgspec.json.Decoder().decode


def _columns(record: type[msgspec.Struct]) -> str:
    return ", ".join(record.__struct_fields__)


def _convert(record: type[R], names: tuple[str, ...], row: Iterable[Any]) -> R:
    values = {
        name: _decode_json(value) if name in _JSON_COLUMNS else value
        for name, value in zip(names, row, strict=True)
    }
    return msgspec.convert(values, record)


_USAGE_SUMS: Final = """
SELECT count(*), coalesce(sum(input_tokens), 0), coalesce(sum(cached_input_tokens), 0),
       coalesce(sum(output_tokens), 0), coalesce(sum(reasoning_tokens), 0),
       coalesce(sum(total_tokens), 0)
FROM token_usage
"""


_USAGE_BY: Final = """
SELECT count(*), coalesce(sum(u.input_tokens), 0), coalesce(sum(u.cached_input_tokens), 0),
       coalesce(sum(u.output_tokens), 0), coalesce(sum(u.reasoning_tokens), 0),
       coalesce(sum(u.total_tokens), 0), i.user, coalesce(i.agent, t.agent), u.model
FROM token_usage u JOIN threads t ON t.id = u.thread_id
LEFT JOIN interactions i ON i.id = u.interaction_id
WHERE (?1 IS NULL OR u.at >= ?1) AND (?2 IS NULL OR i.user = ?2) AND (?3 IS NULL OR u.at < ?3)
GROUP BY i.user, coalesce(i.agent, t.agent), u.model
ORDER BY i.user, coalesce(i.agent, t.agent), u.model
"""
_TURNS_BY: Final = """
SELECT i.user, coalesce(i.agent, t.agent), count(*)
FROM interactions i JOIN threads t ON t.id = i.thread_id
WHERE i.started_at IS NOT NULL AND (?1 IS NULL OR i.started_at >= ?1)
  AND (?2 IS NULL OR i.user = ?2) AND (?3 IS NULL OR i.started_at < ?3)
GROUP BY i.user, coalesce(i.agent, t.agent)
ORDER BY i.user, coalesce(i.agent, t.agent)
"""


class StoreReader:
    """Queries on a database the writer has migrated."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._lock = threading.Lock()
        self._db = open_connection(self.path, query_only=True)
        version = schema_version(self._db)
        journal = owner_versions(self._db).get(JOURNAL.owner, 0)
        if version != SCHEMA_VERSION or journal != JOURNAL.version:
            self._db.close()
            if version > SCHEMA_VERSION:
                raise SchemaTooNew(self.path, version, SCHEMA_VERSION)
            if journal > JOURNAL.version:
                raise SchemaTooNew(self.path, journal, JOURNAL.version, owner=JOURNAL.owner)
            raise StoreError(
                f"database {self.path} is at schema version {version} (journal {journal}), "
                f"not {SCHEMA_VERSION} (journal {JOURNAL.version}): "
                "open it with the store's writer first, which migrates it"
            )

    # -- threads and who takes part -------------------------------------------------------------

    def thread(self, thread_id: str) -> ThreadRecord | None:
        return self._one(ThreadRecord, "FROM threads WHERE id = ?", (thread_id,))

    def threads(
        self, *, surface: str | None = None, status: str | None = None
    ) -> list[ThreadRecord]:
        """Threads, most recently updated first, optionally of one surface and/or status."""
        return self._all(
            ThreadRecord,
            "FROM threads WHERE (?1 IS NULL OR surface = ?1) AND (?2 IS NULL OR status = ?2) "
            "ORDER BY updated_at DESC, id",
            (surface, status),
        )

    def find_thread(self, surface: str, conversation: str, agent: str) -> ThreadRecord | None:
        """The newest thread of this conversation with this agent that is not archived."""
        return self._one(
            ThreadRecord,
            "FROM threads WHERE surface = ? AND conversation = ? AND agent = ? "
            "AND status != 'archived' ORDER BY created_at DESC, rowid DESC LIMIT 1",
            (surface, conversation, agent),
        )

    def conversation_settings(
        self, surface: str, conversation: str, agent: str
    ) -> ConversationSettings:
        """The model and effort the conversation chose (each None: the agent's own)."""
        found = self._one(
            ConversationSettings,
            "FROM conversation_settings WHERE surface = ? AND conversation = ? AND agent = ?",
            (surface, conversation, agent),
        )
        return found if found is not None else ConversationSettings()

    def surface(self, surface_id: str) -> SurfaceRecord | None:
        return self._one(SurfaceRecord, "FROM surfaces WHERE id = ?", (surface_id,))

    def user(self, user_id: str) -> UserRecord | None:
        return self._one(UserRecord, "FROM users WHERE id = ?", (user_id,))

    def agent(self, name: str) -> AgentRecord | None:
        return self._one(AgentRecord, "FROM agents WHERE name = ?", (name,))

    # -- what happened in a thread --------------------------------------------------------------

    def interaction(self, interaction_id: str) -> InteractionRecord | None:
        return self._one(InteractionRecord, "FROM interactions WHERE id = ?", (interaction_id,))

    def interactions(self, thread_id: str) -> list[InteractionRecord]:
        """A thread's interactions, oldest first."""
        return self._all(
            InteractionRecord,
            "FROM interactions WHERE thread_id = ? ORDER BY created_at, rowid",
            (thread_id,),
        )

    def unfinished(self, thread_id: str) -> list[InteractionRecord]:
        """A thread's interactions not yet finished (in_progress or pending), oldest first:
        what a conversation's actor must close or run when it starts (see piano.threads)."""
        return self._all(
            InteractionRecord,
            "FROM interactions WHERE thread_id = ? AND status IN ('pending', 'in_progress') "
            "ORDER BY created_at, rowid",
            (thread_id,),
        )

    def unfinished_threads(self) -> list[ThreadRecord]:
        """Threads with an interaction not yet finished, oldest such interaction first: the
        conversations a starting daemon recovers."""
        return self._all(
            ThreadRecord,
            "FROM threads WHERE id IN (SELECT thread_id FROM interactions "
            "WHERE status IN ('pending', 'in_progress')) "
            "ORDER BY (SELECT min(created_at) FROM interactions WHERE thread_id = threads.id "
            "AND status IN ('pending', 'in_progress')), id",
            (),
        )

    def items(self, interaction_id: str) -> list[ItemRecord]:
        """The items of an interaction in the order they started."""
        return self._all(
            ItemRecord, "FROM items WHERE interaction_id = ? ORDER BY seq", (interaction_id,)
        )

    def thread_items(self, thread_id: str) -> list[ItemRecord]:
        """Every item of a thread in the order they started."""
        return self._all(ItemRecord, "FROM items WHERE thread_id = ? ORDER BY seq", (thread_id,))

    def approvals(self, thread_id: str) -> list[ApprovalRecord]:
        return self._all(
            ApprovalRecord,
            "FROM approvals WHERE thread_id = ? ORDER BY requested_at, id",
            (thread_id,),
        )

    def pending_approvals(self, thread_id: str | None = None) -> list[ApprovalRecord]:
        """Approvals without a decision yet (of one thread, or of all), oldest first."""
        return self._all(
            ApprovalRecord,
            "FROM approvals WHERE decision IS NULL AND (?1 IS NULL OR thread_id = ?1) "
            "ORDER BY requested_at, thread_id, id",
            (thread_id,),
        )

    def usage(
        self, thread_id: str | None = None, *, interaction_id: str | None = None
    ) -> UsageTotals:
        """Token usage summed over everything, a thread, or one interaction."""
        with self._lock:
            return self._usage(thread_id, interaction_id)

    def usage_by(
        self, *, since: float | None = None, until: float | None = None, user: str | None = None
    ) -> list[UsageRow]:
        """Token usage summed per user, agent and model, reported in [`since`, `until`) (None:
        open), of one `user` or everyone's."""
        with self._lock:
            rows = self._db.execute(_USAGE_BY, (since, user, until)).fetchall()
        return [_convert(UsageRow, UsageRow.__struct_fields__, row) for row in rows]

    def turns_by(
        self, *, since: float | None = None, until: float | None = None, user: str | None = None
    ) -> list[TurnCount]:
        """Turns per user and agent that started in [`since`, `until`), of one `user` or all."""
        with self._lock:
            rows = self._db.execute(_TURNS_BY, (since, user, until)).fetchall()
        return [_convert(TurnCount, TurnCount.__struct_fields__, row) for row in rows]

    # -- the journal ----------------------------------------------------------------------------

    def events_since(
        self, thread_id: str, seq: int = 0, *, limit: int | None = None
    ) -> list[JournalEntry]:
        """The thread's events numbered after `seq`, in order (for a client that saw `seq`)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, body FROM events WHERE thread_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                (thread_id, seq, -1 if limit is None else limit),
            ).fetchall()
        return [JournalEntry(cast(int, seq), decode_event(cast(str, body))) for seq, body in rows]

    def last_seq(self, thread_id: str) -> int:
        """The number of the thread's last journaled event (0 if none)."""
        with self._lock:
            row = self._db.execute(
                "SELECT coalesce(max(seq), 0) FROM events WHERE thread_id = ?", (thread_id,)
            ).fetchone()
        assert row is not None
        return cast(int, row[0])

    # -- export ---------------------------------------------------------------------------------

    def export_transcript(self, thread_id: str) -> str:
        """The thread as Markdown (see piano.store._transcript), read from one snapshot."""
        with self._lock, self._db:
            thread = self._one_unlocked(ThreadRecord, "FROM threads WHERE id = ?", (thread_id,))
            if thread is None:
                raise StoreError(f"unknown thread {thread_id!r}")
            interactions = self._all_unlocked(
                InteractionRecord,
                "FROM interactions WHERE thread_id = ? ORDER BY created_at, rowid",
                (thread_id,),
            )
            transcript = Transcript(
                thread=thread,
                interactions=interactions,
                items=self._all_unlocked(
                    ItemRecord, "FROM items WHERE thread_id = ? ORDER BY seq", (thread_id,)
                ),
                approvals=self._all_unlocked(
                    ApprovalRecord,
                    "FROM approvals WHERE thread_id = ? ORDER BY requested_at, id",
                    (thread_id,),
                ),
                usage={
                    interaction.id: self._usage(thread_id, interaction.id)
                    for interaction in interactions
                },
                total=self._usage(thread_id, None),
            )
        return render_transcript(transcript)

    # -- lifecycle ------------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> StoreReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- helpers --------------------------------------------------------------------------------

    def _usage(self, thread_id: str | None, interaction_id: str | None) -> UsageTotals:
        row = self._db.execute(
            _USAGE_SUMS + "WHERE (?1 IS NULL OR thread_id = ?1) "
            "AND (?2 IS NULL OR interaction_id = ?2)",
            (thread_id, interaction_id),
        ).fetchone()
        assert row is not None
        return _convert(UsageTotals, UsageTotals.__struct_fields__, row)

    def _all_unlocked(
        self, record: type[R], rest: str, bindings: tuple[apsw.SQLiteValue, ...]
    ) -> list[R]:
        names = record.__struct_fields__
        cursor = self._db.execute(f"SELECT {_columns(record)} {rest}", bindings)
        return [_convert(record, names, row) for row in cursor]

    def _one_unlocked(
        self, record: type[R], rest: str, bindings: tuple[apsw.SQLiteValue, ...]
    ) -> R | None:
        found = self._all_unlocked(record, rest, bindings)
        return found[0] if found else None

    def _all(self, record: type[R], rest: str, bindings: tuple[apsw.SQLiteValue, ...]) -> list[R]:
        with self._lock:
            return self._all_unlocked(record, rest, bindings)

    def _one(self, record: type[R], rest: str, bindings: tuple[apsw.SQLiteValue, ...]) -> R | None:
        with self._lock:
            return self._one_unlocked(record, rest, bindings)
