"""OpenAI agents wired for tests: the real openai SDK against `FakeOpenAI`, real tool actors,
a real store.

`agents(...)` starts, in a fresh ActorSystem, a store (`StoreWriter` on a temporary
database, `StoreDirectory`), the tool actors (web fetch, jails), and a router registered as
"threads" that starts `OpenAIBackend.conversation` for every key, as the daemon's `Threads`
will. Two agents: ``concierge`` (tools, may hand off to the archivist) and ``archivist``
(notes, may hand back). Every published event is collected (`events`) and written to the
store, in order, as the daemon's pipeline does.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import pytest

from actors import Actor, ActorRef, ActorSystem, Caller, Down, Registry
from piano.agents import OpenAIAgentConfig
from piano.agents.openai import OpenAIBackend, SqliteHistory
from piano.config import AgentConfig
from piano.mcp import TOOLS
from piano.store import STORE, StoreReader, StoreWriter, WriteBatch
from piano.threads import (
    THREADS,
    OpenConversation,
    StoreDirectory,
    ThreadKey,
    open_conversation,
    post_message,
)
from piano.tools import SqliteNotes, tool_specs
from schemas import events as ev
from supervisors import Supervisor
from tests.agents.fake_openai import FakeOpenAI
from tests.piano.conftest import Events
from tests.tools.conftest import tools_config

KEY_ENV = "PIANO_TEST_OPENAI_KEY"


class Router(Actor):
    """The daemon's `Threads`, reduced to what tests need: `OpenConversation` starts the key's
    OpenAI thread actor (not supervised) or returns the live one."""

    def __init__(self, make: Callable[[ThreadKey], Awaitable[Actor]]) -> None:
        self.make = make
        self.live: dict[ThreadKey, ActorRef] = {}

    async def handle_call(self, message: Any, caller: Caller) -> Any:
        match message:
            case OpenConversation(key=key):
                ref = self.live.get(key)
                if ref is None or not ref.alive:
                    ref = await self.spawn(await self.make(key))
                    self.live[key] = ref
                    self.monitor(ref)
                return ref
        return await super().handle_call(message, caller)

    def handle_info(self, message: Any) -> Any:
        if isinstance(message, Down):
            self.live = {k: r for k, r in self.live.items() if r != message.actor}
            return None
        return super().handle_info(message)


@dataclass
class World:
    system: ActorSystem
    fake: FakeOpenAI
    backend: OpenAIBackend
    events: Events
    directory: StoreDirectory
    threads: ActorRef
    db: Path
    subscriptions: Registry
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def key(self, conversation: str = "c1", agent: str = "concierge") -> ThreadKey:
        return ThreadKey("test", conversation, agent)

    async def say(
        self, text: str, *, conversation: str = "c1", user: str | None = "ada"
    ) -> tuple[str, str]:
        """Send a message to the concierge's conversation: (outcome, interaction id)."""
        interaction = ev.Interaction(id=f"i{next(self._ids)}", text=text, user=user)
        thread = await self.thread(conversation)
        outcome = await post_message(thread, interaction)
        return outcome, interaction.id

    async def thread(self, conversation: str = "c1") -> ActorRef:
        return await open_conversation(self.threads, self.key(conversation))

    async def done(self, interaction_id: str) -> ev.TurnCompleted:
        event: ev.TurnCompleted = await self.events.wait_for(
            lambda e: isinstance(e, ev.TurnCompleted) and e.interaction_id == interaction_id, 15
        )
        return event

    def of(self, interaction_id: str, kind: type[Any] | None = None) -> list[Any]:
        return [
            e
            for e in self.events.all
            if e.interaction_id == interaction_id and (kind is None or isinstance(e, kind))
        ]

    def completed(self, interaction_id: str, kind: str) -> list[ev.Item]:
        return [e.item for e in self.of(interaction_id, ev.ItemCompleted) if e.item.kind == kind]

    def reader(self) -> StoreReader:
        return StoreReader(self.db)


def agent_configs(
    fake: FakeOpenAI, api: str, **changes: Any
) -> tuple[dict[str, AgentConfig], dict[str, OpenAIAgentConfig]]:
    """The concierge and the archivist; `changes` apply to the concierge (``options`` to its
    openai options)."""
    options = changes.pop("options", {})
    common: dict[str, Any] = {"base_url": fake.base_url, "api": api, "api_key_env": KEY_ENV}
    retry: dict[str, Any] = {"max_retries": 2, "retry_backoff": 0.01}
    concierge = OpenAIAgentConfig(
        **common,
        **retry,
        max_rounds=4,
        tools=["web_fetch", "shell", "notes", "send_message"],
        handoffs=["archivist"],
    )
    archivist = OpenAIAgentConfig(**common, **retry, tools=["notes"], handoffs=["concierge"])
    agents = {
        "concierge": AgentConfig(
            **{"model": "fake-model", "instructions": "You are the concierge.", **changes}
        ),
        "archivist": AgentConfig(model="fake-model", instructions="You are the archivist."),
    }
    return agents, {
        "concierge": msgspec.structs.replace(concierge, **options),
        "archivist": archivist,
    }


Start = Callable[..., Awaitable[World]]


@pytest.fixture
async def agents(tmp_path: Path) -> AsyncIterator[Start]:
    """`await agents(api="responses", **concierge_changes)` starts a `World`."""
    async with AsyncExitStack() as stack:

        async def start(api: str = "responses", key: str = "sk-test", **changes: Any) -> World:
            db = tmp_path / "piano.db"
            notes, history = SqliteNotes(db), SqliteHistory(db)
            stack.callback(notes.close)  # runs after the actor system has stopped
            stack.callback(history.close)
            fake = await stack.enter_async_context(FakeOpenAI())
            system = await stack.enter_async_context(ActorSystem())
            writer = await system.spawn(StoreWriter(db), name=STORE)
            directory = StoreDirectory(lambda: system.whereis(STORE), db)
            stack.callback(directory.close)
            tools = tools_config(tmp_path)
            jail = msgspec.structs.replace(tools.jail, store="")
            tools = msgspec.structs.replace(tools, jail=jail)
            await system.spawn(Supervisor(tool_specs(tools)), name=TOOLS)
            agents_, options = agent_configs(fake, api, **changes)
            backend = OpenAIBackend(
                agents_, options, tools=tools, notes=notes, history=history,
                environ={KEY_ENV: key},
            )  # fmt: skip
            assert backend.problems() == []
            events = Events()
            subscriptions = Registry(keys="duplicate")

            async def publish(batch: list[ev.ThreadEvent]) -> None:
                await writer.call(WriteBatch(batch), timeout=10)
                await events(batch)
                for event in batch:
                    for ref, _ in subscriptions.lookup(event.thread_id):
                        ref.send(event)

            async def make(key: ThreadKey) -> Actor:
                thread_id, _ = await directory.thread_for(key)
                return backend.conversation(
                    thread_id, key, agents_[key.agent], publish=publish, directory=directory
                )

            threads = await system.spawn(Router(make), name=THREADS)
            return World(system, fake, backend, events, directory, threads, db, subscriptions)

        yield start
