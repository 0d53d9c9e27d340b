"""A conversation's node SIGKILLed mid-turn, through two running `piano run` nodes (one
PostgreSQL store, the machine's RabbitMQ, the real codex and the fake provider): the next message
of that conversation, sent to the surviving node, is answered there at once — the survivor takes
the lease (epoch 2) because the dead node's advisory lock vanished with its socket, not after a
timeout; the cut turn ends interrupted, the message queued behind it and the new one are each
answered once, in order, and the journal has every seq once."""

from __future__ import annotations

import signal

import anyio
import psycopg
import pytest

from piano.store import PostgresReader
from tests.acceptance.daemon import chat, daemon_running
from tests.acceptance.test_recovery import a_turn_running_and_a_message_queued
from tests.cluster.conftest import two_nodes
from tests.fakes.responses_provider import CodexDirs, FakeResponsesProvider, Hang, Text

pytestmark = pytest.mark.anyio


async def test_the_next_message_after_the_owner_is_killed_is_answered_by_a_survivor_once(
    dirs: CodexDirs, other_dirs: CodexDirs, database: str, amqp_url: str
) -> None:
    async with FakeResponsesProvider() as provider:
        hang = Hang()
        provider.script(hang, Text("answer to second"), Text("answer to third"))
        async with (
            two_nodes(dirs, other_dirs, provider, database, amqp_url) as nodes,
            daemon_running(nodes.config_b, nodes.state_b / "chat.sock", env=nodes.env),
        ):
            chat_socket = nodes.state_a / "chat.sock"
            async with daemon_running(nodes.config_a, chat_socket, env=nodes.env) as node_a:
                chats = await a_turn_running_and_a_message_queued(nodes.config_a, provider)
                node_a.send_signal(signal.SIGKILL)
                await node_a.wait()
                for process in chats:
                    process.kill()
                    await process.wait()
            hang.release()
            with PostgresReader(database) as reader:
                [thread] = reader.threads()
            with anyio.fail_after(120):
                answer = await chat(nodes.config_b, "third", "--thread", thread.id)
    assert "answer to third" in answer
    with PostgresReader(database) as reader:
        done = [(i.text, i.status, i.response) for i in reader.interactions(thread.id)]
        seqs = [entry.seq for entry in reader.events_since(thread.id)]
    assert done == [
        ("first", "interrupted", ""),
        ("second", "completed", "answer to second"),
        ("third", "completed", "answer to third"),
    ]
    assert seqs == list(range(1, len(seqs) + 1))
    with psycopg.connect(database) as connection:
        lease = connection.execute(
            "SELECT node_id, epoch FROM thread_leases WHERE thread_id = %s", (thread.id,)
        ).fetchone()
    assert lease == ("node-b", 2)
