"""Coalescing a batch's item events: what a run of one item's events does to its row, as one write.

Both backends apply a batch's events in one transaction; most of a batch is items being
streamed (started, deltas, completed), and each event applied on its own rewrites the item's
row. Within a batch, the events of one thread touching one item, with nothing else of that
thread in between but other items' events, are folded into one `ItemWrite`, and each backend
writes it as one statement. The journal still gets every event (same seq, same body); only the
tables are written fewer times, and they end **exactly** as if each event had been applied on its
own (tests/store/test_coalesce.py compares the two on both backends, for generated batches).

Why the fold is exact (an item's row under its two operations, as piano.store._apply documents
them): an *upsert* (``ItemStarted`` / ``ItemCompleted``) inserts the whole row, or, if it exists,
replaces every content column (kind, status, text, output, command, ...) and keeps its ``seq``
and ``started_at``, its interaction and turn taken as ``coalesce(new, old)``; an *append*
(``ItemDelta``) appends to one column, or inserts a placeholder row (kind guessed from the
stream) if the item is unknown. So:

- upsert then appends = the upsert with the appended text already in its columns;
- appends then upsert = the upsert alone (final content wins), inserted, if the row is new, with
  the ``seq`` and ``started_at`` of the run's first event, as the placeholder would have been;
- upsert then upsert = the last one, with the first one's ``seq`` and ``started_at``;
- appends then appends = each column's pieces concatenated (in event order, whatever stream).

Two conditions keep it exact. Every event of a run names the same interaction and turn (the
row's ``coalesce`` of them and the interaction found by turn are then the same for the whole
run); an event naming others closes the run first. And a run is closed (written) before the
thread's next event that is not an item event: a turn started changes which interaction a turn
names, a turn completed closes the turn's items, so they must see the item as it is by then.
Runs of different items touch different rows, so they commute.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal, TypeAlias

from schemas.events import ItemCompleted, ItemDelta, ItemStarted, ItemStatus

__all__ = ["DELTA_COLUMN", "DELTA_KIND", "ItemEvent", "ItemRuns", "ItemWrite"]

ItemEvent: TypeAlias = ItemStarted | ItemCompleted | ItemDelta
Column: TypeAlias = Literal["text", "output"]

DELTA_KIND: Final = {"text": "agent_message", "reasoning": "reasoning", "output": "command"}
"""The kind of an item first seen through a delta of this stream."""
DELTA_COLUMN: Final[dict[str, Column]] = {"text": "text", "reasoning": "text", "output": "output"}
"""The column a delta of this stream is appended to."""


@dataclass(slots=True)
class ItemWrite:
    """One item's run of events in a batch, as one write of its row.

    `upsert` is the run's last ``ItemStarted``/``ItemCompleted`` (None: deltas only), `text`
    and `output` what is appended after it; `index`, `seq` and `at` are the run's first event's
    (a new row's ``seq`` and ``started_at``), `first` gives the run's thread, interaction and
    turn, and the stream of a placeholder's first delta."""

    index: int
    seq: int
    at: float
    first: ItemEvent
    upsert: ItemStarted | ItemCompleted | None = None
    upsert_index: int = 0
    upsert_at: float = 0.0
    text: list[str] = field(default_factory=list)
    output: list[str] = field(default_factory=list)

    @property
    def item_id(self) -> str:
        first = self.first
        return first.item_id if isinstance(first, ItemDelta) else first.item.id

    @property
    def blamed(self) -> int:
        """The event to name if the write breaks a constraint: the upsert carries the content."""
        return self.upsert_index if self.upsert is not None else self.index

    @property
    def placeholder_kind(self) -> str:
        """The kind of the row a deltas-only run creates for an unknown item."""
        first = self.first
        assert isinstance(first, ItemDelta)
        return DELTA_KIND[first.stream]

    def appended(self, column: Column) -> str:
        return "".join(self.text if column == "text" else self.output)

    def content(self, column: Column) -> str:
        """The upsert's `column` with what was streamed after it appended."""
        assert self.upsert is not None
        item = self.upsert.item
        written, pieces = (item.text, self.text) if column == "text" else (item.output, self.output)
        return written + "".join(pieces) if pieces else written

    @property
    def status(self) -> ItemStatus:
        """The upsert's status: an item completed while still marked in progress is completed."""
        event = self.upsert
        assert event is not None
        status = event.item.status
        done = isinstance(event, ItemCompleted) and status == "in_progress"
        return "completed" if done else status

    def _add(self, index: int, event: ItemEvent, at: float) -> None:
        if isinstance(event, ItemDelta):
            (self.text if DELTA_COLUMN[event.stream] == "text" else self.output).append(event.delta)
            return
        self.upsert, self.upsert_index, self.upsert_at = event, index, at
        self.text.clear()
        self.output.clear()


class ItemRuns:
    """The open runs of one batch, per thread and item in order of first appearance.

    `add` an item event (it returns the run it had to close first, if the event names another
    interaction or turn than the item's open run); `close` a thread's runs before its next
    other event; `close_all` at the end of the batch. Closed runs are to be written in the
    order returned."""

    def __init__(self) -> None:
        self._open: dict[str, dict[str, ItemWrite]] = {}

    def add(self, index: int, event: ItemEvent, seq: int, at: float) -> ItemWrite | None:
        item_id = event.item_id if isinstance(event, ItemDelta) else event.item.id
        runs = self._open.setdefault(event.thread_id, {})
        run = runs.get(item_id)
        closed = None
        if run is not None and (
            run.first.interaction_id != event.interaction_id or run.first.turn_id != event.turn_id
        ):
            closed = runs.pop(item_id)
            run = None
        if run is None:
            run = runs[item_id] = ItemWrite(index, seq, at, event)
        run._add(index, event, at)
        return closed

    def close(self, thread_id: str) -> list[ItemWrite]:
        runs = self._open.pop(thread_id, None)
        return [] if runs is None else list(runs.values())

    def close_all(self) -> list[ItemWrite]:
        closed = [run for runs in self._open.values() for run in runs.values()]
        self._open.clear()
        return closed
