"""`StoreWriter`: the actor that owns the database's one `Writer`.

```python
writer = await system.spawn(StoreWriter(path), name=STORE)  # SQLite; or StoreWriter(opener)
seqs = await writer.call(WriteBatch(events), timeout=30)    # returns once committed
await writer.call(CreateThread("t1", "telegram", "chat:42", "codex"))
```

The actor writes through a `StoreBackend` (piano.store._backend): a path opens the SQLite one,
an `Opener` any other. Each message is a small frozen dataclass naming one backend method; the
reply is that method's return value. Calls are handled one at a time in mailbox order, so
writes never interleave. A write the store refuses (`StoreError`: `BatchRejected`, an unknown
thread...) fails only that call and the actor goes on, as does a full disk (`StoreFull`: the
write was rolled back, and the next one succeeds once space returns); any other error (an I/O
error, a lost server) crashes the actor, and its supervisor opens the backend again (the
unfinished transaction is rolled back).

The SQLite writer runs on the event loop, not on a thread of its own: a small batch commits in
WAL mode without fsync in 30-160 us here (docs/BENCHMARKS.md), while handing each batch to a thread
cost milliseconds whenever the loop was busy, the thread waiting for the GIL. The price is that
a write blocks the loop for its duration (about 20 us per event, so up to ~10 ms for a full
batch of 500) and, if another process holds the database's write lock, for up to the busy
timeout (5 s).
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actors import NOREPLY, Actor, Caller
from piano.store._backend import Opener, SqliteBackend, StoreBackend
from piano.store._connection import StoreError
from piano.store._writer import ThreadStatus
from schemas.events import Interaction, ThreadEvent

__all__ = [
    "STORE",
    "CreateThread",
    "LastSeqs",
    "RecordInteraction",
    "SetCodexThreadId",
    "SetConversationSettings",
    "SetThreadStatus",
    "StoreWrite",
    "StoreWriter",
    "UpsertAgent",
    "UpsertSurface",
    "UpsertUser",
    "WriteBatch",
]

STORE = "store"
"""The name the daemon's `StoreWriter` registers under; everything that writes finds it by it."""


class StoreWrite:
    """Base of the messages `StoreWriter` answers: `apply(backend)` makes the write."""

    __slots__ = ()

    def apply(self, backend: StoreBackend) -> Awaitable[Any]:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class WriteBatch(StoreWrite):
    """Reply: the events' per-thread sequence numbers, once committed. With `seqs` (assigned
    once by the caller, before any retry) writing a committed batch again changes nothing. A
    seq of 0 is an event not written because a cluster fenced its thread off (`Fence`)."""

    events: Sequence[ThreadEvent]
    seqs: Sequence[int] | None = None

    def apply(self, backend: StoreBackend) -> Awaitable[list[int]]:
        return backend.write_batch(self.events, self.seqs)


@dataclass(frozen=True, slots=True)
class LastSeqs(StoreWrite):
    """Reply: each thread's last journaled seq (0 if none), as the writer sees it."""

    thread_ids: Sequence[str]

    def apply(self, backend: StoreBackend) -> Awaitable[dict[str, int]]:
        return backend.last_seqs(self.thread_ids)


@dataclass(frozen=True, slots=True)
class UpsertSurface(StoreWrite):
    id: str
    kind: str
    name: str = ""
    config: Mapping[str, object] | None = None

    def apply(self, backend: StoreBackend) -> Awaitable[None]:
        return backend.upsert_surface(self.id, self.kind, name=self.name, config=self.config)


@dataclass(frozen=True, slots=True)
class UpsertUser(StoreWrite):
    id: str
    surface: str
    external_id: str
    display_name: str = ""
    role: str = "user"

    def apply(self, backend: StoreBackend) -> Awaitable[None]:
        return backend.upsert_user(
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

    def apply(self, backend: StoreBackend) -> Awaitable[None]:
        return backend.upsert_agent(self.name, self.backend, model=self.model, config=self.config)


@dataclass(frozen=True, slots=True)
class CreateThread(StoreWrite):
    id: str
    surface: str
    conversation: str
    agent: str
    codex_thread_id: str | None = None
    at: float | None = None

    def apply(self, backend: StoreBackend) -> Awaitable[None]:
        return backend.create_thread(
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

    def apply(self, backend: StoreBackend) -> Awaitable[None]:
        return backend.set_codex_thread_id(self.thread_id, self.codex_thread_id)


@dataclass(frozen=True, slots=True)
class SetConversationSettings(StoreWrite):
    """Keep the model and effort conversation (surface, conversation, agent) chose."""

    surface: str
    conversation: str
    agent: str
    model: str | None
    effort: str | None

    def apply(self, backend: StoreBackend) -> Awaitable[None]:
        return backend.set_conversation_settings(
            self.surface, self.conversation, self.agent, self.model, self.effort
        )


@dataclass(frozen=True, slots=True)
class SetThreadStatus(StoreWrite):
    thread_id: str
    status: ThreadStatus

    def apply(self, backend: StoreBackend) -> Awaitable[None]:
        return backend.set_thread_status(self.thread_id, self.status)


@dataclass(frozen=True, slots=True)
class RecordInteraction(StoreWrite):
    thread_id: str
    interaction: Interaction
    agent: str | None = None
    at: float | None = None

    def apply(self, backend: StoreBackend) -> Awaitable[None]:
        return backend.record_interaction(
            self.thread_id, self.interaction, agent=self.agent, at=self.at
        )


_KINDS = {"sqlite": "SQLite", "postgres": "PostgreSQL"}


class StoreWriter(Actor):
    """Owns the database's `StoreBackend`: opened (and migrated) in `init`, closed in
    `terminate`. `target` is a SQLite file's path or an `Opener` of another backend."""

    def __init__(self, target: str | Path | Opener) -> None:
        if isinstance(target, str | Path):
            self.path = str(target)
            self.opener = SqliteBackend.opener(target)
        else:
            self.path = getattr(target, "location", "") or repr(target)
            self.opener = target
        self.backend: StoreBackend | None = None
        self.batches = 0
        self.events = 0
        self.refused = 0

    def describe(self) -> str:
        kind = "sqlite" if self.backend is None else self.backend.name
        return (
            f"{_KINDS.get(kind, kind)} writer {self.path}: {self.batches} batches "
            f"({self.events} events) committed, {self.refused} writes refused"
        )

    async def init(self) -> None:
        self.trap_exits = True  # so a supervisor's shutdown runs `terminate`, closing the database
        self.backend = await self.opener()
        self.path = self.backend.location

    async def handle_call(self, message: Any, caller: Caller) -> Any:
        if isinstance(message, StoreWrite) and self.backend is not None:
            try:
                result = await message.apply(self.backend)
            except StoreError as exc:
                self.refused += 1
                self.log.warning("store.write_refused", error=str(exc))
                caller.fail(exc)
                return NOREPLY
            if isinstance(message, WriteBatch):
                self.batches += 1
                self.events += len(message.events)
            return result
        return await super().handle_call(message, caller)

    async def terminate(self, reason: object) -> None:
        if self.backend is not None:
            backend, self.backend = self.backend, None
            await backend.close()
