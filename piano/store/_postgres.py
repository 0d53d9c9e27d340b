"""`PostgresBackend`: the `StoreBackend` on a PostgreSQL server, same contract as SQLite's.

```python
writer = await system.spawn(StoreWriter(PostgresBackend.opener(dsn)), name=STORE)
```

How a batch is written (one transaction, the reply after COMMIT):

1. the events are checked (thread events of known threads) and numbered: the caller's `seqs`,
   or each thread's next numbers;
2. the journal is inserted in **one statement** (``unnest`` of five arrays) with ``ON CONFLICT
   (thread_id, seq) DO NOTHING RETURNING``: only the events whose rows were inserted are applied
   below, so a batch already committed (a retry after a lost reply) changes nothing, and a
   (thread, seq) holding another event's body refuses the batch with `SeqTaken`;
3. the inserted events are applied to the tables exactly as SQLite's `Applier` does
   (piano.store._apply documents each event), a thread's events on one item coalesced into one
   statement (piano.store._coalesce), all statements sent in **pipeline mode** (no round trip
   per statement); an event without `interaction_id` finds its interaction by `turn_id` inside
   the statement;
4. COMMIT.

An invalid event (a broken constraint, an unknown interaction) aborts the transaction; the
batch is then replayed statement by statement in a transaction that is always rolled back, to
name the event in `BatchRejected`. PostgreSQL cannot store NUL characters in text: they are
replaced by U+FFFD in the tables (the journal keeps them, JSON-escaped).

Faults: a lost or refused connection (server down, restarted, wrong DSN, missing database)
raises `StoreUnavailable` with one line saying what PostgreSQL said; the backend stays usable
and connects again at its next call, so the pipeline's retry carries the batch through once
the server is back (the same seqs: nothing doubled). A full disk raises `StoreFull` (the
transaction rolled back). Neither crashes the writer.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, LiteralString, TypeVar, cast

import msgspec
import psycopg
import structlog
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import TupleRow

from piano.store._backend import Opener, StoreBackend
from piano.store._coalesce import ItemRuns, ItemWrite
from piano.store._connection import (
    BatchRejected,
    SeqTaken,
    StoreError,
    StoreFull,
    StoreUnavailable,
)
from piano.store._fence import Fence
from piano.store._pg_schema import migrate_pg, pg_versions
from piano.store._writer import ThreadStatus
from schemas.events import (
    ApprovalRequested,
    ApprovalResolved,
    FileChange,
    Interaction,
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

__all__ = ["PostgresBackend", "connect_pg", "pg_problem", "safe_dsn"]

log = structlog.get_logger(__name__)

Connection = psycopg.AsyncConnection[TupleRow]
T = TypeVar("T")

_encode_json = msgspec.json.Encoder().encode
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


def safe_dsn(dsn: str) -> str:
    """`dsn` without its password, for logs and messages."""
    try:
        parts = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "(an invalid DSN)"
    parts.pop("password", None)
    host = parts.get("host", "localhost")
    port = parts.get("port", 5432)
    user = str(parts.get("user", ""))
    return f"postgresql://{user + '@' if user else ''}{host}:{port}/{parts.get('dbname', '')}"


def pg_problem(exc: BaseException) -> str:
    """PostgreSQL's (or libpq's) reason as one line: ``database "x" does not exist``,
    ``Connection refused``, ``could not extend file ...: No space left on device``."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    text = lines[0].removeprefix("connection failed: ")
    if text.startswith("connection to server") and "failed: " in text:
        text = text.rsplit("failed: ", 1)[1]
    for prefix in ("FATAL:  ", "ERROR:  "):
        text = text.removeprefix(prefix)
    return text


async def connect_pg(dsn: str, *, timeout: float = 10.0, autocommit: bool = True) -> Connection:
    """A connection to `dsn`, or `StoreUnavailable` in one line saying why not."""
    try:
        return await psycopg.AsyncConnection.connect(
            dsn, autocommit=autocommit, connect_timeout=max(1, round(timeout))
        )
    except psycopg.ProgrammingError as exc:  # a DSN that does not parse
        raise StoreUnavailable(f"the PostgreSQL DSN is invalid: {pg_problem(exc)}") from None
    except psycopg.OperationalError as exc:
        raise StoreUnavailable(
            f"cannot connect to PostgreSQL at {safe_dsn(dsn)}: {pg_problem(exc)}"
        ) from None


def _clean(text: str) -> str:
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def _opt(text: str | None) -> str | None:
    return None if text is None else _clean(text)


def _changes(changes: list[FileChange]) -> str:
    return _encode_json(changes).decode().replace("\\u0000", "\\ufffd")


def _json(value: Mapping[str, object] | None) -> str:
    return _encode_json(value or {}).decode().replace("\\u0000", "\\ufffd")


