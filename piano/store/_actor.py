"""`StoreWriter`: the actor that owns the database's one `Writer`.

```python
writer = await system.spawn(StoreWriter(path), name="store")
seqs = await writer.call(WriteBatch(events), timeout=30)    # returns once committed
await writer.call(CreateThread("t1", "telegram", "chat:42", "codex"))
```

Each message is a small frozen dataclass naming one `Writer` method; the reply is that method's
return value. Calls are handled one at a time in mailbox order, so writes never interleave. A
write the store refuses (`StoreError`: `BatchRejected`, an unknown thread...) fails only that
call and the actor goes on, as does a full disk (`StoreFull`: SQLite rolled the write back,
and the next one succeeds once space returns); any other error (an I/O error) crashes the
actor, and its supervisor reopens the database (SQLite rolls the unfinished transaction back).

The writer runs on the event loop, not on a thread of its own: a small batch commits in WAL
mode without fsync in 30-160 us here (docs/BENCHMARKS.md), while handing each batch to a thread
cost milliseconds whenever the loop was busy, the thread waiting for the GIL. The price is that
a write blocks the loop for its duration (about 20 us per event, so up to ~10 ms for a full
batch of 500) and, if another process holds the database's write lock, for up to the busy
timeout (5 s).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import apsw

from actors import NOREPLY, Actor, Caller
from piano.store._connection import StoreError, StoreFull
from piano.store._writer import ThreadStatus, Writer
from schemas.events import Interaction, ThreadEvent

__all__ = [
    "CreateThread",
    "RecordInteraction",
    "SetCodexThreadId",
    "SetThreadStatus",
    "StoreWrite",
    "StoreWriter",
    "UpsertAgent",
    "UpsertSurface",
    "UpsertUser",
    "WriteBatch",
]


class StoreWrite:
    """Base of the messages `StoreWriter` answers: `apply(writer)` makes the write."""

    __slots__ = ()

    def apply(self, writer: Writer) -> Any:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class WriteBatch(StoreWrite):
    """Reply: the events' per-thread sequence numbers, once committed."""

    events: Sequence[ThreadEvent]

    def apply(self, writer: Writer) -> list[int]:
        return writer.write_batch(self.events)


@dataclass(frozen=True, slots=True)
class UpsertSurface(StoreWrite):
    id: str
    kind: str
    name: str = ""
    config: Mapping[str, object] | None = None

    def apply(self, writer: Writer) -> None:
        writer.upsert_surface(self.id, self.kind, name=self.name, config=self.config)


@dataclass(frozen=True, slots=True)
class UpsertUser(StoreWrite):
    id: str
    surface: str
    external_id: str
    display_name: str = ""
    role: str = "user"

    def apply(self, writer: Writer) -> None:
        writer.upsert_user(
            self.id,
            self.surface,
            self.external_id,
            display_name=self.display_name,
            role=self.role,
        )


@dataclass(frozen=True, slots=True)
class UpsertAgent(StoreWrite):
    name: str
    backend: str
    model: str = ""
    config: Mapping[str, object] | None = None

    def apply(self, writer: Writer) -> None:
        writer.upsert_agent(self.name, self.backend, model=self.model, config=self.config)


@dataclass(frozen=True, slots=True)
class CreateThread(StoreWrite):
    id: str
    surface: str
    conversation: str
    agent: str
    codex_thread_id: str | None = None
    at: float | None = None

    def apply(self, writer: Writer) -> None:
        writer.create_thread(
            self.id,
            self.surface,
            self.conversation,
            self.agent,
            codex_thread_id=self.codex_thread_id,
            at=self.at,
        )


@dataclass(frozen=True, slots=True)
class SetCodexThreadId(StoreWrite):
    thread_id: str
    codex_thread_id: str | None

    def apply(self, writer: Writer) -> None:
        writer.set_codex_thread_id(self.thread_id, self.codex_thread_id)


@dataclass(frozen=True, slots=True)
class SetThreadStatus(StoreWrite):
    thread_id: str
    status: ThreadStatus

    def apply(self, writer: Writer) -> None:
        writer.set_thread_status(self.thread_id, self.status)


@dataclass(frozen=True, slots=True)
class RecordInteraction(StoreWrite):
    thread_id: str
    interaction: Interaction
    agent: str | None = None
    at: float | None = None

    def apply(self, writer: Writer) -> None:
        writer.record_interaction(self.thread_id, self.interaction, agent=self.agent, at=self.at)


class StoreWriter(Actor):
    """Owns the database's `Writer`: opened (and migrated) in `init`, closed in `terminate`."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self.writer: Writer | None = None
        self.batches = 0
        self.events = 0
        self.refused = 0

    def describe(self) -> str:
        return (
            f"SQLite writer {self.path}: {self.batches} batches ({self.events} events) "
            f"committed, {self.refused} writes refused"
        )

    def init(self) -> None:
        self.trap_exits = True  # so a supervisor's shutdown runs `terminate`, closing the database
        self.writer = Writer(self.path)

    def handle_call(self, message: Any, caller: Caller) -> Any:
        if isinstance(message, StoreWrite) and self.writer is not None:
            try:
                try:
                    result = message.apply(self.writer)
                except apsw.FullError as full:
                    raise StoreFull(self.path) from full
            except StoreError as exc:
                self.refused += 1
                self.log.warning("store.write_refused", error=str(exc))
                caller.fail(exc)
                return NOREPLY
            if isinstance(message, WriteBatch):
                self.batches += 1
                self.events += len(message.events)
            return result
        return super().handle_call(message, caller)

    def terminate(self, reason: object) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
