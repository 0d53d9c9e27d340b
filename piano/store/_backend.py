"""`StoreBackend`: what the `StoreWriter` needs from a database, and SQLite's implementation.

The writer actor does not know which database it writes to. It opens a backend (an
`Opener`, awaited in the actor's `init`), hands every write message to it one at a time, and
closes it in `terminate`. A backend promises:

- **one transaction per call**: `write_batch` applies a whole batch atomically and returns only
  after COMMIT; the other writes are each their own transaction;
- **journal order and idempotence**: events are journaled under (thread_id, seq), unique; with
  `seqs` given, a batch already committed changes nothing when written again (only the events
  whose journal rows were inserted are applied), and a (thread_id, seq) holding another event
  refuses the batch with `SeqTaken`; `last_seqs` says where each thread's journal ends;
- **errors**: what the caller got wrong raises a `StoreError` (`BatchRejected` naming the
  event, `SeqTaken`, `StoreFull` for a full disk; nothing of the call written) and the backend
  stays usable; anything else (an I/O error, a lost server) is raised as is, and the writer
  crashes so that its supervisor opens a fresh backend;
- **close** releases the connection; a transaction in flight is rolled back.

Queries are a separate, read-only side (`StoreReader` for SQLite) that never blocks the writer.

`SqliteBackend` is the embedded default: the process's one write connection (`Writer.open`)
on a WAL database file, which the owners of the other tables in the file share. Its methods
never suspend: a SQLite batch commits in microseconds without fsync (synchronous=NORMAL),
cheaper than a hop to a thread. Another backend (PostgreSQL) is a second class with the same
methods and its own `Opener`: ``StoreWriter(opener)``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Protocol, TypeAlias, runtime_checkable

from piano.store._connection import StoreError
from piano.store._writer import ThreadStatus, Writer
from schemas.events import Interaction, ThreadEvent

__all__ = ["Opener", "SqliteBackend", "StoreBackend", "sqlite_writer"]


@runtime_checkable
class StoreBackend(Protocol):
    """The database behind `StoreWriter`; see the module documentation for the contract."""

    @property
    def name(self) -> str:
        """The backend's kind: ``"sqlite"``, ``"postgres"``."""
        ...

    @property
    def location(self) -> str:
        """Where it writes, for logs and the console (a path; a DSN without its password)."""
        ...

    async def write_batch(
        self, events: Sequence[ThreadEvent], seqs: Sequence[int] | None = None
    ) -> list[int]:
        """Journal and apply `events` in one transaction; their seqs, once committed."""
        ...

    async def last_seqs(self, thread_ids: Iterable[str]) -> dict[str, int]:
        """Each thread's last journaled seq (0 if none)."""
        ...

    async def upsert_surface(
        self, id: str, kind: str, *, name: str = "", config: Mapping[str, object] | None = None
    ) -> None: ...

    async def upsert_user(
        self, id: str, surface: str, external_id: str, *, display_name: str = "", role: str = "user"
    ) -> None: ...

    async def upsert_agent(
        self,
        name: str,
        backend: str,
        *,
        model: str = "",
        config: Mapping[str, object] | None = None,
    ) -> None: ...

    async def create_thread(
        self,
        id: str,
        surface: str,
        conversation: str,
        agent: str,
        *,
        codex_thread_id: str | None = None,
        at: float | None = None,
    ) -> None: ...

    async def set_codex_thread_id(self, thread_id: str, codex_thread_id: str | None) -> None: ...

    async def set_thread_status(self, thread_id: str, status: ThreadStatus) -> None: ...

    async def set_conversation_settings(
        self, surface: str, conversation: str, agent: str, model: str | None, effort: str | None
    ) -> None: ...

    async def record_interaction(
        self,
        thread_id: str,
        interaction: Interaction,
        *,
        agent: str | None = None,
        at: float | None = None,
    ) -> None: ...

    async def close(self) -> None: ...


Opener: TypeAlias = Callable[[], Awaitable[StoreBackend]]
"""Opens (and migrates) a backend; the `StoreWriter` awaits it in `init`, again after a crash."""


class SqliteBackend:
    """`StoreBackend` on a SQLite file: the `Writer` for `path`, created and migrated if
    missing."""

    name = "sqlite"

    def __init__(self, writer: Writer) -> None:
        self.writer = writer

    @classmethod
    async def open(cls, path: str | Path) -> SqliteBackend:
        return cls(Writer.open(path))

    @classmethod
    def opener(cls, path: str | Path) -> Opener:
        async def open_backend() -> StoreBackend:
            return await cls.open(path)

        return open_backend

    @property
    def location(self) -> str:
        return self.writer.path

    async def write_batch(
        self, events: Sequence[ThreadEvent], seqs: Sequence[int] | None = None
    ) -> list[int]:
        return self.writer.write_batch(events, seqs)

    async def last_seqs(self, thread_ids: Iterable[str]) -> dict[str, int]:
        return self.writer.last_seqs(thread_ids)

    async def upsert_surface(
        self, id: str, kind: str, *, name: str = "", config: Mapping[str, object] | None = None
    ) -> None:
        self.writer.upsert_surface(id, kind, name=name, config=config)

    async def upsert_user(
        self, id: str, surface: str, external_id: str, *, display_name: str = "", role: str = "user"
    ) -> None:
        self.writer.upsert_user(id, surface, external_id, display_name=display_name, role=role)

    async def upsert_agent(
        self,
        name: str,
        backend: str,
        *,
        model: str = "",
        config: Mapping[str, object] | None = None,
    ) -> None:
        self.writer.upsert_agent(name, backend, model=model, config=config)

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
        self.writer.create_thread(
            id, surface, conversation, agent, codex_thread_id=codex_thread_id, at=at
        )

    async def set_codex_thread_id(self, thread_id: str, codex_thread_id: str | None) -> None:
        self.writer.set_codex_thread_id(thread_id, codex_thread_id)

    async def set_thread_status(self, thread_id: str, status: ThreadStatus) -> None:
        self.writer.set_thread_status(thread_id, status)

    async def set_conversation_settings(
        self, surface: str, conversation: str, agent: str, model: str | None, effort: str | None
    ) -> None:
        self.writer.set_conversation_settings(surface, conversation, agent, model, effort)

    async def record_interaction(
        self,
        thread_id: str,
        interaction: Interaction,
        *,
        agent: str | None = None,
        at: float | None = None,
    ) -> None:
        self.writer.record_interaction(thread_id, interaction, agent=agent, at=at)

    async def close(self) -> None:
        self.writer.close()


def sqlite_writer(backend: StoreBackend) -> Writer:
    """The SQLite `Writer` behind `backend`, for a feature's own tables written through the
    store's actor (the jail's audit); `StoreError` if the store is another backend."""
    if isinstance(backend, SqliteBackend):
        return backend.writer
    raise StoreError(f"this write needs the SQLite store, not the {backend.name} one")
