"""Idempotent by construction: a batch numbered by its caller, written again after it committed
(a retry after a lost reply), changes nothing; only events whose journal rows are inserted are
applied to the tables."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from piano.store import SeqTaken, Writer
from schemas.events import Item, Notice, ThreadEvent
from tests.store.conftest import delta, item_started, simple_turn, started

Dump = Callable[[], dict[str, list[tuple[object, ...]]]]


def turn_with_usage() -> list[ThreadEvent]:
    return [
        *simple_turn("t1", "i1", "turn1", "hello there"),
        *simple_turn("t2", "i2", "turn2", "bonjour"),
    ]


def test_writing_a_committed_batch_again_with_the_same_seqs_changes_no_row(
    writer: Writer, dump: Dump
) -> None:
    batch = turn_with_usage()
    seqs = writer.write_batch(batch)
    before = dump()

    again = writer.write_batch(batch, seqs)

    assert again == seqs
    assert dump() == before
    items = dict((row[1], row[7]) for row in before["items"])  # id -> text
    assert items["turn1-msg"] == "hello there"  # the deltas were not appended twice


def test_a_retried_batch_that_grew_applies_only_its_new_events(writer: Writer, dump: Dump) -> None:
    first: list[ThreadEvent] = [
        started("t1", "i1", "turn1"),
        item_started("t1", "turn1", Item(id="m", kind="agent_message")),
    ]
    seqs = writer.write_batch(first)
    grown = [*first, delta("t1", "turn1", "m", "once")]

    assert writer.write_batch(grown, [*seqs, seqs[-1] + 1]) == [1, 2, 3]

    rows = dump()
    assert [(row[1], row[2]) for row in rows["events"]] == [
        (1, "turn.started"),
        (2, "item.started"),
        (3, "item.delta"),
    ]
    assert [row[7] for row in rows["items"]] == ["once"]


def test_a_seq_another_event_holds_refuses_the_batch_with_seq_taken_and_writes_nothing(
    writer: Writer, dump: Dump
) -> None:
    writer.write_batch([Notice(thread_id="t1", level="info", message="first")])
    before = dump()
    other = Notice(thread_id="t1", level="info", message="another")

    with pytest.raises(SeqTaken) as raised:
        writer.write_batch([Notice(thread_id="t2", level="info", message="ok"), other], [1, 1])

    assert (raised.value.index, raised.value.thread_id, raised.value.seq) == (1, "t1", 1)
    assert dump() == before
    assert writer.last_seqs(["t1", "t2", "unknown"]) == {"t1": 1, "t2": 0, "unknown": 0}


def test_numbers_given_continue_the_writers_own_numbering(writer: Writer) -> None:
    writer.write_batch([Notice(thread_id="t1", level="info", message="a")], [5])

    assert writer.write_batch([Notice(thread_id="t1", level="info", message="b")]) == [6]


@pytest.mark.parametrize("backend_kind", ["sqlite"])  # a second SQLite connection
def test_a_writer_behind_the_file_still_applies_nothing_twice(
    writer: Writer, path: Path, dump: Dump
) -> None:
    writer.write_batch([started("t1", "i1", "turn1")])  # this writer now knows t1 ends at 1
    grows: list[ThreadEvent] = [
        item_started("t1", "turn1", Item(id="m", kind="agent_message")),
        delta("t1", "turn1", "m", "once"),
    ]
    with Writer(path) as other:  # another connection journals 2 and 3 behind its back
        other.write_batch(grows, [2, 3])
    before = dump()

    assert writer.write_batch(grows, [2, 3]) == [2, 3]

    assert dump() == before
    with pytest.raises(SeqTaken):
        writer.write_batch([Notice(thread_id="t1", level="info", message="not 3")], [3])
