"""Two `piano run` daemons as nodes of one cluster (one PostgreSQL store, the machine's RabbitMQ,
the real codex and the fake provider): a web client connected to node B follows, live and in
order, a conversation node A answers — every event once, exactly as A's store journals it; and
when A is SIGKILLed mid-turn and started again, B's client sees the turn end interrupted and the
queued message answered, still each event once and in the journal's order (what A showed its own
surfaces but never committed is never shown on B: the store is the truth)."""

from __future__ import annotations

import signal

import aiohttp
import pytest

from piano.store import PostgresReader
from schemas import events as ev
from tests.acceptance.daemon import chat, console, daemon_running
from tests.acceptance.test_recovery import a_turn_running_and_a_message_queued
from tests.acceptance.test_surfaces import AUTH
from tests.cluster.conftest import two_nodes
from tests.fakes.responses_provider import CodexDirs, FakeResponsesProvider, Hang, Text
from tests.web.conftest import Client

pytestmark = pytest.mark.anyio

CONNECTED = (  # a node's queue is bound before anything is published
    "from piano.cluster import WaitConnected",
    "await whereis('cluster:fanout').call(WaitConnected())",
)


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
