"""Applying thread events to the tables, inside the writer's transaction.

Every event is appended to the ``events`` journal with its per-thread sequence number and
applied to the tables in the same transaction. The sequence numbers are the caller's (the event
pipeline assigns them once, before it may retry a batch) or, when it gives none, the next ones
after the thread's last. **Idempotent by construction**: the journal is inserted first with
``ON CONFLICT (thread_id, seq) DO NOTHING RETURNING``, and only the events whose journal rows
were actually inserted are applied to the other tables. So a batch that was already committed
(a retry after a reply lost to a crash) changes nothing, and a delta is never appended twice.
A journal row already there with another event's body is not a retry but a stale numbering:
the batch is refused with `SeqTaken` (nothing written), and the caller numbers it again.

How each event applies:

- `TurnStarted`: the interaction becomes in_progress (created if it was not recorded), the
  thread running (its updated_at is the time of its last turn start or end);
- `ItemStarted` / `ItemCompleted`: the item is upserted; the completed item's content replaces
  whatever was streamed (final content wins); its `seq` is set when the item is first seen;
- `ItemDelta`: appended to the item's text (text and reasoning streams) or output. A delta for
  an unknown item creates it (kind guessed from the stream) so that nothing streamed is lost.

A thread's item events in a batch are coalesced per item (piano.store._coalesce): started,
deltas and completed in one batch are one INSERT of the final row, deltas after a start one
upsert with the text appended, a run of deltas one UPDATE per column; written before that
thread's next other event and at the end of the batch. So streaming token by token costs one
journal row per delta but not one row rewrite per delta, and the tables end as if each event
had been applied on its own;
- `TurnCompleted`: the interaction gets its status, response and error; items of the turn still
  in progress are closed (failed if the turn failed, else interrupted), undecided approvals of
  the turn are withdrawn, the thread goes idle;
- `ApprovalRequested` / `ApprovalResolved`: the approval row and its decision (a resolution of
  an unknown approval is journaled and logged, not applied);
- `TokenUsage`: one usage row; `Notice`: the journal only.

Events without `interaction_id` are attached to the interaction running their `turn_id`.
An event is invalid, and rejects its whole batch with `BatchRejected`, when it names an unknown
thread or interaction, or breaks a constraint (e.g. a status outside its Literal).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, cast

import apsw
import msgspec
import structlog

from piano.store._coalesce import ItemRuns, ItemWrite
from piano.store._connection import BatchRejected, SeqTaken
from schemas.events import (
    ApprovalRequested,
    ApprovalResolved,
    FileChange,
    ItemCompleted,
    ItemDelta,
    ItemStarted,
    Notice,
    ThreadEvent,
    TokenUsage,
    TurnCompleted,
    TurnStarted,
    encode_event,
)

__all__ = ["Applier", "StaleNumbers"]

log = structlog.get_logger(__name__)

_INVALID: Final = (
    apsw.ConstraintError,
    apsw.MismatchError,
    TypeError,
    OverflowError,
    msgspec.EncodeError,
)
"""What a bad event raises (as opposed to a failing disk, which is not the event's fault)."""

_encode_json = msgspec.json.Encoder().encode

_JOURNAL: Final = """
INSERT INTO events (thread_id, seq, type, at, body) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (thread_id, seq) DO NOTHING RETURNING thread_id, seq
"""
_JOURNAL_NEW: Final = """
INSERT INTO events (thread_id, seq, type, at, body) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (thread_id, seq) DO NOTHING
"""
_JOURNALED: Final = "SELECT body FROM events WHERE thread_id = ? AND seq = ?"
_NEXT_SEQ: Final = """
SELECT EXISTS (SELECT 1 FROM threads WHERE id = ?1),
       coalesce((SELECT max(seq) FROM events WHERE thread_id = ?1), 0)
"""
_TURN_STARTED: Final = """
INSERT INTO interactions (id, thread_id, user, agent, text, attachments, status, turn_id,
                          created_at, started_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'in_progress', ?7, ?8, ?8)
ON CONFLICT (id) DO UPDATE SET
    status = 'in_progress', agent = excluded.agent, turn_id = excluded.turn_id,
    started_at = coalesce(interactions.started_at, excluded.started_at),
    finished_at = NULL, error = NULL
WHERE interactions.thread_id = excluded.thread_id
"""
_THREAD_STATUS: Final = """
UPDATE threads SET status = iif(status = ?1, ?2, status), updated_at = max(updated_at, ?3)
WHERE id = ?4
"""
_ITEM: Final = """
INSERT INTO items (thread_id, id, interaction_id, turn_id, seq, kind, status, text, command, cwd,
                   output, exit_code, changes, tool, arguments, agent, started_at, completed_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (thread_id, id) DO UPDATE SET
    interaction_id = coalesce(excluded.interaction_id, items.interaction_id),
    turn_id = coalesce(excluded.turn_id, items.turn_id),
    kind = excluded.kind, status = excluded.status, text = excluded.text,
    command = excluded.command, cwd = excluded.cwd, output = excluded.output,
    exit_code = excluded.exit_code, changes = excluded.changes, tool = excluded.tool,
    arguments = excluded.arguments, agent = excluded.agent, completed_at = excluded.completed_at
"""
_APPEND: Final = {
    column: f"UPDATE items SET {column} = {column} || ? WHERE thread_id = ? AND id = ?"
    for column in ("text", "output")
}
_ITEM_EXISTS: Final = "SELECT 1 FROM items WHERE thread_id = ? AND id = ?"
_PLACEHOLDER: Final = """
INSERT INTO items (thread_id, id, interaction_id, turn_id, seq, kind, status, text, output,
                   started_at)
VALUES (?, ?, ?, ?, ?, ?, 'in_progress', ?, ?, ?)
"""
_TURN_OF: Final = """
SELECT id FROM interactions WHERE thread_id = ? AND turn_id = ?
ORDER BY started_at DESC LIMIT 1
"""
_INTERACTION_DONE: Final = """
UPDATE interactions SET status = ?, response = ?, error = ?, finished_at = ?
WHERE id = ? AND thread_id = ?
"""
_CLOSE_SCOPES: Final = {
    "turn": "thread_id = ? AND turn_id = ?",
    "interaction": "thread_id = ? AND interaction_id = ?",
    "thread": "thread_id = ? AND ? IS NOT NULL",
}
_CLOSE_ITEMS: Final = {
    scope: f"UPDATE items SET status = ?, completed_at = ? WHERE {where} AND status = 'in_progress'"
    for scope, where in _CLOSE_SCOPES.items()
}
_WITHDRAW: Final = {
    scope: "UPDATE approvals SET decision = 'withdrawn', decided_at = ? "
    f"WHERE {where} AND decision IS NULL"
    for scope, where in _CLOSE_SCOPES.items()
}
_APPROVAL: Final = """
INSERT INTO approvals (thread_id, id, item_id, interaction_id, turn_id, kind, command, cwd, reason,
                       changes, requested_at, expires_at, tool, arguments)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (thread_id, id) DO UPDATE SET
    item_id = excluded.item_id, kind = excluded.kind, command = excluded.command,
    cwd = excluded.cwd, reason = excluded.reason, changes = excluded.changes,
    expires_at = excluded.expires_at, tool = excluded.tool, arguments = excluded.arguments
"""
_RESOLVED: Final = """
UPDATE approvals SET decision = ?, decided_by = ?, decided_at = ? WHERE thread_id = ? AND id = ?
"""
_USAGE: Final = """
INSERT INTO token_usage (thread_id, turn_id, interaction_id, input_tokens, cached_input_tokens,
                         output_tokens, reasoning_tokens, total_tokens, at, model)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""


def _changes(changes: list[FileChange]) -> str:
    return _encode_json(changes).decode()


class StaleNumbers(Exception):
    """A batch expected to be all new found journal rows already there; roll back and write
    it again with ``careful=True``."""


@dataclass
class _Batch:
    now: float
    seqs: dict[str, int] = field(default_factory=dict)
    items: ItemRuns = field(default_factory=ItemRuns)


class Applier:
    """Applies batches of events on the writer's connection (the caller holds the transaction).

    It keeps each thread's last journal sequence number between batches; `write` returns the
    numbers of a batch's events, and the caller hands them back to `committed` once the
    transaction committed (a rolled-back batch leaves the counters as they were).
    """

    def __init__(self, connection: apsw.Connection) -> None:
        self._db = connection
        self._seqs: dict[str, int] = {}
        self._pending: _Batch | None = None

    def write(
        self,
        events: Sequence[ThreadEvent],
        seqs: Sequence[int] | None = None,
        *,
        careful: bool = False,
    ) -> list[int]:
        """Journal and apply `events` (numbered `seqs`, or the next numbers of their threads);
        return their sequence numbers. Events already journaled are skipped.

        Raises `StaleNumbers` (the caller rolls back and writes again `careful`ly) when a
        batch that looked new found journal rows already there: this connection's idea of a
        thread's last seq was behind the file's."""
        batch = _Batch(now=time.time())
        self._pending = batch
        if seqs is None:
            numbers = [self._next_seq(index, event, batch) for index, event in enumerate(events)]
        else:
            numbers = self._given_seqs(events, seqs, batch)
        journal = [
            self._journal_row(index, event, numbers[index], batch)
            for index, event in enumerate(events)
        ]
        fresh = self._journal(events, journal, careful or self._retried(journal))
        for index, event in enumerate(events):
            if fresh is not None and not fresh[index]:
                continue
            try:
                self._apply(index, event, numbers[index], journal[index][3], batch)
            except _INVALID as exc:
                raise BatchRejected(index, event, self._diagnose(event, exc)) from exc
        self._flush_all(batch)
        return numbers

    def committed(self) -> None:
        if self._pending is not None:
            self._seqs.update(self._pending.seqs)
            self._pending = None

    def rolled_back(self) -> None:
        self._pending = None

    # -- one event ------------------------------------------------------------------------------

    def _next_seq(self, index: int, event: ThreadEvent, batch: _Batch) -> int:
        seq = self._last_seq(index, event, batch) + 1
        batch.seqs[event.thread_id] = seq
        return seq

    def _last_seq(self, index: int, event: ThreadEvent, batch: _Batch) -> int:
        """The thread's last journaled number (this batch's included); checks the event is a
        thread event of a known thread."""
        if not isinstance(event, _EVENT_TYPES):
            raise BatchRejected(index, event, f"not a thread event: {type(event).__name__}")
        thread_id = event.thread_id
        seq = batch.seqs.get(thread_id)
        if seq is None:
            seq = self._seqs.get(thread_id)
        if seq is None:
            if not isinstance(thread_id, str):
                raise BatchRejected(index, event, f"thread_id must be a str, not {thread_id!r}")
            row = self._db.execute(_NEXT_SEQ, (thread_id,)).fetchone()
            assert row is not None
            if not row[0]:
                raise BatchRejected(index, event, f"unknown thread {thread_id!r}")
            seq = cast(int, row[1])
            self._seqs[thread_id] = seq
        return seq

    def _given_seqs(
        self, events: Sequence[ThreadEvent], seqs: Sequence[int], batch: _Batch
    ) -> list[int]:
        if len(seqs) != len(events):
            raise BatchRejected(
                0, events[0] if events else None, f"{len(seqs)} seqs for {len(events)} events"
            )
        numbers = list(seqs)
        for index, event in enumerate(events):
            last = self._last_seq(index, event, batch)
            seq = numbers[index]
            if type(seq) is not int or seq < 1:
                raise BatchRejected(index, event, f"seq must be a positive int, not {seq!r}")
            batch.seqs[event.thread_id] = max(last, seq)
        return numbers

    def _journal_row(
        self, index: int, event: ThreadEvent, seq: int, batch: _Batch
    ) -> tuple[str, int, str, float, str]:
        try:
            body = encode_event(event).decode()
        except _INVALID as exc:
            raise BatchRejected(index, event, self._diagnose(event, exc)) from exc
        tag = cast(str, event.__struct_config__.tag)
        return (event.thread_id, seq, tag, event.at or batch.now, body)

    def _retried(self, journal: list[tuple[str, int, str, float, str]]) -> bool:
        """Whether some row may be journaled already: a seq at or below its thread's last
        committed one (a retry). Otherwise all are new, and the journal's insert needs no
        RETURNING (which costs ~4 us a row)."""
        last = self._seqs
        return any(seq <= last.get(thread_id, 0) for thread_id, seq, _, _, _ in journal)

    def _journal(
        self,
        events: Sequence[ThreadEvent],
        journal: list[tuple[str, int, str, float, str]],
        careful: bool,
    ) -> list[bool] | None:
        """Insert the journal rows not there yet; None if all were new, else which are."""
        db = self._db
        if not careful:
            before = db.total_changes()
            db.executemany(_JOURNAL_NEW, journal)
            if db.total_changes() - before != len(journal):
                self._seqs.clear()  # behind the file: ask it again
                raise StaleNumbers
            return None
        inserted = db.executemany(_JOURNAL, journal).fetchall()
        if len(inserted) == len(journal):
            return None
        return self._fresh(events, journal, {(str(t), cast(int, n)) for t, n in inserted})

    def _fresh(
        self,
        events: Sequence[ThreadEvent],
        journal: list[tuple[str, int, str, float, str]],
        inserted: set[tuple[str, int]],
    ) -> list[bool]:
        """Which events were journaled now; the others must be the same events journaled
        before (a retried batch), or the batch is refused with `SeqTaken`."""
        fresh = []
        for index, (thread_id, seq, _, _, body) in enumerate(journal):
            if (thread_id, seq) in inserted:
                fresh.append(True)
                continue
            row = self._db.execute(_JOURNALED, (thread_id, seq)).fetchone()
            if row is None or row[0] != body:
                raise SeqTaken(index, events[index], thread_id, seq)
            fresh.append(False)
        return fresh

    def _apply(self, index: int, event: ThreadEvent, seq: int, at: float, batch: _Batch) -> None:
        thread_id = event.thread_id
        execute = self._db.execute
        if isinstance(event, ItemStarted | ItemCompleted | ItemDelta):
            closed = batch.items.add(index, event, seq, at)
            if closed is not None:
                self._write_item(closed)
            return
        for write in batch.items.close(thread_id):
            self._write_item(write)
        match event:
            case TurnStarted():
                self._turn_started(index, event, at)
            case TurnCompleted():
                self._turn_completed(event, at)
            case ApprovalRequested():
                execute(
                    _APPROVAL,
                    (
                        thread_id,
                        event.approval_id,
                        event.item_id,
                        self._interaction_of(event),
                        event.turn_id,
                        event.kind,
                        event.command,
                        event.cwd,
                        event.reason,
                        _changes(event.changes),
                        at,
                        event.expires_at,
                        event.tool,
                        event.arguments,
                    ),
                )
            case ApprovalResolved():
                execute(_RESOLVED, (event.decision, event.by, at, thread_id, event.approval_id))
                if not self._db.changes():
                    log.warning(
                        "store.unknown_approval", thread=thread_id, approval=event.approval_id
                    )
            case TokenUsage():
                execute(
                    _USAGE,
                    (
                        thread_id,
                        event.turn_id,
                        self._interaction_of(event),
                        event.input_tokens,
                        event.cached_input_tokens,
                        event.output_tokens,
                        event.reasoning_tokens,
                        event.total_tokens,
                        at,
                        event.model,
                    ),
                )
            case Notice():
                pass

    def _interaction_of(self, event: ThreadEvent) -> str | None:
        if event.interaction_id is not None or event.turn_id is None:
            return event.interaction_id
        row = self._db.execute(_TURN_OF, (event.thread_id, event.turn_id)).fetchone()
        return None if row is None else cast("str | None", row[0])

    def _turn_started(self, index: int, event: TurnStarted, at: float) -> None:
        interaction = event.interaction
        self._db.execute(
            _TURN_STARTED,
            (
                interaction.id,
                event.thread_id,
                interaction.user,
                event.agent,
                interaction.text,
                _encode_json(interaction.attachments).decode(),
                event.turn_id,
                at,
            ),
        )
        if not self._db.changes():
            raise BatchRejected(
                index, event, f"interaction {interaction.id!r} belongs to another thread"
            )
        self._db.execute(_THREAD_STATUS, ("idle", "running", at, event.thread_id))

    def _turn_completed(self, event: TurnCompleted, at: float) -> None:
        execute = self._db.execute
        thread_id = event.thread_id
        interaction_id = self._interaction_of(event)
        if interaction_id is not None:
            execute(
                _INTERACTION_DONE,
                (event.status, event.response, event.error, at, interaction_id, thread_id),
            )
        if event.turn_id is not None:
            scope, key = "turn", event.turn_id
        elif interaction_id is not None:
            scope, key = "interaction", interaction_id
        else:
            scope, key = "thread", thread_id
        closed = "failed" if event.status == "failed" else "interrupted"
        execute(_CLOSE_ITEMS[scope], (closed, at, thread_id, key))
        execute(_WITHDRAW[scope], (at, thread_id, key))
        execute(_THREAD_STATUS, ("running", "idle", at, thread_id))

    # -- items (coalesced: piano.store._coalesce) ----------------------------------------------

    def _write_item(self, write: ItemWrite) -> None:
        """One run of an item's events: one upsert, or one append per column."""
        try:
            if write.upsert is not None:
                self._upsert_item(write, write.upsert)
                return
            db = self._db
            thread_id, item_id = write.first.thread_id, write.item_id
            for column in ("text", "output"):
                if write.text if column == "text" else write.output:
                    db.execute(_APPEND[column], (write.appended(column), thread_id, item_id))
                    if not db.changes():
                        self._placeholder(write)
                        return
        except _INVALID as exc:
            event = self._blamed(write)
            raise BatchRejected(write.blamed, event, self._diagnose(event, exc)) from exc

    def _upsert_item(self, write: ItemWrite, event: ItemStarted | ItemCompleted) -> None:
        item = event.item
        completed = isinstance(event, ItemCompleted)
        self._db.execute(
            _ITEM,
            (
                event.thread_id,
                item.id,
                self._interaction_of(write.first),
                write.first.turn_id,
                write.seq,
                item.kind,
                write.status,
                write.content("text"),
                item.command,
                item.cwd,
                write.content("output"),
                item.exit_code,
                _changes(item.changes),
                item.tool,
                item.arguments,
                item.agent,
                write.at,
                write.upsert_at if completed else None,
            ),
        )

    def _blamed(self, write: ItemWrite) -> ThreadEvent:
        return write.upsert if write.upsert is not None else write.first

    def _flush_all(self, batch: _Batch) -> None:
        """Write every thread's open runs at the end of a batch. Deltas-only runs (a batch
        across many threads leaves most of its deltas pending here) go in with one
        ``executemany`` per column, checked by the count of rows changed; items that do not
        exist yet (rare) then get their placeholder rows."""
        appends: list[ItemWrite] = []
        for write in batch.items.close_all():
            if write.upsert is not None:
                self._write_item(write)
            else:
                appends.append(write)
        if not appends:
            return
        rows: dict[str, list[tuple[str, str, str]]] = {"text": [], "output": []}
        for write in appends:
            thread_id, item_id = write.first.thread_id, write.item_id
            try:
                if write.text:
                    rows["text"].append((write.appended("text"), thread_id, item_id))
                if write.output:
                    rows["output"].append((write.appended("output"), thread_id, item_id))
            except _INVALID as exc:
                raise BatchRejected(
                    write.index, write.first, self._diagnose(write.first, exc)
                ) from exc
        db = self._db
        before = db.total_changes()
        for column, appended in rows.items():
            if appended:  # updates only: cannot break a constraint
                db.executemany(_APPEND[column], appended)
        if db.total_changes() - before == len(rows["text"]) + len(rows["output"]):
            return
        for write in appends:
            if db.execute(_ITEM_EXISTS, (write.first.thread_id, write.item_id)).fetchone() is None:
                try:
                    self._placeholder(write)
                except _INVALID as exc:
                    raise BatchRejected(
                        write.index, write.first, self._diagnose(write.first, exc)
                    ) from exc

    def _placeholder(self, write: ItemWrite) -> None:
        """The row of an item first seen through its deltas (kind guessed from the stream)."""
        event = write.first
        self._db.execute(
            _PLACEHOLDER,
            (
                event.thread_id,
                write.item_id,
                self._interaction_of(event),
                event.turn_id,
                write.seq,
                write.placeholder_kind,
                write.appended("text"),
                write.appended("output"),
                write.at,
            ),
        )

    # -- errors ---------------------------------------------------------------------------------

    def _diagnose(self, event: ThreadEvent, exc: BaseException) -> str:
        """Say which reference an event broke, rather than SQLite's bare 'constraint failed'."""
        interaction_id = getattr(event, "interaction_id", None)
        if isinstance(event, TurnStarted):
            interaction_id = None
        if isinstance(interaction_id, str):
            row = self._db.execute(
                "SELECT thread_id FROM interactions WHERE id = ?", (interaction_id,)
            ).fetchone()
            if row is None:
                return f"unknown interaction {interaction_id!r}"
        return f"{type(exc).__name__}: {exc}"


_EVENT_TYPES: Final[tuple[type[Any], ...]] = (
    TurnStarted,
    ItemStarted,
    ItemDelta,
    ItemCompleted,
    TurnCompleted,
    ApprovalRequested,
    ApprovalResolved,
    TokenUsage,
    Notice,
)