# An event's interaction: its own, else the one running its turn (three parameters:
# interaction_id, thread_id, turn_id). Same rule as SQLite's Applier._interaction_of.
_OF: Final = (
    "coalesce(%s::text, (SELECT i.id FROM interactions i WHERE i.thread_id = %s "
    "AND i.turn_id = %s ORDER BY i.started_at DESC LIMIT 1))"
)
# Arrays are sent in binary (%b): psycopg's text format escapes every quote of every JSON body
# with a regular expression, 40x slower for a 500-event batch (bench/pg_store.py).
_JOURNAL: Final = """
INSERT INTO events (thread_id, seq, type, at, body)
SELECT * FROM unnest(%b::text[], %b::bigint[], %b::text[], %b::float8[], %b::text[])
ON CONFLICT (thread_id, seq) DO NOTHING RETURNING thread_id, seq
"""
_JOURNALED: Final = """
SELECT e.thread_id, e.seq, e.body FROM events e
JOIN unnest(%b::text[], %b::bigint[]) AS k(thread_id, seq)
  ON e.thread_id = k.thread_id AND e.seq = k.seq
"""
_THREADS: Final = """
SELECT t.id, coalesce((SELECT max(e.seq) FROM events e WHERE e.thread_id = t.id), 0)
FROM threads t WHERE t.id = ANY(%b::text[])
"""
_LEASES: Final = """
SELECT thread_id, node_id, lock_key, epoch FROM thread_leases
WHERE thread_id = ANY(%b::text[]) FOR SHARE
"""
_LAST_SEQS: Final = """
SELECT k.id, coalesce((SELECT max(e.seq) FROM events e WHERE e.thread_id = k.id), 0)
FROM unnest(%b::text[]) AS k(id)
"""
_TURN_STARTED: Final = """
INSERT INTO interactions (id, thread_id, "user", agent, text, attachments, status, turn_id,
                          created_at, started_at)
VALUES (%s, %s, %s, %s, %s, %s::jsonb, 'in_progress', %s, %s, %s)
ON CONFLICT (id) DO UPDATE SET
    status = 'in_progress', agent = excluded.agent, turn_id = excluded.turn_id,
    started_at = coalesce(interactions.started_at, excluded.started_at),
    finished_at = NULL, error = NULL
WHERE interactions.thread_id = excluded.thread_id
"""
_THREAD_STATUS: Final = """
UPDATE threads SET status = CASE WHEN status = %s THEN %s ELSE status END,
                   updated_at = greatest(updated_at, %s)
WHERE id = %s
"""
_ITEM: Final = f"""
INSERT INTO items (thread_id, id, interaction_id, turn_id, seq, kind, status, text, command, cwd,
                   output, exit_code, changes, tool, arguments, agent, started_at, completed_at)
VALUES (%s, %s, {_OF}, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s, %s, %s, %s)
ON CONFLICT (thread_id, id) DO UPDATE SET
    interaction_id = coalesce(excluded.interaction_id, items.interaction_id),
    turn_id = coalesce(excluded.turn_id, items.turn_id),
    kind = excluded.kind, status = excluded.status, text = excluded.text,
    command = excluded.command, cwd = excluded.cwd, output = excluded.output,
    exit_code = excluded.exit_code, changes = excluded.changes, tool = excluded.tool,
    arguments = excluded.arguments, agent = excluded.agent, completed_at = excluded.completed_at
"""
_DELTAS: Final = f"""
INSERT INTO items (thread_id, id, interaction_id, turn_id, seq, kind, status, text, output,
                   started_at)
VALUES (%s, %s, {_OF}, %s, %s, %s, 'in_progress', %s, %s, %s)
ON CONFLICT (thread_id, id) DO UPDATE SET
    text = items.text || excluded.text, output = items.output || excluded.output
"""
_INTERACTION_DONE: Final = f"""
UPDATE interactions SET status = %s, response = %s, error = %s, finished_at = %s
WHERE id = {_OF} AND thread_id = %s
"""
_CLOSE_SCOPES: Final = {
    "turn": "thread_id = %s AND turn_id = %s",
    "interaction": "thread_id = %s AND interaction_id = %s",
    "thread": "thread_id = %s AND %s::text IS NOT NULL",
}
_CLOSE_ITEMS: Final = {
    scope: "UPDATE items SET status = %s, completed_at = %s "
    f"WHERE {where} AND status = 'in_progress'"
    for scope, where in _CLOSE_SCOPES.items()
}
_WITHDRAW: Final = {
    scope: "UPDATE approvals SET decision = 'withdrawn', decided_at = %s "
    f"WHERE {where} AND decision IS NULL"
    for scope, where in _CLOSE_SCOPES.items()
}
_APPROVAL: Final = f"""
INSERT INTO approvals (thread_id, id, item_id, interaction_id, turn_id, kind, command, cwd, reason,
                       changes, requested_at, expires_at, tool, arguments)
VALUES (%s, %s, %s, {_OF}, %s, %s, %s, %s, %s, %s::jsonb, %s, %s, %s, %s)
ON CONFLICT (thread_id, id) DO UPDATE SET
    item_id = excluded.item_id, kind = excluded.kind, command = excluded.command,
    cwd = excluded.cwd, reason = excluded.reason, changes = excluded.changes,
    expires_at = excluded.expires_at, tool = excluded.tool, arguments = excluded.arguments
"""
_RESOLVED: Final = """
UPDATE approvals SET decision = %s, decided_by = %s, decided_at = %s
WHERE thread_id = %s AND id = %s
"""
_USAGE: Final = f"""
INSERT INTO token_usage (thread_id, turn_id, interaction_id, input_tokens, cached_input_tokens,
                         output_tokens, reasoning_tokens, total_tokens, at, model)
VALUES (%s, %s, {_OF}, %s, %s, %s, %s, %s, %s, %s)
"""


def _unnest(types: str, names: str) -> str:
    """``unnest`` of one binary array per column (%b: see _JOURNAL), named `names`."""
    arrays = ", ".join(f"%b::{t}[]" for t in types.split())
    return f"unnest({arrays}) AS v({names})"


