"""Coalescing a batch's item events (piano.store._coalesce) leaves the tables exactly as applying
each event on its own would, on both backends, for generated streams of two threads' events;
and a batch re-sent after its reply was lost (whole, or grown) changes nothing more.

Each generated stream is written twice into the test's database, under two prefixes (the
threads' and interactions' ids carry it): once event by event (one batch per event: nothing to
coalesce), once as batches (a prefix of the stream, then the whole stream again with the same
seqs, as the pipeline retries, then once more). The rows of the two runs, prefix removed and
without the tables' own row ids, must be equal."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import apsw
import psycopg
from hypothesis import given, settings
from hypothesis import strategies as st

from piano.store import Writer
from schemas.events import (
    ApprovalRequested,
    ApprovalResolved,
    Interaction,
    Item,
    ItemCompleted,
    ItemDelta,
    ItemStarted,
    Notice,
    ThreadEvent,
    TokenUsage,
    TurnCompleted,
    TurnStarted,
)
from tests.store.conftest import T0

Step = tuple[Any, ...]
Rows = dict[str, list[tuple[object, ...]]]

_TEXT = st.text(alphabet="ab é\x00", max_size=4)
# (which of the thread's started interactions, 0 for none; turn id): mostly the same, so that
# runs of one item's events are long, sometimes another, so that they are cut.
_META = st.sampled_from([(1, "u1"), (1, "u1"), (1, "u1"), (0, "u1"), (0, None), (2, "u2")])
_ITEM = st.sampled_from(["x", "x", "y"])
_START = st.tuples(st.just("start"), _ITEM, st.sampled_from(["agent_message", "command"]), _META)
_DELTA = st.tuples(
    st.just("delta"), _ITEM, st.sampled_from(["text", "output", "reasoning"]), _TEXT, _META
)
_DONE = st.tuples(
    st.just("done"),
    _ITEM,
    st.sampled_from(["agent_message", "reasoning", "command"]),
    st.sampled_from(["in_progress", "completed", "failed"]),
    _TEXT,
    _TEXT,
    _META,
)
_STEP = st.one_of(  # item events weighted up: they are what is coalesced
    _START,
    _DELTA,
    _DELTA,
    _DELTA,
    _DONE,
    _DONE,
    st.tuples(st.just("turn"), st.integers(1, 2), st.sampled_from(["u1", "u2"]), _TEXT),
    st.tuples(st.just("end"), st.sampled_from(["completed", "failed", "interrupted"]), _META),
    st.tuples(st.just("usage"), st.integers(0, 9), _META),
    st.tuples(st.just("notice"), _META),
    st.tuples(st.just("ask"), st.sampled_from(["a1", "a2"]), _ITEM, _META),
    st.tuples(st.just("answer"), st.sampled_from(["a1", "a2", "a3"]), _META),
)
_STREAMS = st.lists(st.tuples(st.integers(0, 1), _STEP), min_size=1, max_size=40)
_IDENTITY = {"threads": "rowid", "interactions": "rowid", "token_usage": "id"}
_TABLES = ("events", "interactions", "items", "approvals", "token_usage", "threads")
_runs = itertools.count()


def build(steps: list[tuple[int, Step]], prefix: str) -> list[ThreadEvent]:
    """The events of `steps` for threads ``<prefix>0`` and ``<prefix>1``: only interactions a
    thread has started are named (an unknown one would reject the batch)."""
    started: dict[int, list[str]] = {0: [], 1: []}
    events: list[ThreadEvent] = []
    for n, (which, step) in enumerate(steps):
        thread = f"{prefix}{which}"
        kind, *args = step
        interaction_no, turn = args[-1] if kind != "turn" else (0, None)
        known = started[which]
        meta: dict[str, Any] = {
            "thread_id": thread,
            "turn_id": turn,
            "interaction_id": known[interaction_no - 1]
            if 0 < interaction_no <= len(known)
            else None,
            "at": T0 + n,
        }
        match kind:
            case "turn":
                number, turn_id, text = args
                interaction = f"{thread}-i{number}"
                if interaction not in known:
                    known.append(interaction)
                events.append(
                    TurnStarted(
                        thread_id=thread,
                        turn_id=turn_id,
                        interaction_id=interaction,
                        interaction=Interaction(id=interaction, text=text, user="alice"),
                        agent="codex",
                        at=T0 + n,
                    )
                )
            case "start":
                events.append(ItemStarted(item=Item(id=args[0], kind=args[1]), **meta))
            case "delta":
                events.append(ItemDelta(item_id=args[0], stream=args[1], delta=args[2], **meta))
            case "done":
                item_id, item_kind, status, text, output, _ = args
                item = Item(id=item_id, kind=item_kind, status=status, text=text, output=output)
                events.append(ItemCompleted(item=item, **meta))
            case "end":
                events.append(TurnCompleted(status=args[0], response="r", **meta))
            case "usage":
                events.append(TokenUsage(input_tokens=args[0], total_tokens=args[0], **meta))
            case "notice":
                events.append(Notice(level="info", message="m", **meta))
            case "ask":
                events.append(
                    ApprovalRequested(
                        approval_id=args[0], item_id=args[1], kind="command", command="ls", **meta
                    )
                )
            case "answer":
                events.append(ApprovalResolved(approval_id=args[0], decision="accept", **meta))
    return events


def numbered(events: list[ThreadEvent]) -> list[int]:
    last: dict[str, int] = {}
    for event in events:
        last[event.thread_id] = last.get(event.thread_id, 0) + 1
    seqs, counts = [], dict.fromkeys(last, 0)
    for event in events:
        counts[event.thread_id] += 1
        seqs.append(counts[event.thread_id])
    return seqs


def rows_of(backend_kind: str, path: Path, pg_database: str, prefix: str) -> Rows:
    """The rows of the prefix's threads, prefix removed, without the tables' own row ids,
    sorted."""

    def clean(columns: list[str], row: tuple[object, ...], table: str) -> tuple[object, ...]:
        return tuple(
            value.replace(prefix, "") if isinstance(value, str) else value
            for column, value in zip(columns, row, strict=True)
            if column != _IDENTITY.get(table)
        )

    found: Rows = {}
    where = {table: "thread_id" for table in _TABLES} | {"threads": "id"}
    if backend_kind == "sqlite":
        db = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
        try:
            for table in _TABLES:
                cursor = db.execute(
                    f"SELECT * FROM {table} WHERE {where[table]} LIKE ?", (prefix + "%",)
                )
                rows = cursor.fetchall()
                columns = [
                    r[0] for r in db.execute(f"SELECT name FROM pragma_table_info('{table}')")
                ]
                found[table] = sorted((clean(columns, r, table) for r in rows), key=repr)
        finally:
            db.close()
        return found
    with psycopg.connect(pg_database) as connection:
        for table in _TABLES:
            pg = connection.execute(
                f"SELECT * FROM {table} WHERE {where[table]} LIKE %s",
                (prefix + "%",),
            )
            names = [d.name for d in pg.description or []]
            found[table] = sorted((clean(names, r, table) for r in pg.fetchall()), key=repr)
    return found


def test_a_coalesced_batch_leaves_the_tables_as_applying_each_event_on_its_own_and_a_resent_batch_changes_nothing(  # noqa: E501
    writer: Writer, backend_kind: str, path: Path, pg_database: str
) -> None:
    def rows(prefix: str) -> Rows:
        return rows_of(backend_kind, path, pg_database, prefix)

    @settings(max_examples=150 if backend_kind == "sqlite" else 40, deadline=None)
    @given(steps=_STREAMS, cut=st.one_of(st.just(0), st.integers(0, 40)))
    def check(steps: list[tuple[int, Step]], cut: int) -> None:
        run = next(_runs)
        one, batched = f"e{run}-", f"b{run}-"
        for prefix in (one, batched):
            for thread in (f"{prefix}0", f"{prefix}1"):
                writer.create_thread(thread, "telegram", f"chat:{thread}", "codex", at=T0)

        alone = build(steps, one)
        for event, seq in zip(alone, numbered(alone), strict=True):
            writer.write_batch([event], [seq])

        stream = build(steps, batched)
        seqs = numbered(stream)
        cut = min(cut, len(stream))
        if cut:
            assert writer.write_batch(stream[:cut], seqs[:cut]) == seqs[:cut]
        assert writer.write_batch(stream, seqs) == seqs  # the batch re-sent, grown
        after = rows(batched)
        assert writer.write_batch(stream, seqs) == seqs  # and again: nothing changes

        assert after == rows(one)
        assert rows(batched) == after

    check()
