"""Every agent backend keeps one conversation contract, and a new backend is one module plus
one line of registration.

The contract test runs each registered backend (and the test's own echo backend, registered
for it) the daemon's way: the backend class looked up by name (`backend_class`) and built with
`for_daemon`, its conversations started by the real `Threads` under a `DynamicSupervisor`,
their events written to a real store. Codex runs the real codex binary against the fake
Responses provider; the openai backend runs the openai SDK against `FakeOpenAI`. A backend
registered without a harness here fails `test_every_registered_backend_is_run_by_the_contract`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from actors import ActorSystem, Registry
from piano.agents import (
    BACKENDS,
    DaemonSetup,
    OpenAIAgentConfig,
    UnknownBackend,
    backend_class,
    register_backend,
)
from piano.codex import CODEX, CodexClient
from piano.config import (
    AgentConfig,
    CodexConfig,
    Config,
    ConfigError,
    DaemonConfig,
    ProviderConfig,
    load_config,
)
from piano.store import STORE, StoreWriter, WriteBatch
from piano.threads import (
    THREAD_SUPERVISOR,
    MemoryDirectory,
    StoreDirectory,
    ThreadKey,
    Threads,
    conversation_status,
    open_conversation,
    post_message,
)
from piano.tools import MemoryNotes
from schemas import events as ev
from supervisors import DynamicSupervisor
from tests.agents import fake_openai
from tests.agents.fake_openai import FakeOpenAI
from tests.fakes import responses_provider
from tests.fakes.responses_provider import CodexDirs, FakeResponsesProvider
from tests.piano.conftest import Events

pytestmark = pytest.mark.anyio

ECHO = "tests.agents.echo_backend:EchoBackend"
KEY_ENV = "PIANO_TEST_EVERY_BACKEND_KEY"

Start = Callable[[ActorSystem, Registry, Config], Awaitable[None]]


@dataclass
class World:
    """A configuration whose agent "default" runs on the backend under test, and what must
    run beside that backend's conversations (Codex's client, for Codex)."""

    config: Config
    start: Start


async def _nothing(system: ActorSystem, sessions: Registry, config: Config) -> None:
    return None


async def _codex_client(system: ActorSystem, sessions: Registry, config: Config) -> None:
    await system.spawn(CodexClient(config, sessions), name=CODEX)


def _state(dirs: CodexDirs) -> DaemonConfig:
    return DaemonConfig(state_dir=str(dirs.root))


@asynccontextmanager
async def codex_world(dirs: CodexDirs, answers: list[str]) -> AsyncIterator[World]:
    async with FakeResponsesProvider() as provider:
        provider.script(*(responses_provider.Text(answer) for answer in answers))
        config = Config(
            daemon=_state(dirs),
            codex=CodexConfig(home=str(dirs.home)),
            providers={"fake": ProviderConfig(base_url=provider.base_url)},
            agents={
                "default": AgentConfig(model="gpt-5.5", provider="fake", workspace=str(dirs.work))
            },
        )
        yield World(config, _codex_client)


@asynccontextmanager
async def openai_world(dirs: CodexDirs, answers: list[str]) -> AsyncIterator[World]:
    async with FakeOpenAI() as fake:
        fake.script(*(fake_openai.Text(answer) for answer in answers))
        options = OpenAIAgentConfig(base_url=fake.base_url, api_key_env=KEY_ENV, tools=[])
        agent = AgentConfig(backend="openai", model="fake-model", openai=options)
        yield World(Config(daemon=_state(dirs), agents={"default": agent}), _nothing)


@asynccontextmanager
async def echo_world(dirs: CodexDirs, answers: list[str]) -> AsyncIterator[World]:
    agent = AgentConfig(backend="echo", workspace=str(dirs.work))
    yield World(Config(daemon=_state(dirs), agents={"default": agent}), _nothing)


HARNESSES: dict[str, Callable[[CodexDirs, list[str]], AbstractAsyncContextManager[World]]] = {
    "codex": codex_world,
    "openai": openai_world,
    "echo": echo_world,
}


@pytest.fixture
def echo_registered() -> Iterator[None]:
    """The echo backend registered for one test, and unregistered after it."""
    register_backend("echo", ECHO)
    yield
    BACKENDS.pop("echo", None)


def test_every_registered_backend_is_run_by_the_contract() -> None:
    assert set(BACKENDS) <= set(HARNESSES), "give each registered backend a harness here"


@pytest.mark.parametrize("backend", sorted({*BACKENDS, "echo"}))
async def test_every_backend_answers_each_message_in_order_and_leaves_nothing_open(
    backend: str,
    dirs: CodexDirs,
    echo_registered: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-test")
    answers = ["first answer", "second answer"]
    if backend == "echo":
        answers = ["echo: one", "echo: two"]
    async with HARNESSES[backend](dirs, answers) as world, ActorSystem() as system:
        config = world.config
        database = config.state_path(config.daemon.database)
        database.parent.mkdir(parents=True, exist_ok=True)
        writer = await system.spawn(StoreWriter(database), name=STORE)
        directory = StoreDirectory(lambda: system.whereis(STORE), database, config.agents)
        events = Events()

        async def publish(batch: list[ev.ThreadEvent]) -> None:
            await writer.call(WriteBatch(batch), timeout=10)
            await events(batch)

        sessions = Registry(keys="unique")
        await world.start(system, sessions, config)
        setup = DaemonSetup(config, database, sessions, MemoryNotes())
        chosen = backend_class(config.agents["default"].backend)
        await system.spawn(DynamicSupervisor(), name=THREAD_SUPERVISOR)
        threads = await system.spawn(
            Threads(config, directory, publish, {backend: chosen.for_daemon(setup)})
        )
        key = ThreadKey("test", "c1", "default")
        try:
            conversation = await open_conversation(threads, key)
            for n, text in enumerate(["one", "two"]):
                interaction = ev.Interaction(id=f"i{n}", text=text, user="ada")
                assert await post_message(conversation, interaction) == "started"
                done: ev.TurnCompleted = await events.wait_for(_completes(interaction), 30)
                assert (done.status, done.error) == ("completed", None)
                assert done.response == answers[n]
                mine = [e for e in events.all if e.interaction_id == interaction.id]
                assert isinstance(mine[0], ev.TurnStarted)
                assert mine[0].interaction.text == text
                assert mine[-1] is done
                said = [
                    e.item.text
                    for e in mine
                    if isinstance(e, ev.ItemCompleted) and e.item.kind == "agent_message"
                ]
                assert said == [answers[n]]
            status = await conversation_status(conversation)
            assert (status.backend, status.agent, status.running, status.queued) == (
                backend,
                "default",
                False,
                0,
            )
            left = await directory.unfinished(status.thread_id)
            assert (left.running, left.pending) == ([], [])
        finally:
            directory.close()


def _completes(interaction: ev.Interaction) -> Callable[[ev.ThreadEvent], bool]:
    def completes(event: ev.ThreadEvent) -> bool:
        return isinstance(event, ev.TurnCompleted) and event.interaction_id == interaction.id

    return completes


async def test_a_backend_registered_by_name_is_what_an_agent_naming_it_runs(
    dirs: CodexDirs, tmp_path: Path, echo_registered: None
) -> None:
    toml = tmp_path / "piano.toml"
    toml.write_text(
        f'[daemon]\nstate_dir = "{dirs.root}"\n[agents.default]\nbackend = "echo"\n'
        f'workspace = "{dirs.work}"\n'
    )
    config = load_config(toml, environ={})
    assert backend_class("echo").__name__ == "EchoBackend"
    async with echo_world(dirs, []) as world, ActorSystem() as system:
        events = Events()
        await system.spawn(DynamicSupervisor(), name=THREAD_SUPERVISOR)
        setup = DaemonSetup(config, tmp_path / "unused.db", Registry(keys="unique"), MemoryNotes())
        echo = backend_class("echo").for_daemon(setup)
        router = Threads(world.config, MemoryDirectory(), events, {"echo": echo})
        threads = await system.spawn(router)
        conversation = await open_conversation(threads, ThreadKey("test", "c1", "default"))
        assert await post_message(conversation, ev.Interaction(id="i1", text="hi")) == "started"
        done = await events.wait_for(lambda e: isinstance(e, ev.TurnCompleted))
        assert done.response == "echo: hi"


def test_an_agent_naming_an_unregistered_backend_is_refused_with_the_known_ones(
    tmp_path: Path,
) -> None:
    toml = tmp_path / "piano.toml"
    toml.write_text('[agents.default]\nbackend = "echo"\n')
    with pytest.raises(ConfigError, match=r"agents.default.backend: no backend named 'echo' "):
        load_config(toml, environ={})
    with pytest.raises(UnknownBackend, match=r"known: codex, openai"):
        backend_class("echo")
