"""Where conversations' thread ids live: in memory (tests, scripts) or in the store (daemon).

A `ThreadDirectory` answers which thread a conversation has (creating it the first time), keeps
Codex's id for it so a restarted daemon resumes the same Codex thread, starts a fresh thread
for a conversation (``/new``), and records every user message as a pending interaction as soon
as it arrives, so a message queued behind a running turn survives a crash: `unfinished` reads
back what an actor that stopped left open (a turn it did not close, messages it did not start),
and the conversation's next actor closes or runs them (see `piano.agents._conversation`).
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from actors import ActorRef
from piano.config import day_start
from piano.store import (
    ConversationSettings,
    CreateThread,
    RecordInteraction,
    SetCodexThreadId,
    SetConversationSettings,
    SetThreadStatus,
    StoreLocation,
    StoreReader,
    UpsertAgent,
    UpsertSurface,
    open_reader,
)
from schemas.events import Interaction, Notice, ThreadEvent

if TYPE_CHECKING:
    from piano.config import AgentConfig, LimitsConfig

__all__ = [
    "MemoryDirectory",
    "StoreDirectory",
    "ThreadDirectory",
    "ThreadKey",
    "Unfinished",
]


@dataclass(frozen=True, slots=True)
class ThreadKey:
    """What a conversation is: where it happens and which agent answers."""

    surface: str
    conversation: str
    agent: str


@dataclass(frozen=True, slots=True)
class Unfinished:
    """What a conversation's previous actor left open: turns it started and did not close
    (each interaction with its turn id, if known), and accepted messages it never started,
    oldest first."""

    running: list[tuple[Interaction, str | None]]
    pending: list[Interaction]

    def __bool__(self) -> bool:
        return bool(self.running or self.pending)


class ThreadDirectory(Protocol):
    async def thread_for(self, key: ThreadKey) -> tuple[str, str | None]:
        """Piano's thread id for the conversation (created if new), and Codex's id if known."""
        ...

    async def remember_codex_thread(self, thread_id: str, codex_thread_id: str) -> None: ...

    async def new_thread(self, key: ThreadKey) -> str:
        """Archive the conversation's thread and start a fresh one."""
        ...

    async def record_interaction(self, thread_id: str, interaction: Interaction) -> None: ...

    async def unfinished(self, thread_id: str) -> Unfinished:
        """The thread's interactions left open, as they stand once every event its previous
        actors published has been stored."""
        ...

    async def unfinished_conversations(self) -> list[ThreadKey]:
        """The conversations (not archived) with an interaction left open."""
        ...

    async def settings(self, key: ThreadKey) -> ConversationSettings:
        """The model and effort the conversation chose (defaults if it chose none)."""
        ...

    async def refusal(self, interaction: Interaction) -> str | None:
        """Why `interaction` may not start a turn now (its user reached a daily limit: a
        sentence for them), or None."""
        ...

    async def remember_settings(self, key: ThreadKey, settings: ConversationSettings) -> None:
        """Keep the conversation's choice of model and effort (across /new and restarts)."""
        ...

    async def past_turns(self, thread_id: str) -> list[tuple[str, str]]:
        """The thread's finished interactions, oldest first: each message's text and the
        answer it got (empty if none), what a lost Codex thread is rebuilt from."""
        ...


class MemoryDirectory:
    """A `ThreadDirectory` kept in memory (tests and scripting)."""

    def __init__(self) -> None:
        self.threads: dict[ThreadKey, str] = {}
        self.codex: dict[str, str] = {}
        self.interactions: list[tuple[str, Interaction]] = []
        self.chosen: dict[ThreadKey, ConversationSettings] = {}
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

    async def unfinished(self, thread_id: str) -> Unfinished:
        """Nothing: a memory directory does not see events, and dies with its actors."""
        return Unfinished([], [])

    async def unfinished_conversations(self) -> list[ThreadKey]:
        return []

    async def settings(self, key: ThreadKey) -> ConversationSettings:
        return self.chosen.get(key, ConversationSettings())

    async def refusal(self, interaction: Interaction) -> str | None:
        """None: a memory directory keeps no usage, so it sets no limits."""
        return None

    async def remember_settings(self, key: ThreadKey, settings: ConversationSettings) -> None:
        self.chosen[key] = settings

    async def past_turns(self, thread_id: str) -> list[tuple[str, str]]:
        """Nothing: a memory directory does not see the answers."""
        return []


