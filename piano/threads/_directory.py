"""Where conversations' thread ids live: in memory (tests, scripts) or in the store (daemon).

A `ThreadDirectory` answers which thread a conversation has (creating it the first time), keeps
Codex's id for it so a restarted daemon resumes the same Codex thread, starts a fresh thread
for a conversation (``/new``), and records every user message as a pending interaction as soon
as it arrives, so a message queued behind a running turn survives a crash.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from actors import ActorRef
from piano.store import (
    CreateThread,
    RecordInteraction,
    SetCodexThreadId,
    SetThreadStatus,
    StoreReader,
    UpsertAgent,
    UpsertSurface,
)
from schemas.events import Interaction

if TYPE_CHECKING:
    from piano.config import AgentConfig

__all__ = ["STORE", "MemoryDirectory", "StoreDirectory", "ThreadDirectory", "ThreadKey"]

STORE = "store"
"""The registered name of the daemon's store writer."""


@dataclass(frozen=True, slots=True)
class ThreadKey:
    """What a conversation is: where it happens and which agent answers."""

    surface: str
    conversation: str
    agent: str


class ThreadDirectory(Protocol):
    async def thread_for(self, key: ThreadKey) -> tuple[str, str | None]:
        """Piano's thread id for the conversation (created if new), and Codex's id if known."""
        ...

    async def remember_codex_thread(self, thread_id: str, codex_thread_id: str) -> None: ...

    async def new_thread(self, key: ThreadKey) -> str:
        """Archive the conversation's thread and start a fresh one."""
        ...

    async def record_interaction(self, thread_id: str, interaction: Interaction) -> None: ...


class MemoryDirectory:
    """A `ThreadDirectory` kept in memory (tests and scripting)."""

    def __init__(self) -> None:
        self.threads: dict[ThreadKey, str] = {}
        self.codex: dict[str, str] = {}
        self.interactions: list[tuple[str, Interaction]] = []
        self._ids = itertools.count(1)

    async def thread_for(self, key: ThreadKey) -> tuple[str, str | None]:
        if key not in self.threads:
            self.threads[key] = f"t{next(self._ids)}"
        thread_id = self.threads[key]
        return thread_id, self.codex.get(thread_id)

    async def remember_codex_thread(self, thread_id: str, codex_thread_id: str) -> None:
        self.codex[thread_id] = codex_thread_id

    async def new_thread(self, key: ThreadKey) -> str:
        self.threads[key] = f"t{next(self._ids)}"
        return self.threads[key]

    async def record_interaction(self, thread_id: str, interaction: Interaction) -> None:
        self.interactions.append((thread_id, interaction))


class StoreDirectory:
    """A `ThreadDirectory` in the store: writes through the store writer, found by `writer()`
    on every use (so a restarted writer is picked up); reads on its own connection, opened on
    first use (the writer creates and migrates the database when it starts)."""

    def __init__(
        self,
        writer: Callable[[], ActorRef | None],
        database: str | Path,
        agents: Mapping[str, AgentConfig] | None = None,
    ) -> None:
        self.writer = writer
        self.database = database
        self.agents = agents or {}
        self._reader: StoreReader | None = None

    @property
    def reader(self) -> StoreReader:
        if self._reader is None:
            self._reader = StoreReader(self.database)
        return self._reader

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    async def _write(self, message: object) -> object:
        writer = self.writer()
        if writer is None:
            raise RuntimeError("the store is not running")
        return await writer.call(message, timeout=30)

    async def thread_for(self, key: ThreadKey) -> tuple[str, str | None]:
        record = await asyncio.to_thread(
            self.reader.find_thread, key.surface, key.conversation, key.agent
        )
        if record is not None:
            return record.id, record.codex_thread_id
        return await self._create(key), None

    async def _create(self, key: ThreadKey) -> str:
        await self._write(UpsertSurface(key.surface, key.surface))
        agent = self.agents.get(key.agent)
        backend = agent.backend if agent is not None else "codex"
        model = (agent.model or "") if agent is not None else ""
        await self._write(UpsertAgent(key.agent, backend, model=model))
        thread_id = uuid.uuid4().hex[:16]
        await self._write(CreateThread(thread_id, key.surface, key.conversation, key.agent))
        return thread_id

    async def remember_codex_thread(self, thread_id: str, codex_thread_id: str) -> None:
        await self._write(SetCodexThreadId(thread_id, codex_thread_id))

    async def new_thread(self, key: ThreadKey) -> str:
        old = await asyncio.to_thread(
            self.reader.find_thread, key.surface, key.conversation, key.agent
        )
        if old is not None:
            await self._write(SetThreadStatus(old.id, "archived"))
        return await self._create(key)

    async def record_interaction(self, thread_id: str, interaction: Interaction) -> None:
        await self._write(RecordInteraction(thread_id, interaction))