# An unnested row's interaction: as _OF, from the columns oi, ot, ou.
_V_OF: Final = (
    "coalesce(v.oi, (SELECT i.id FROM interactions i WHERE i.thread_id = v.ot "
    "AND i.turn_id = v.ou ORDER BY i.started_at DESC LIMIT 1))"
)
_SET_TURN_STARTED: Final = f"""
INSERT INTO interactions (id, thread_id, "user", agent, text, attachments, status, turn_id,
                          created_at, started_at)
SELECT v.id, v.thread_id, v.u, v.agent, v.text, v.att::jsonb, 'in_progress', v.turn_id, v.c, v.s
FROM {
    _unnest(
        "text text text text text text text float8 float8",
        "id, thread_id, u, agent, text, att, turn_id, c, s",
    )
}
ON CONFLICT (id) DO UPDATE SET
    status = 'in_progress', agent = excluded.agent, turn_id = excluded.turn_id,
    started_at = coalesce(interactions.started_at, excluded.started_at),
    finished_at = NULL, error = NULL
WHERE interactions.thread_id = excluded.thread_id
RETURNING id
"""
_SET_THREAD_STATUS: Final = f"""
UPDATE threads t SET status = CASE WHEN t.status = v.f THEN v.n ELSE t.status END,
                     updated_at = greatest(t.updated_at, v.at)
FROM {_unnest("text text float8 text", "f, n, at, id")}
WHERE t.id = v.id
"""
_SET_ITEM: Final = f"""
INSERT INTO items (thread_id, id, interaction_id, turn_id, seq, kind, status, text, command, cwd,
                   output, exit_code, changes, tool, arguments, agent, started_at, completed_at)
SELECT v.thread_id, v.id, {_V_OF}, v.turn_id, v.seq, v.kind, v.status, v.text, v.command,
       v.cwd, v.output, v.exit_code, v.changes::jsonb, v.tool, v.arguments, v.agent,
       v.started_at, v.completed_at
FROM {
    _unnest(
        "text text text text text text int8 text text text text text text int8 text text text text "
        "float8 float8",
        "thread_id, id, oi, ot, ou, turn_id, seq, kind, status, text, command, cwd, output, "
        "exit_code, changes, tool, arguments, agent, started_at, completed_at",
    )
}
ON CONFLICT (thread_id, id) DO UPDATE SET
    interaction_id = coalesce(excluded.interaction_id, items.interaction_id),
    turn_id = coalesce(excluded.turn_id, items.turn_id),
    kind = excluded.kind, status = excluded.status, text = excluded.text,
    command = excluded.command, cwd = excluded.cwd, output = excluded.output,
    exit_code = excluded.exit_code, changes = excluded.changes, tool = excluded.tool,
    arguments = excluded.arguments, agent = excluded.agent, completed_at = excluded.completed_at
"""
_SET_DELTAS: Final = f"""
INSERT INTO items (thread_id, id, interaction_id, turn_id, seq, kind, status, text, output,
                   started_at)
SELECT v.thread_id, v.id, {_V_OF}, v.turn_id, v.seq, v.kind, 'in_progress', v.text, v.output,
       v.at
FROM {
    _unnest(
        "text text text text text text int8 text text text float8",
        "thread_id, id, oi, ot, ou, turn_id, seq, kind, text, output, at",
    )
}
ON CONFLICT (thread_id, id) DO UPDATE SET
    text = items.text || excluded.text, output = items.output || excluded.output
"""
_SET_INTERACTION_DONE: Final = f"""
UPDATE interactions x SET status = v.status, response = v.response, error = v.error,
                          finished_at = v.at
FROM {
    _unnest(
        "text text text float8 text text text text",
        "status, response, error, at, oi, ot, ou, thread_id",
    )
}
WHERE x.id = {_V_OF} AND x.thread_id = v.thread_id
"""
_SET_SCOPES: Final = {
    "turn": "x.thread_id = v.thread_id AND x.turn_id = v.k",
    "interaction": "x.thread_id = v.thread_id AND x.interaction_id = v.k",
    "thread": "x.thread_id = v.thread_id AND v.k IS NOT NULL",
}
_SET_CLOSE_ITEMS: Final = {
    scope: f"UPDATE items x SET status = v.closed, completed_at = v.at "
    f"FROM {_unnest('text float8 text text', 'closed, at, thread_id, k')} "
    f"WHERE {where} AND x.status = 'in_progress'"
    for scope, where in _SET_SCOPES.items()
}
_SET_WITHDRAW: Final = {
    scope: f"UPDATE approvals x SET decision = 'withdrawn', decided_at = v.at "
    f"FROM {_unnest('float8 text text', 'at, thread_id, k')} "
    f"WHERE {where} AND x.decision IS NULL"
    for scope, where in _SET_SCOPES.items()
}
_SET_APPROVAL: Final = f"""
INSERT INTO approvals (thread_id, id, item_id, interaction_id, turn_id, kind, command, cwd, reason,
                       changes, requested_at, expires_at, tool, arguments)
SELECT v.thread_id, v.id, v.item_id, {_V_OF}, v.turn_id, v.kind, v.command, v.cwd, v.reason,
       v.changes::jsonb, v.at, v.expires_at, v.tool, v.arguments
FROM {
    _unnest(
        "text text text text text text text text text text text text float8 float8 text text",
        "thread_id, id, item_id, oi, ot, ou, turn_id, kind, command, cwd, reason, changes, at, "
        "expires_at, tool, arguments",
    )
}
ON CONFLICT (thread_id, id) DO UPDATE SET
    item_id = excluded.item_id, kind = excluded.kind, command = excluded.command,
    cwd = excluded.cwd, reason = excluded.reason, changes = excluded.changes,
    expires_at = excluded.expires_at, tool = excluded.tool, arguments = excluded.arguments
"""
_SET_RESOLVED: Final = f"""
UPDATE approvals x SET decision = v.decision, decided_by = v.who, decided_at = v.at
FROM {_unnest("text text float8 text text", "decision, who, at, thread_id, id")}
WHERE x.thread_id = v.thread_id AND x.id = v.id
RETURNING x.thread_id, x.id
"""
_SET_USAGE: Final = f"""
INSERT INTO token_usage (thread_id, turn_id, interaction_id, input_tokens, cached_input_tokens,
                         output_tokens, reasoning_tokens, total_tokens, at, model)
SELECT v.thread_id, v.turn_id, {_V_OF}, v.i, v.c, v.o, v.r, v.t, v.at, v.m
FROM {
    _unnest(
        "text text text text text int8 int8 int8 int8 int8 float8 text",
        "thread_id, turn_id, oi, ot, ou, i, c, o, r, t, at, m",
    )
}
"""
_SET: Final[dict[str, LiteralString]] = {
    _TURN_STARTED: _SET_TURN_STARTED,
    _THREAD_STATUS: _SET_THREAD_STATUS,
    _ITEM: _SET_ITEM,
    _DELTAS: _SET_DELTAS,
    _INTERACTION_DONE: _SET_INTERACTION_DONE,
    **{_CLOSE_ITEMS[scope]: _SET_CLOSE_ITEMS[scope] for scope in _SET_SCOPES},
    **{_WITHDRAW[scope]: _SET_WITHDRAW[scope] for scope in _SET_SCOPES},
    _APPROVAL: _SET_APPROVAL,
    _RESOLVED: _SET_RESOLVED,
    _USAGE: _SET_USAGE,
}
"""Each per-event statement's set-based form: the same parameters, one array per column, in the
same order, applied to many threads' rows in one statement."""