class StoreDirectory:
    """A `ThreadDirectory` in the store: writes through the store writer, found by `writer()`
    on every use (so a restarted writer is picked up); reads on its own connection, opened on
    first use (the writer creates and migrates the database when it starts).

    `limits` are the users' daily limits `refusal` applies (``[limits]``), counted in the
    store's interactions and token usage since 00:00 UTC.

    `settle(event)` publishes an event and returns once it is stored (the daemon's
    `piano.events.stored_publisher`): `unfinished` uses it as a barrier when the store shows
    something open, so that events a previous actor published and the pipeline has not yet
    written (a crash just before) do not make a finished turn look unfinished."""

    def __init__(
        self,
        writer: Callable[[], ActorRef | None],
        database: str | Path | StoreLocation,
        agents: Mapping[str, AgentConfig] | None = None,
        settle: Callable[[ThreadEvent], Awaitable[None]] | None = None,
        limits: LimitsConfig | None = None,
    ) -> None:
        self.writer = writer
        self.database = database
        self.agents = agents or {}
        self.settle = settle
        self.limits = limits
        self._reader: StoreReader | None = None

    @property
    def reader(self) -> StoreReader:
        if self._reader is None:
            self._reader = open_reader(self.database)
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

    async def unfinished(self, thread_id: str) -> Unfinished:
        records = await asyncio.to_thread(self.reader.unfinished, thread_id)
        if records and self.settle is not None:
            await self.settle(
                Notice(
                    thread_id=thread_id,
                    level="info",
                    message="Resuming this conversation after a restart.",
                    at=time.time(),
                )
            )
            records = await asyncio.to_thread(self.reader.unfinished, thread_id)
        running: list[tuple[Interaction, str | None]] = []
        pending: list[Interaction] = []
        for record in records:
            interaction = Interaction(
                id=record.id, text=record.text, user=record.user, attachments=record.attachments
            )
            if record.status == "in_progress":
                running.append((interaction, record.turn_id))
            else:
                pending.append(interaction)
        return Unfinished(running, pending)

    async def unfinished_conversations(self) -> list[ThreadKey]:
        threads = await asyncio.to_thread(self.reader.unfinished_threads)
        return [
            ThreadKey(thread.surface, thread.conversation, thread.agent)
            for thread in threads
            if thread.status != "archived"
        ]

    async def settings(self, key: ThreadKey) -> ConversationSettings:
        return await asyncio.to_thread(
            self.reader.conversation_settings, key.surface, key.conversation, key.agent
        )

    async def remember_settings(self, key: ThreadKey, settings: ConversationSettings) -> None:
        await self._write(
            SetConversationSettings(
                key.surface, key.conversation, key.agent, settings.model, settings.effort
            )
        )

    async def past_turns(self, thread_id: str) -> list[tuple[str, str]]:
        records = await asyncio.to_thread(self.reader.interactions, thread_id)
        return [
            (record.text, record.response)
            for record in records
            if record.status not in ("pending", "in_progress")
        ]

    async def refusal(self, interaction: Interaction) -> str | None:
        limits, user = self.limits, interaction.user
        if limits is None or user is None or not limits.limited(user):
            return None
        now = time.time()
        since = day_start(now)

        def today() -> tuple[int, int]:
            turns = self.reader.turns_by(since=since, user=user)
            used = self.reader.usage_by(since=since, user=user)
            return sum(row.turns for row in turns), sum(row.total_tokens for row in used)

        turns, tokens = await asyncio.to_thread(today)
        return limits.refusal(user, turns, tokens, now)
