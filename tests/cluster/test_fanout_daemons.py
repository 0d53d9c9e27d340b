"""Two `piano run` daemons as nodes of one cluster (one PostgreSQL store, the machine's RabbitMQ,
the real codex and the fake provider): a web client connected to node B follows, live and in
order, a conversation node A answers — every event once, exactly as A's store journals it; and
when A is SIGKILLed mid-turn and started again, B's client sees the turn end interrupted and the
queued message answered, still each event once and in the journal's order (what A showed its own
surfaces but never committed is never shown on B: the store is the truth)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aio_pika
import aiohttp
import pytest

from piano.store import PostgresReader
from schemas import events as ev
from tests.acceptance.daemon import chat, console, daemon_running, write_config
from tests.acceptance.test_recovery import a_turn_running_and_a_message_queued
from tests.acceptance.test_surfaces import AUTH, free_port
from tests.fakes.responses_provider import (
    CodexDirs,
    FakeResponsesProvider,
    Hang,
    Text,
    make_codex_dirs,
)
from tests.pipeline.rabbitmq.conftest import amqp_url
from tests.postgres import fresh_database
from tests.web.conftest import TOKEN, Client

__all__ = ["amqp_url"]

pytestmark = pytest.mark.anyio

DSN_ENV = "PIANO_ACCEPTANCE_STORE_DSN"
AMQP_ENV = "PIANO_ACCEPTANCE_AMQP_URL"


@pytest.fixture
def database() -> Iterator[str]:
    with fresh_database() as dsn:
        yield dsn


@pytest.fixture
def other_dirs() -> Iterator[CodexDirs]:
    made = make_codex_dirs()
    yield made
    shutil.rmtree(made.root, ignore_errors=True)


def _node(node_id: str, prefix: str) -> str:
    return (
        f'[store]\nbackend = "postgres"\ndsn_env = "{DSN_ENV}"\n'
        f'[cluster]\nnode_id = "{node_id}"\n'
        f'[cluster.rabbitmq]\nurl_env = "{AMQP_ENV}"\nprefix = "{prefix}"\n'
    )


CONNECTED = (  # a node's queue is bound before anything is published
    "from piano.cluster import WaitConnected",
    "await whereis('cluster:fanout').call(WaitConnected())",
)


@dataclass
class Cluster:
    """Node A (no web surface) and node B (the web surface on `web_port`), their configs,
    state directories and environment, under a broker prefix of their own."""

    config_a: Path
    config_b: Path
    state_a: Path
    state_b: Path
    web_port: int
    env: dict[str, str]


@contextlib.asynccontextmanager
async def two_nodes(
    dirs: CodexDirs,
    other_dirs: CodexDirs,
    provider: FakeResponsesProvider,
    database: str,
    amqp_url: str,
) -> AsyncIterator[Cluster]:
    """The two nodes' configurations; their exchange is deleted afterwards."""
    prefix = f"piano-test.{uuid.uuid4().hex[:10]}"
    web_port = free_port()
    try:
        yield Cluster(
            write_config(dirs, provider, _node("node-a", prefix)),
            write_config(
                other_dirs,
                provider,
                f"[web]\nenabled = true\nport = {web_port}\n"
                f"[tools.mcp]\nport = {free_port()}\n" + _node("node-b", prefix),
            ),
            dirs.root / "state",
            other_dirs.root / "state",
            web_port,
            {**os.environ, DSN_ENV: database, AMQP_ENV: amqp_url, "PIANO_WEB_TOKEN": TOKEN},
        )
    finally:
        connection = await aio_pika.connect(amqp_url)
        async with connection:
            channel = await connection.channel()
            await channel.exchange_delete(f"{prefix}.events")


async def following_everything(session: aiohttp.ClientSession, web_port: int) -> Client:
    """A web client of node B's stream, subscribed to every thread."""
    ws = await session.ws_connect(f"http://127.0.0.1:{web_port}/stream", headers=AUTH)
    client = Client(ws)
    await client.of_type("welcome")
    await client.send({"type": "subscribe", "thread_id": "*"})
    await client.of_type("snapshot")
    return client


def shown_as_journaled(client: Client, database: str) -> list[ev.ThreadEvent]:
    """The thread events the client got; asserts they are the journal's first ones, in its
    order, each once."""
    shown: list[ev.ThreadEvent] = [e.data for e in client.received if e.seq > 0]  # type: ignore[misc]
    with PostgresReader(database) as reader:
        [thread] = reader.threads()
        journal = [entry.event for entry in reader.events_since(thread.id)]
    assert shown
    assert shown == journal[: len(shown)]
    return shown


async def test_a_web_client_on_one_node_follows_a_conversation_another_node_answers(
    dirs: CodexDirs, other_dirs: CodexDirs, database: str, amqp_url: str
) -> None:
    async with FakeResponsesProvider() as provider:
        provider.script(Text("an answer streamed from node a", deltas=12))
        async with (
            two_nodes(dirs, other_dirs, provider, database, amqp_url) as nodes,
            daemon_running(nodes.config_a, nodes.state_a / "chat.sock", env=nodes.env),
            daemon_running(nodes.config_b, nodes.state_b / "chat.sock", env=nodes.env),
            aiohttp.ClientSession() as session,
        ):
            for state in (nodes.state_a, nodes.state_b):
                await console(state, *CONNECTED)
            client = await following_everything(session, nodes.web_port)
            assert "an answer streamed from node a" in await chat(nodes.config_a, "hello")
            await client.until(lambda e: e.type == "turn.completed", timeout=60)
            await client.ws.close()

    on_b = shown_as_journaled(client, database)
    assert isinstance(on_b[0], ev.TurnStarted)
    assert on_b[0].interaction.text == "hello"
    deltas = "".join(e.delta for e in on_b if isinstance(e, ev.ItemDelta) and e.stream == "text")
    assert deltas == "an answer streamed from node a"


async def test_a_node_killed_mid_turn_and_restarted_is_followed_elsewhere_each_event_once(
    dirs: CodexDirs, other_dirs: CodexDirs, database: str, amqp_url: str
) -> None:
    async with FakeResponsesProvider() as provider:
        hang = Hang()
        provider.script(hang, Text("the answer to the queued message", deltas=8))
        async with (
            two_nodes(dirs, other_dirs, provider, database, amqp_url) as nodes,
            daemon_running(nodes.config_b, nodes.state_b / "chat.sock", env=nodes.env),
            aiohttp.ClientSession() as session,
        ):
            await console(nodes.state_b, *CONNECTED)
            client = await following_everything(session, nodes.web_port)
            chat_socket = nodes.state_a / "chat.sock"
            async with daemon_running(nodes.config_a, chat_socket, env=nodes.env) as node_a:
                await console(nodes.state_a, *CONNECTED)
                chats = await a_turn_running_and_a_message_queued(nodes.config_a, provider)
                await client.until(lambda e: e.type == "turn.started", timeout=60)
                node_a.send_signal(signal.SIGKILL)
                await node_a.wait()
                for process in chats:
                    process.kill()
                    await process.wait()
            hang.release()
            async with daemon_running(nodes.config_a, chat_socket, env=nodes.env):
                await client.until(
                    lambda e: isinstance(e.data, ev.TurnCompleted) and e.data.status == "completed",
                    timeout=90,
                )
            await client.ws.close()

    on_b = shown_as_journaled(client, database)
    ended = [(e.status, e.response) for e in on_b if isinstance(e, ev.TurnCompleted)]
    assert ended == [("interrupted", ""), ("completed", "the answer to the queued message")]