@dataclass(slots=True)
class _Op:
    """One statement of a batch: `index` is the event it applies; `check` says what a row
    count of 0 means (``"owner"``: the interaction is another thread's; ``"approval"``: an
    unknown approval, logged)."""

    index: int
    sql: LiteralString
    params: tuple[Any, ...]
    check: str = ""


def _check_key(event: ThreadEvent) -> tuple[str, ...]:
    """The row a checked statement returns for `event` (see `_SET_TURN_STARTED`,
    `_SET_RESOLVED`)."""
    if isinstance(event, TurnStarted):
        return (event.interaction.id,)
    assert isinstance(event, ApprovalResolved)
    return (event.thread_id, event.approval_id)


class _Invalid(Exception):
    """The batch broke a constraint; the transaction is rolled back, then diagnosed."""


@dataclass(slots=True)
class _Plan:
    ops: list[_Op] = field(default_factory=list)
    items: ItemRuns = field(default_factory=ItemRuns)


_Journal = tuple[list[str], list[int], list[str], list[float], list[str]]


def _rows(journal: _Journal, kept: list[int]) -> _Journal:
    """The journal's rows of the events at `kept`."""
    threads, numbers, types, ats, bodies = journal
    return (
        [threads[i] for i in kept],
        [numbers[i] for i in kept],
        [types[i] for i in kept],
        [ats[i] for i in kept],
        [bodies[i] for i in kept],
    )


