"""Two `piano run` daemons as nodes of one cluster (one PostgreSQL store, the machine's RabbitMQ,
the real codex and the fake provider): a web client connected to node B follows, live and in
order, a conversation node A answers — every event once, exactly as A's store journals it."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator

import aio_pika
import aiohttp
import pytest

from piano.store import PostgresReader
from schemas import events as ev
from tests.acceptance.daemon import chat, console, daemon_running, write_config
from tests.acceptance.test_surfaces import AUTH, free_port
from tests.fakes.responses_provider import CodexDirs, FakeResponsesProvider, Text, make_codex_dirs
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


async def test_a_web_client_on_one_node_follows_a_conversation_another_node_answers(
    dirs: CodexDirs, other_dirs: CodexDirs, database: str, amqp_url: str
) -> None:
    prefix = f"piano-test.{uuid.uuid4().hex[:10]}"
    env = {**os.environ, DSN_ENV: database, AMQP_ENV: amqp_url, "PIANO_WEB_TOKEN": TOKEN}
    web_port = free_port()
    connected = (  # each node's queue is bound before anything is published
        "from piano.cluster import WaitConnected",
        "await whereis('cluster:fanout').call(WaitConnected())",
    )
    try:
        async with FakeResponsesProvider() as provider:
            provider.script(Text("an answer streamed from node a", deltas=12))
            config_a = write_config(dirs, provider, _node("node-a", prefix))
            config_b = write_config(
                other_dirs,
                provider,
                f"[web]\nenabled = true\nport = {web_port}\n"
                f"[tools.mcp]\nport = {free_port()}\n" + _node("node-b", prefix),
            )
            state_a, state_b = dirs.root / "state", other_dirs.root / "state"
            async with (
                daemon_running(config_a, state_a / "chat.sock", env=env),
                daemon_running(config_b, state_b / "chat.sock", env=env),
                aiohttp.ClientSession() as session,
            ):
                for state in (state_a, state_b):
                    await console(state, *connected)
                ws = await session.ws_connect(f"http://127.0.0.1:{web_port}/stream", headers=AUTH)
                client = Client(ws)
                await client.of_type("welcome")
                await client.send({"type": "subscribe", "thread_id": "*"})
                await client.of_type("snapshot")

                assert "an answer streamed from node a" in await chat(config_a, "hello")
                await client.until(lambda e: e.type == "turn.completed", timeout=60)
                await ws.close()
    finally:
        connection = await aio_pika.connect(amqp_url)
        async with connection:
            channel = await connection.channel()
            await channel.exchange_delete(f"{prefix}.events")

    on_b = [envelope.data for envelope in client.received if envelope.seq > 0]
    with PostgresReader(database) as reader:
        [thread] = reader.threads()
        journal = [entry.event for entry in reader.events_since(thread.id)]
    assert on_b == journal[: len(on_b)]  # in the journal's order, each once
    assert isinstance(on_b[0], ev.TurnStarted)
    assert on_b[0].interaction.text == "hello"
    deltas = "".join(e.delta for e in on_b if isinstance(e, ev.ItemDelta) and e.stream == "text")
    assert deltas == "an answer streamed from node a"
