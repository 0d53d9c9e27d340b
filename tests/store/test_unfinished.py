"""What a conversation's next actor must recover: the store's unfinished interactions."""

from __future__ import annotations

from piano.store import StoreReader, Writer
from schemas.events import Interaction
from tests.store.conftest import T0, completed, simple_turn, started


def _record(writer: Writer, thread: str, interaction: str, at: float) -> None:
    writer.record_interaction(thread, Interaction(id=interaction, text=interaction), at=at)


def test_unfinished_lists_a_threads_running_and_pending_interactions_oldest_first(
    writer: Writer, reader: StoreReader
) -> None:
    _record(writer, "t1", "done", T0)
    writer.write_batch(simple_turn("t1", "done", "turn-1", "answer"))
    _record(writer, "t1", "running", T0 + 1)
    writer.write_batch([started("t1", "running", "turn-2")])
    _record(writer, "t1", "queued-b", T0 + 3)
    _record(writer, "t1", "queued-a", T0 + 2)
    _record(writer, "t2", "other", T0 + 4)
    found = [(i.id, i.status, i.turn_id) for i in reader.unfinished("t1")]
    assert found == [
        ("running", "in_progress", "turn-2"),
        ("queued-a", "pending", None),
        ("queued-b", "pending", None),
    ]


def test_unfinished_threads_are_those_with_an_interaction_left_open_oldest_first(
    writer: Writer, reader: StoreReader
) -> None:
    assert reader.unfinished_threads() == []
    _record(writer, "t2", "later", T0 + 5)
    _record(writer, "t1", "earlier", T0 + 1)
    assert [t.id for t in reader.unfinished_threads()] == ["t1", "t2"]
    writer.write_batch([started("t1", "earlier", "turn-1"), completed("t1", "turn-1")])
    assert [t.id for t in reader.unfinished_threads()] == ["t2"]