class PostgresBackend:
    """`StoreBackend` on PostgreSQL; see the module documentation for how a batch is written."""

    name = "postgres"

    def __init__(
        self, dsn: str, *, connect_timeout: float = 10.0, fence: Fence | None = None
    ) -> None:
        self.dsn = dsn
        self.fence = fence
        self.location = safe_dsn(dsn)
        self.connect_timeout = connect_timeout
        self._connection: Connection | None = None
        self._seqs: dict[str, int] = {}
        self._threads: set[str] = set()
        self._migrated = False

    @classmethod
    async def open(
        cls, dsn: str, *, connect_timeout: float = 10.0, fence: Fence | None = None
    ) -> PostgresBackend:
        """Connect and migrate. A server that cannot be reached now is logged in one line
        (``store.unavailable``) and the backend is returned anyway: every call then raises
        `StoreUnavailable` until the server answers, and the first that reaches it migrates.
        So a daemon started before its database (or with a wrong DSN) keeps running and says
        why it stores nothing. `SchemaTooNew` if the database is a newer Piano's."""
        backend = cls(dsn, connect_timeout=connect_timeout, fence=fence)
        try:
            await backend._connect()
        except StoreUnavailable as exc:
            log.error("store.unavailable", backend="postgres", error=str(exc))
        return backend

    @classmethod
    def opener(
        cls, dsn: str, *, connect_timeout: float = 10.0, fence: Fence | None = None
    ) -> Opener:
        async def open_backend() -> StoreBackend:
            return await cls.open(dsn, connect_timeout=connect_timeout, fence=fence)

        return open_backend

    # -- the connection -------------------------------------------------------------------------

    async def _connect(self) -> Connection:
        connection = self._connection
        if connection is not None and not connection.closed and not connection.broken:
            return connection
        self._connection = None
        self._seqs.clear()  # another writer may have written meanwhile: ask again
        connection = await connect_pg(self.dsn, timeout=self.connect_timeout)
        if not self._migrated:
            try:
                found = await migrate_pg(connection, self.location)
            except BaseException:
                await connection.close()
                raise
            self._migrated = True
            log.info("store.opened", backend="postgres", location=self.location, found=found)
        self._connection = connection
        return connection

    async def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(psycopg.Error):
                await connection.close()

    async def _call(
        self, what: str, operation: Callable[[Connection], Awaitable[T]], *, retry: bool = True
    ) -> T:
        """`operation` on the connection. A connection that was open before the call and
        turns out dead (the server restarted since) is replaced and, if `retry` (the operation
        is idempotent), the operation runs once more on the new one; otherwise, or if that
        fails too, `StoreUnavailable`."""
        for attempt in (1, 2):
            stale = self._connection is not None
            connection = await self._connect()
            try:
                return await operation(connection)
            except psycopg.errors.DiskFull:
                raise StoreFull(self.location) from None
            except psycopg.OperationalError as exc:
                await self._drop()
                if retry and stale and attempt == 1:
                    log.info("store.reconnecting", location=self.location, error=pg_problem(exc))
                    continue
                raise StoreUnavailable(
                    f"{what}: PostgreSQL at {self.location} went away: {pg_problem(exc)}"
                ) from None
        raise AssertionError("unreachable")

    # -- thread events --------------------------------------------------------------------------

    async def write_batch(
        self, events: Sequence[ThreadEvent], seqs: Sequence[int] | None = None
    ) -> list[int]:
        return await self._call(
            "write_batch",
            lambda connection: self._write_batch(connection, events, seqs),
            retry=seqs is not None,  # numbered by the caller: writing it twice changes nothing
        )

    async def _write_batch(
        self, connection: Connection, events: Sequence[ThreadEvent], given: Sequence[int] | None
    ) -> list[int]:
        now = time.time()
        await self._check(connection, events)
        numbers, following = self._number(events, given)
        journal = self._journal_rows(events, numbers, now)
        fenced: list[str] = []
        kept = list(range(len(events)))
        try:
            async with connection.transaction():
                if self.fence is not None:
                    kept, fenced = await self._leased(connection, events, self.fence)
                    if len(kept) < len(events):
                        journal = _rows(journal, kept)
                        for index in set(range(len(events))) - set(kept):
                            numbers[index] = 0  # not written: the thread is another node's
                some = events if len(kept) == len(events) else [events[i] for i in kept]
                if some:
                    fresh = await self._insert_journal(connection, some, journal)
                    plan = self._plan(some, journal[1], journal[3], fresh)
                    await self._pipelined(connection, some, plan.ops)
        except _Invalid:
            some = [events[i] for i in kept]
            index, problem = await self._diagnose(connection, some, journal, journal[1])
            raise BatchRejected(kept[index], events[kept[index]], problem) from None
        if self.fence is not None and fenced:
            log.warning("store.fenced", threads=fenced, node=self.fence.node_id)
            for thread_id in fenced:  # another node writes it: ask its journal's end again
                following.pop(thread_id, None)
                self._seqs.pop(thread_id, None)
                self._threads.discard(thread_id)
            self.fence.fenced(fenced)
        self._seqs.update(following)
        return numbers

    @staticmethod
    async def _leased(
        connection: Connection, events: Sequence[ThreadEvent], fence: Fence
    ) -> tuple[list[int], list[str]]:
        """The indexes of the events whose thread this node holds at its granted epoch (the
        lease rows locked FOR SHARE until COMMIT, so no takeover slips in), and the threads
        fenced off."""
        threads = sorted({event.thread_id for event in events})
        cursor = await connection.execute(_LEASES, (threads,))
        allowed = {
            str(thread_id)
            for thread_id, node_id, lock_key, epoch in await cursor.fetchall()
            if fence.allows(str(thread_id), str(node_id), int(lock_key), int(epoch))
        }
        kept = [i for i, event in enumerate(events) if event.thread_id in allowed]
        return kept, [thread_id for thread_id in threads if thread_id not in allowed]

    async def _check(self, connection: Connection, events: Sequence[ThreadEvent]) -> None:
        """Thread events of known threads; learns the last seq of threads seen first."""
        unknown: dict[str, int] = {}
        for index, event in enumerate(events):
            if not isinstance(event, _EVENT_TYPES):
                raise BatchRejected(index, event, f"not a thread event: {type(event).__name__}")
            thread_id = event.thread_id
            if not isinstance(thread_id, str):
                raise BatchRejected(index, event, f"thread_id must be a str, not {thread_id!r}")
            if "\x00" in thread_id:
                raise BatchRejected(index, event, f"unknown thread {thread_id!r}")
            if thread_id not in self._threads:
                unknown.setdefault(thread_id, index)
        if not unknown:
            return
        cursor = await connection.execute(_THREADS, (list(unknown),))
        for thread_id, last in await cursor.fetchall():
            self._threads.add(thread_id)
            self._seqs.setdefault(thread_id, int(last))
            del unknown[thread_id]
        if unknown:
            thread_id, index = next(iter(unknown.items()))
            raise BatchRejected(index, events[index], f"unknown thread {thread_id!r}")

    def _number(
        self, events: Sequence[ThreadEvent], given: Sequence[int] | None
    ) -> tuple[list[int], dict[str, int]]:
        following: dict[str, int] = {}
        if given is None:
            numbers = []
            for event in events:
                thread_id = event.thread_id
                seq = following.get(thread_id)
                if seq is None:
                    seq = self._seqs.get(thread_id, 0)
                following[thread_id] = seq + 1
                numbers.append(seq + 1)
            return numbers, following
        if len(given) != len(events):
            raise BatchRejected(
                0, events[0] if events else None, f"{len(given)} seqs for {len(events)} events"
            )
        numbers = list(given)
        for index, (event, seq) in enumerate(zip(events, numbers, strict=True)):
            if type(seq) is not int or seq < 1 or seq >= 2**63:
                raise BatchRejected(index, event, f"seq must be a positive int, not {seq!r}")
            thread_id = event.thread_id
            last = following.get(thread_id, self._seqs.get(thread_id, 0))
            following[thread_id] = max(last, seq)
        return numbers, following

    @staticmethod
    def _journal_rows(
        events: Sequence[ThreadEvent], numbers: list[int], now: float
    ) -> tuple[list[str], list[int], list[str], list[float], list[str]]:
        threads, types, ats, bodies = [], [], [], []
        for index, event in enumerate(events):
            try:
                bodies.append(encode_event(event).decode())
            except (TypeError, OverflowError, msgspec.EncodeError) as exc:
                raise BatchRejected(index, event, f"{type(exc).__name__}: {exc}") from None
            threads.append(event.thread_id)
            types.append(cast(str, event.__struct_config__.tag))
            at = event.at or now
            if not isinstance(at, float | int) or at != at:
                raise BatchRejected(index, event, f"at must be a number, not {at!r}")
            ats.append(float(at))
        return threads, numbers, types, ats, bodies

    async def _insert_journal(
        self,
        connection: Connection,
        events: Sequence[ThreadEvent],
        journal: tuple[list[str], list[int], list[str], list[float], list[str]],
    ) -> list[bool] | None:
        """Journal the batch; which events were inserted now (None: all of them)."""
        cursor = await connection.execute(_JOURNAL, journal)
        inserted = {(str(t), int(s)) for t, s in await cursor.fetchall()}
        threads, numbers, _, _, bodies = journal
        if len(inserted) == len(events):
            return None
        missing = [
            i for i, key in enumerate(zip(threads, numbers, strict=True)) if key not in inserted
        ]
        cursor = await connection.execute(
            _JOURNALED, ([threads[i] for i in missing], [numbers[i] for i in missing])
        )
        there = {(str(t), int(s)): str(body) for t, s, body in await cursor.fetchall()}
        for index in missing:
            key = (threads[index], numbers[index])
            if there.get(key) != bodies[index]:
                raise SeqTaken(index, events[index], *key)
        fresh = [True] * len(events)
        for index in missing:
            fresh[index] = False
        return fresh

    # -- applying -------------------------------------------------------------------------------

    def _plan(
        self,
        events: Sequence[ThreadEvent],
        numbers: list[int],
        ats: list[float],
        fresh: list[bool] | None,
    ) -> _Plan:
        plan = _Plan()
        for index, event in enumerate(events):
            if fresh is not None and not fresh[index]:
                continue
            self._apply(plan, index, event, numbers[index], ats[index])
        plan.ops.extend(map(self._item_op, plan.items.close_all()))
        return plan

    def _apply(self, plan: _Plan, index: int, event: ThreadEvent, seq: int, at: float) -> None:
        thread_id = event.thread_id
        ops = plan.ops
        if isinstance(event, ItemStarted | ItemCompleted | ItemDelta):
            run = plan.items.add(index, event, seq, at)
            if run is not None:
                ops.append(self._item_op(run))
            return
        ops.extend(map(self._item_op, plan.items.close(thread_id)))
        of = (event.interaction_id, thread_id, event.turn_id)
        match event:
            case TurnStarted():
                interaction = event.interaction
                ops.append(
                    _Op(
                        index,
                        _TURN_STARTED,
                        (
                            interaction.id,
                            thread_id,
                            _opt(interaction.user),
                            event.agent,
                            _clean(interaction.text),
                            _encode_json(interaction.attachments).decode(),
                            event.turn_id,
                            at,
                            at,
                        ),
                        "owner",
                    )
                )
                ops.append(_Op(index, _THREAD_STATUS, ("idle", "running", at, thread_id)))
            case TurnCompleted():
                ops.append(
                    _Op(
                        index,
                        _INTERACTION_DONE,
                        (
                            event.status,
                            _clean(event.response),
                            _opt(event.error),
                            at,
                            *of,
                            thread_id,
                        ),
                    )
                )
                if event.turn_id is not None:
                    scope, by = "turn", event.turn_id
                elif event.interaction_id is not None:
                    scope, by = "interaction", event.interaction_id
                else:
                    scope, by = "thread", thread_id
                closed = "failed" if event.status == "failed" else "interrupted"
                ops.append(_Op(index, _CLOSE_ITEMS[scope], (closed, at, thread_id, by)))
                ops.append(_Op(index, _WITHDRAW[scope], (at, thread_id, by)))
                ops.append(_Op(index, _THREAD_STATUS, ("running", "idle", at, thread_id)))
            case ApprovalRequested():
                ops.append(
                    _Op(
                        index,
                        _APPROVAL,
                        (
                            thread_id,
                            event.approval_id,
                            event.item_id,
                            *of,
                            event.turn_id,
                            event.kind,
                            _opt(event.command),
                            _opt(event.cwd),
                            _opt(event.reason),
                            _changes(event.changes),
                            at,
                            event.expires_at,
                            _opt(event.tool),
                            _opt(event.arguments),
                        ),
                    )
                )
            case ApprovalResolved():
                ops.append(
                    _Op(
                        index,
                        _RESOLVED,
                        (event.decision, event.by, at, thread_id, event.approval_id),
                        "approval",
                    )
                )
            case TokenUsage():
                ops.append(
                    _Op(
                        index,
                        _USAGE,
                        (
                            thread_id,
                            event.turn_id,
                            *of,
                            event.input_tokens,
                            event.cached_input_tokens,
                            event.output_tokens,
                            event.reasoning_tokens,
                            event.total_tokens,
                            at,
                            event.model,
                        ),
                    )
                )
            case Notice():
                pass

    @staticmethod
    def _item_op(write: ItemWrite) -> _Op:
        """One run of an item's events (piano.store._coalesce) as one statement: the upsert
        with what was appended after it, or the deltas appended (a placeholder if unknown)."""
        first = write.first
        thread_id = first.thread_id
        of = (first.interaction_id, thread_id, first.turn_id)
        event = write.upsert
        if event is None:
            return _Op(
                write.index,
                _DELTAS,
                (
                    thread_id,
                    write.item_id,
                    *of,
                    first.turn_id,
                    write.seq,
                    write.placeholder_kind,
                    _clean(write.appended("text")),
                    _clean(write.appended("output")),
                    write.at,
                ),
            )
        item = event.item
        completed = isinstance(event, ItemCompleted)
        return _Op(
            write.blamed,
            _ITEM,
            (
                thread_id,
                item.id,
                *of,
                first.turn_id,
                write.seq,
                item.kind,
                write.status,
                _clean(write.content("text")),
                _opt(item.command),
                _opt(item.cwd),
                _clean(write.content("output")),
                item.exit_code,
                _changes(item.changes),
                _opt(item.tool),
                _opt(item.arguments),
                item.agent,
                write.at,
                write.upsert_at if completed else None,
            ),
        )

    async def _pipelined(
        self, connection: Connection, events: Sequence[ThreadEvent], ops: list[_Op]
    ) -> None:
        """Apply `ops` in waves: each wave takes the next statement of every thread (threads'
        rows are disjoint, so statements of different threads commute, and each thread's stay in
        order), and sends each kind of statement of the wave as one set-based statement
        (`_SET`). So a batch of 100 threads' events costs a few dozen statements, not one per
        event; all are sent in pipeline mode, without waiting for each other."""
        queues: dict[str, deque[_Op]] = {}
        for op in ops:
            queues.setdefault(events[op.index].thread_id, deque()).append(op)
        statements: list[tuple[list[_Op], LiteralString, Any]] = []
        while queues:
            wave: dict[str, list[_Op]] = {}
            for thread_id in list(queues):
                queue = queues[thread_id]
                op = queue.popleft()
                wave.setdefault(op.sql, []).append(op)
                if not queue:
                    del queues[thread_id]
            for sql, group in wave.items():
                if len(group) == 1:
                    statements.append((group, group[0].sql, group[0].params))
                else:
                    columns = [
                        list(column) for column in zip(*(o.params for o in group), strict=True)
                    ]
                    statements.append((group, _SET[sql], columns))
        checked: list[tuple[list[_Op], psycopg.AsyncCursor[TupleRow]]] = []
        try:
            async with connection.pipeline():
                plain = connection.cursor()
                for group, sql, params in statements:
                    if group[0].check:
                        cursor = connection.cursor()
                        await cursor.execute(sql, params)
                        checked.append((group, cursor))
                    else:
                        await plain.execute(sql, params)
        except (psycopg.IntegrityError, psycopg.DataError, psycopg.ProgrammingError) as exc:
            raise _Invalid(exc) from exc
        except (TypeError, OverflowError, ValueError) as exc:  # a value psycopg cannot send
            raise _Invalid(exc) from exc
        for group, cursor in checked:
            if len(group) == 1:
                done = [bool(cursor.rowcount)]
            else:
                returned = {tuple(row) for row in await cursor.fetchall()}
                done = [_check_key(events[op.index]) in returned for op in group]
            for op, ok in zip(group, done, strict=True):
                if not ok:
                    self._refused(op, events[op.index])

    @staticmethod
    def _refused(op: _Op, event: ThreadEvent) -> None:
        if op.check == "owner":
            assert isinstance(event, TurnStarted)
            raise BatchRejected(
                op.index, event, f"interaction {event.interaction.id!r} belongs to another thread"
            )
        assert isinstance(event, ApprovalResolved)
        log.warning("store.unknown_approval", thread=event.thread_id, approval=event.approval_id)

    async def _diagnose(
        self,
        connection: Connection,
        events: Sequence[ThreadEvent],
        journal: tuple[list[str], list[int], list[str], list[float], list[str]],
        numbers: list[int],
    ) -> tuple[int, str]:
        """Which event broke the batch: replayed one statement at a time, then rolled back."""
        try:
            async with connection.transaction(force_rollback=True):
                fresh = await self._insert_journal(connection, events, journal)
                plan = self._plan(events, numbers, journal[3], fresh)
                for op in plan.ops:
                    try:
                        async with connection.transaction():
                            await connection.execute(op.sql, op.params)
                    except (psycopg.IntegrityError, psycopg.DataError) as exc:
                        return op.index, await self._explain(connection, events[op.index], exc)
                    except (
                        psycopg.ProgrammingError,
                        TypeError,
                        OverflowError,
                        ValueError,
                    ) as exc:
                        return op.index, f"{type(exc).__name__}: {pg_problem(exc)}"
        except SeqTaken as exc:
            return exc.index, exc.problem
        return 0, "the batch broke a constraint that replaying it did not find again"

    @staticmethod
    async def _explain(connection: Connection, event: ThreadEvent, exc: BaseException) -> str:
        interaction_id = getattr(event, "interaction_id", None)
        if isinstance(exc, psycopg.errors.ForeignKeyViolation) and isinstance(interaction_id, str):
            cursor = await connection.execute(
                "SELECT 1 FROM interactions WHERE id = %s", (interaction_id,)
            )
            if await cursor.fetchone() is None:
                return f"unknown interaction {interaction_id!r}"
        return f"{type(exc).__name__}: {pg_problem(exc)}"

    async def last_seqs(self, thread_ids: Iterable[str]) -> dict[str, int]:
        wanted = list(thread_ids)

        async def query(connection: Connection) -> dict[str, int]:
            cursor = await connection.execute(_LAST_SEQS, (wanted,))
            return {str(t): int(s) for t, s in await cursor.fetchall()}

        found = await self._call("last_seqs", query)
        self._seqs.update(found)
        return found

    # -- everything else ------------------------------------------------------------------------

    async def _write(
        self, what: str, sql: LiteralString, params: tuple[Any, ...], *, retry: bool = True
    ) -> int:
        async def run(connection: Connection) -> int:
            try:
                cursor = await connection.execute(sql, params)
            except (psycopg.IntegrityError, psycopg.DataError) as exc:
                raise StoreError(f"{what}: {pg_problem(exc)} {params!r}") from None
            return cursor.rowcount

        return await self._call(what, run, retry=retry)

    async def upsert_surface(
        self, id: str, kind: str, *, name: str = "", config: Mapping[str, object] | None = None
    ) -> None:
        now = time.time()
        await self._write(
            "upsert_surface",
            """
            INSERT INTO surfaces (id, kind, name, config, created_at, updated_at)
            VALUES (%s, %s, %s, %s::jsonb, %s, %s)
            ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, name = excluded.name,
                config = excluded.config, updated_at = excluded.updated_at
            """,
            (id, kind, name, _json(config), now, now),
        )

    async def upsert_user(
        self, id: str, surface: str, external_id: str, *, display_name: str = "", role: str = "user"
    ) -> None:
        now = time.time()
        await self._write(
            "upsert_user",
            """
            INSERT INTO users (id, surface, external_id, display_name, role, created_at,
                               updated_at)
            VALUES (%s, %s, %s, %s, %s, %s, %s)
            ON CONFLICT (id) DO UPDATE SET surface = excluded.surface,
                external_id = excluded.external_id, display_name = excluded.display_name,
                role = excluded.role, updated_at = excluded.updated_at
            """,
            (id, surface, external_id, _clean(display_name), role, now, now),
        )

    async def upsert_agent(
        self,
        name: str,
        backend: str,
        *,
        model: str = "",
        config: Mapping[str, object] | None = None,
    ) -> None:
        now = time.time()
        await self._write(
            "upsert_agent",
            """
            INSERT INTO agents (name, backend, model, config, created_at, updated_at)
            VALUES (%s, %s, %s, %s::jsonb, %s, %s)
            ON CONFLICT (name) DO UPDATE SET backend = excluded.backend, model = excluded.model,
                config = excluded.config, updated_at = excluded.updated_at
            """,
            (name, backend, model, _json(config), now, now),
        )

    async def create_thread(
        self,
        id: str,
        surface: str,
        conversation: str,
        agent: str,
        *,
        codex_thread_id: str | None = None,
        at: float | None = None,
    ) -> None:
        when = at or time.time()
        await self._write(
            "create_thread",
            """
            INSERT INTO threads (id, surface, conversation, agent, codex_thread_id, created_at,
                                 updated_at)
            VALUES (%s, %s, %s, %s, %s, %s, %s)
            """,
            (id, surface, _clean(conversation), agent, codex_thread_id, when, when),
            retry=False,  # a retry after a COMMIT whose reply was lost would be a duplicate
        )

    async def set_codex_thread_id(self, thread_id: str, codex_thread_id: str | None) -> None:
        if not await self._write(
            "set_codex_thread_id",
            "UPDATE threads SET codex_thread_id = %s WHERE id = %s",
            (codex_thread_id, thread_id),
        ):
            raise StoreError(f"set_codex_thread_id: unknown thread {thread_id!r}")

    async def set_conversation_settings(
        self, surface: str, conversation: str, agent: str, model: str | None, effort: str | None
    ) -> None:
        await self._write(
            "set_conversation_settings",
            """
            INSERT INTO conversation_settings (surface, conversation, agent, model, effort,
                                               updated_at)
            VALUES (%s, %s, %s, %s, %s, %s)
            ON CONFLICT (surface, conversation, agent) DO UPDATE SET model = excluded.model,
                effort = excluded.effort, updated_at = excluded.updated_at
            """,
            (surface, conversation, agent, model, effort, time.time()),
        )

    async def set_thread_status(self, thread_id: str, status: ThreadStatus) -> None:
        if not await self._write(
            "set_thread_status",
            "UPDATE threads SET status = %s WHERE id = %s",
            (status, thread_id),
        ):
            raise StoreError(f"set_thread_status: unknown thread {thread_id!r}")

    async def record_interaction(
        self,
        thread_id: str,
        interaction: Interaction,
        *,
        agent: str | None = None,
        at: float | None = None,
    ) -> None:
        async def run(connection: Connection) -> Any:
            try:
                cursor = await connection.execute(
                    """
                    WITH added AS (
                        INSERT INTO interactions (id, thread_id, "user", agent, text,
                                                  attachments, created_at)
                        VALUES (%s, %s, %s, %s, %s, %s::jsonb, %s)
                        ON CONFLICT (id) DO NOTHING RETURNING thread_id
                    )
                    SELECT thread_id FROM added
                    UNION ALL SELECT thread_id FROM interactions WHERE id = %s
                    """,
                    (
                        interaction.id,
                        thread_id,
                        _opt(interaction.user),
                        agent,
                        _clean(interaction.text),
                        _encode_json(interaction.attachments).decode(),
                        at or time.time(),
                        interaction.id,
                    ),
                )
            except (psycopg.IntegrityError, psycopg.DataError) as exc:
                raise StoreError(f"record_interaction: {pg_problem(exc)}") from None
            return await cursor.fetchone()

        owner = await self._call("record_interaction", run)
        if owner is None or owner[0] != thread_id:
            raise StoreError(
                f"record_interaction: interaction {interaction.id!r} belongs to thread "
                f"{None if owner is None else owner[0]!r}, not {thread_id!r}"
            )

    async def execute(self, what: str, sql: LiteralString, params: tuple[Any, ...]) -> int:
        """One statement of a feature's own tables (the jail's audit), its own transaction:
        the first column of the first row it returns (``RETURNING id``), else its row count.
        `StoreError` for what the caller got wrong (a broken constraint)."""

        async def run(connection: Connection) -> int:
            try:
                cursor = await connection.execute(sql, params)
            except (psycopg.IntegrityError, psycopg.DataError) as exc:
                raise StoreError(f"{what}: {pg_problem(exc)}") from None
            if cursor.description:
                row = await cursor.fetchone()
                if row is not None:
                    return int(row[0])
            return cursor.rowcount

        return await self._call(what, run, retry=False)

    # -- lifecycle ------------------------------------------------------------------------------

    async def versions(self) -> dict[str, int]:
        """Each owner's schema version in the database."""
        return await self._call("versions", pg_versions)

    async def close(self) -> None:
        await self._drop()
        log.info("store.closed", backend="postgres", location=self.location)
