"""A Piano core wired for tests: the real codex binary against the fake model provider.

`core` starts, in a fresh ActorSystem, the Codex client (registered as "codex"), the thread
supervisor and the `Threads` router, with every published thread event collected in `events`.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from actors import ActorRef, ActorSystem, Registry
from piano.agents import Publish
from piano.agents.codex import CodexBackend, RolloutStore
from piano.codex import CODEX, CodexClient
from piano.config import AgentConfig, CodexConfig, Config, DaemonConfig, ProviderConfig
from piano.surfaces import deliver
from piano.threads import (
    THREAD_SUPERVISOR,
    THREADS,
    MemoryDirectory,
    ThreadDirectory,
    ThreadKey,
    Threads,
    open_conversation,
    send_message,
)
from schemas import events as ev
from supervisors import Backoff, ChildSpec, DynamicSupervisor, Supervisor
from tests.fakes.responses_provider import CodexDirs, FakeResponsesProvider


class Events:
    """Every published event, with a way to wait for one."""

    def __init__(self) -> None:
        self.all: list[ev.ThreadEvent] = []
        self._changed = asyncio.Event()

    async def __call__(self, events: list[ev.ThreadEvent]) -> None:
        self.all.extend(events)
        self._changed.set()

    def of(self, thread_id: str, kind: type[Any] | None = None) -> list[Any]:
        return [
            e
            for e in self.all
            if e.thread_id == thread_id and (kind is None or isinstance(e, kind))
        ]

    async def wait_for(
        self, predicate: Callable[[ev.ThreadEvent], bool], timeout: float = 20
    ) -> Any:
        async with asyncio.timeout(timeout):
            seen = 0
            while True:
                for event in self.all[seen:]:
                    if predicate(event):
                        return event
                seen = len(self.all)
                self._changed.clear()
                await self._changed.wait()


@dataclass
class Core:
    system: ActorSystem
    config: Config
    provider: FakeResponsesProvider
    events: Events
    directory: MemoryDirectory
    dirs: CodexDirs
    threads: ActorRef
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def key(self, conversation: str = "c1", agent: str = "default") -> ThreadKey:
        return ThreadKey("test", conversation, agent)

    async def say(self, text: str, key: ThreadKey | None = None) -> tuple[str, str]:
        """Send a message; returns (outcome, interaction id)."""
        interaction = ev.Interaction(id=f"i{next(self._ids)}", text=text, user="tester")
        outcome = await send_message(self.threads, key or self.key(), interaction)
        return outcome, interaction.id

    async def thread_id(self, key: ThreadKey | None = None) -> str:
        thread_id, _ = await self.directory.thread_for(key or self.key())
        return thread_id

    async def turn_completed(self, interaction_id: str, timeout: float = 20) -> ev.TurnCompleted:
        done: ev.TurnCompleted = await self.events.wait_for(
            lambda e: isinstance(e, ev.TurnCompleted) and e.interaction_id == interaction_id,
            timeout,
        )
        return done

    async def thread_ref(self, key: ThreadKey | None = None) -> ActorRef:
        return await open_conversation(self.threads, key or self.key())


def make_config(
    dirs: CodexDirs, provider: FakeResponsesProvider, provider_name: str = "fake", **agent: Any
) -> Config:
    """A config whose one agent, "default", uses the fake provider (named `provider_name`)."""
    return Config(
        daemon=DaemonConfig(state_dir=str(dirs.root)),
        codex=CodexConfig(home=str(dirs.home)),
        providers={
            provider_name: ProviderConfig(
                base_url=provider.base_url, request_max_retries=1, stream_max_retries=1
            )
        },
        agents={
            "default": AgentConfig(
                model="gpt-5.5", provider=provider_name, workspace=str(dirs.work), **agent
            )
        },
    )


@pytest.fixture
def agent_options() -> dict[str, Any]:
    return {}


def core_children(
    config: Config,
    directory: ThreadDirectory,
    publish: Publish,
    sessions: Registry,
    codex_config: Callable[[str], dict[str, Any]] | None = None,
    rollouts: RolloutStore | None = None,
) -> list[ChildSpec]:
    """The daemon's Codex client (with quick back-off), thread supervisor and thread router
    (`codex_config`: each thread's extra codex config, as the daemon's MCP access gives it)."""
    return [
        ChildSpec(
            CODEX,
            start=lambda: CodexClient(config, sessions),
            name=CODEX,
            backoff=Backoff(initial=0.05, cap=1.0),
            shutdown=10.0,
            init_timeout=30.0,
        ),
        ChildSpec(
            THREAD_SUPERVISOR, start=DynamicSupervisor, name=THREAD_SUPERVISOR, type="supervisor"
        ),
        ChildSpec(
            THREADS,
            start=lambda: Threads(
                config,
                directory,
                publish,
                {"codex": CodexBackend(sessions, codex_config=codex_config, rollouts=rollouts)},
            ),
            name=THREADS,
        ),
    ]


def fan_out(events: Events, subscriptions: Registry) -> Publish:
    """A `publish` that records every event and delivers it to the subscribed surfaces."""

    async def publish(batch: list[ev.ThreadEvent]) -> None:
        await events(batch)
        for event in batch:
            deliver(subscriptions, event)

    return publish


async def start_core(
    system: ActorSystem,
    config: Config,
    provider: FakeResponsesProvider,
    dirs: CodexDirs,
    codex_config: Callable[[str], dict[str, Any]] | None = None,
    rollouts: RolloutStore | None = None,
) -> Core:
    """The core children of `config` started in `system` under a supervisor named "piano"
    (`rollouts`: where Codex threads' rollouts are kept; none by default)."""
    events = Events()
    directory = MemoryDirectory()
    children = core_children(
        config, directory, events, Registry(keys="unique"), codex_config, rollouts
    )
    await system.spawn(Supervisor(children, max_restarts=10, max_seconds=5), name="piano")
    threads = system.whereis(THREADS)
    assert threads is not None
    return Core(system, config, provider, events, directory, dirs, threads)


@pytest.fixture
async def core(dirs: CodexDirs, agent_options: dict[str, Any]) -> AsyncIterator[Core]:
    async with FakeResponsesProvider() as provider, ActorSystem() as system:
        yield await start_core(system, make_config(dirs, provider, **agent_options), provider, dirs)
