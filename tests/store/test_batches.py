"""Batches: one transaction each, all or nothing, per-thread order kept across batches."""

from __future__ import annotations

import re

import pytest

from piano.store import BatchRejected, StoreError, StoreReader, Writer
from schemas.events import Interaction, Item, ItemCompleted, Notice, ThreadEvent, TurnCompleted
from tests.store.conftest import item_completed, item_started, simple_turn, started


def journal_size(reader: StoreReader, *threads: str) -> int:
    return sum(reader.last_seq(thread) for thread in threads)


def test_items_keep_their_per_thread_order_across_interleaved_batches(
    writer: Writer, reader: StoreReader
) -> None:
    events: list[ThreadEvent] = [started("t1", "i1", "turn1"), started("t2", "i2", "turn2")]
    for n in range(30):
        for thread, turn in (("t1", "turn1"), ("t2", "turn2")):
            events.append(item_started(thread, turn, Item(id=f"{thread}-{n}", kind="command")))
    batches = [events[i : i + 7] for i in range(0, len(events), 7)]

    seqs = [writer.write_batch(batch) for batch in batches]

    assert [s for batch in seqs for s in batch] == [
        n for pair in zip(range(1, 32), range(1, 32), strict=True) for n in pair
    ]
    for thread in ("t1", "t2"):
        items = reader.thread_items(thread)
        assert [i.id for i in items] == [f"{thread}-{n}" for n in range(30)]
        assert [i.seq for i in items] == list(range(2, 32))
        assert [e.seq for e in reader.events_since(thread)] == list(range(1, 32))


def test_an_invalid_event_rolls_the_whole_batch_back_and_names_itself(
    writer: Writer, reader: StoreReader
) -> None:
    writer.write_batch([started("t1", "i1", "turn1")])
    bad = TurnCompleted(thread_id="t2", turn_id="turn2", status="exploded")  # type: ignore[arg-type]
    batch: list[ThreadEvent] = [
        item_started("t1", "turn1", Item(id="c1", kind="command")),
        started("t2", "i2", "turn2"),
        Notice(thread_id="t2", level="info", message="before the bad one"),
        bad,
        Notice(thread_id="t1", level="info", message="after it"),
    ]

    with pytest.raises(BatchRejected) as raised:
        writer.write_batch(batch)

    assert raised.value.index == 3
    assert raised.value.event is bad
    assert "batch rejected at event 3 (TurnCompleted, thread 't2')" in str(raised.value)
    assert re.search("CHECK constraint failed|violates check constraint", str(raised.value))
    assert reader.items("i1") == []
    assert reader.interaction("i2") is None
    assert (reader.last_seq("t1"), reader.last_seq("t2")) == (1, 0)


@pytest.mark.parametrize(
    ("event", "problem"),
    [
        (Notice(thread_id="nope", level="info", message="x"), "unknown thread 'nope'"),
        (
            ItemCompleted(
                thread_id="t1", interaction_id="missing", item=Item(id="c", kind="command")
            ),
            "unknown interaction 'missing'",
        ),
        ("not an event", "not a thread event: str"),
        (Notice(thread_id="t1", level="info", message=object()), "TypeError"),  # type: ignore[arg-type]
        (started("t2", "i1", "turn9"), "interaction 'i1' belongs to another thread"),
    ],
)
def test_a_rejected_batch_says_what_was_wrong_and_the_writer_keeps_working(
    writer: Writer, reader: StoreReader, event: ThreadEvent, problem: str
) -> None:
    writer.write_batch([started("t1", "i1", "turn1")])

    with pytest.raises(BatchRejected, match=problem):
        writer.write_batch([Notice(thread_id="t1", level="info", message="lost"), event])
    seqs = writer.write_batch(simple_turn("t1", "i3", "turn3", "still here"))

    assert seqs == [2, 3, 4, 5, 6, 7]  # the rejected batch's numbers were not used up
    interaction = reader.interaction("i3")
    assert interaction is not None
    assert interaction.response == "still here"


def test_an_empty_batch_commits_nothing(writer: Writer, reader: StoreReader) -> None:
    assert writer.write_batch([]) == []
    assert journal_size(reader, "t1", "t2") == 0


def test_writes_outside_events_refuse_unknown_references_with_a_store_error(
    writer: Writer, reader: StoreReader
) -> None:
    with pytest.raises(StoreError, match="create_thread"):
        writer.create_thread("t3", "telegram", "chat:3", "no-such-agent")
    with pytest.raises(StoreError, match="unknown thread 'nope'"):
        writer.set_codex_thread_id("nope", "c")
    with pytest.raises(StoreError, match="upsert_user"):
        writer.upsert_user("u1", "no-such-surface", "42")
    writer.record_interaction("t1", Interaction(id="i1", text="hi"))
    with pytest.raises(StoreError, match="belongs to thread 't1', not 't2'"):
        writer.record_interaction("t2", Interaction(id="i1", text="hi"))

    writer.record_interaction("t1", Interaction(id="i1", text="hi"))  # again: no change
    writer.upsert_user("u1", "telegram", "42", display_name="Alice", role="admin")
    writer.upsert_user("u1", "telegram", "42", display_name="Alice B.", role="admin")

    assert reader.thread("t3") is None
    assert [i.id for i in reader.interactions("t1")] == ["i1"]
    user = reader.user("u1")
    assert user is not None
    assert (user.display_name, user.role) == ("Alice B.", "admin")
    surface = reader.surface("telegram")
    assert surface is not None
    assert surface.name == "Telegram"


def test_a_completed_item_without_a_start_is_stored_completed(
    writer: Writer, reader: StoreReader
) -> None:
    writer.write_batch(
        [
            started("t1", "i1", "turn1"),
            item_completed("t1", "turn1", Item(id="w", kind="web_search", text="q")),
        ]
    )

    (item,) = reader.items("i1")
    assert (item.kind, item.status, item.text) == ("web_search", "completed", "q")
