"""Stage slots: each stage's queue of work and its progress, owned by the pipeline.

A stage actor (processor, batcher, batch processor) keeps nothing that matters in itself: its
work and its progress live in its slot, which the pipeline owns (as an ETS table outlives the
process that writes to it). Work is appended to the slot and the actor is woken with one cast
per item. When the actor dies, its slot keeps what it had not finished; the restarted actor
attaches to the slot, settles the item it was in the middle of (failed, or retried in strict
mode) and carries on with the rest in order. So a restart loses no accepted message.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from actors import ActorRef
from actors.pipeline._statistics import Counters

if TYPE_CHECKING:
    from actors.pipeline._message import Message
    from actors.pipeline._options import Batchers, BatchInfo

__all__ = ["PARKED", "BatchSlot", "BatcherSlot", "Chunk", "ProcessorSlot", "Run", "Slot"]

W = TypeVar("W")

PARKED = -1
"""`Message._index` of a message set aside for a strict-mode retry of its key."""

Chunk = tuple[float, list["Message"]]
"""Work for a processor: (accepted at, messages)."""

Run = tuple[Any, "int | None", list["Message"]]
"""Work for a batcher: (batch key, batch partition, consecutive messages of that batch)."""


class Slot(Generic[W]):
    """The queue of one stage and the actor currently serving it."""

    __slots__ = ("attached", "counters", "index", "queue", "ref")

    def __init__(self, index: int) -> None:
        self.index = index
        self.queue: deque[W] = deque()
        self.ref: ActorRef | None = None
        self.counters = Counters()
        self.attached = 0

    def send(self, work: W) -> None:
        """Queue work and wake the stage (a cast to a dead actor is dropped; the work stays)."""
        self.queue.append(work)
        ref = self.ref
        if ref is not None:
            ref.cast(None)

    def attach(self, ref: ActorRef) -> None:
        """A (re)started actor takes the slot over: one wake-up per queued item."""
        if self.attached:
            self.counters.restarts += 1
        self.attached += 1
        self.ref = ref
        for _ in range(len(self.queue)):
            ref.cast(None)


class ProcessorSlot(Slot[Chunk]):
    """A processor's chunks, its position in the first one, and its unsettled outcomes."""

    __slots__ = ("failed", "ok", "out", "parked", "pos", "running")

    def __init__(self, index: int) -> None:
        super().__init__(index)
        self.pos = 0
        self.running: tuple[Message, bool] | None = None
        """The message whose async handler is running, and whether it came from a chunk
        (True) or from the parked retries (False)."""
        self.ok: list[Message] = []
        self.failed: list[Message] = []
        self.out: dict[str, list[Run]] = {}
        self.parked: dict[Any, deque[Message]] = {}
        """Strict mode: keys waiting for a retry; the head of each deque is being retried."""


class BatcherSlot(Slot[list[Run]]):
    """A batcher's inbox (runs of messages from processors) and its open batches."""

    __slots__ = ("buffers", "name", "next_processor", "spec")

    def __init__(self, name: str, spec: Batchers) -> None:
        super().__init__(0)
        self.name = name
        self.spec = spec
        self.buffers: dict[tuple[Any, int | None], tuple[float, list[Message]]] = {}
        self.next_processor = 0


class BatchSlot(Slot[tuple["BatchInfo", list["Message"], float]]):
    """A batch processor's batches; `running` while `handle_batch` is awaited; `blocked` while
    the head batch waits for a strict-mode retry."""

    __slots__ = ("attempts", "blocked", "running")

    def __init__(self, index: int) -> None:
        super().__init__(index)
        self.running = False
        self.blocked = False
        self.attempts = 0
