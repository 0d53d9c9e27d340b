"""The broker restarts, or crashes and comes back, mid-run: the producer reconnects with back-off,
the publisher republishes what was not confirmed, and every confirmed message is handled: nothing
is lost. Runs on a private node (tests/pipeline/rabbitmq/node.py), never the machine's broker."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from actors import ActorSystem, Backoff
from actors.pipeline import Message, Pipeline, Processors
from actors.pipeline.rabbitmq import Publisher, RabbitMQProducer, declare_partitions
from tests.pipeline.rabbitmq.conftest import until
from tests.pipeline.rabbitmq.node import TemporaryNode

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[TemporaryNode]:
    made = TemporaryNode(tmp_path)
    await made.start()
    try:
        yield made
    finally:
        await made.stop(signal.SIGKILL)


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["restarted", "crashed"])
async def test_a_broker_restarted_or_crashed_mid_run_loses_no_confirmed_message(
    system: ActorSystem, node: TemporaryNode, how: signal.Signals
) -> None:
    total = 3000
    [queue] = await declare_partitions(node.url, "restart", 1, delivery_limit=10)
    if how == signal.SIGKILL:
        # A quorum queue declared seconds before a crash did not come back with its node here:
        # RabbitMQ 3.10 repaired its unclosed names.dets, logged "pre init for 0 registered
        # servers" and the queue never got a leader (our reading: the Raft server's
        # registration reaches disk on DETS's 3-minute auto-save or a clean stop). A clean
        # restart first makes it as durable as an old queue; the crash below is then a real
        # one, mid-run.
        await node.stop()
        await node.start()
    handled: set[bytes] = set()

    def handle(message: Message) -> None:
        handled.add(message.data)

    producer = RabbitMQProducer(
        node.url, [queue], prefetch=100, reconnect=Backoff(initial=0.05, cap=0.5)
    )
    ref = await system.spawn(
        Pipeline("restart", producer=producer, processors=Processors(handle, concurrency=2))
    )
    await producer.wait_consuming()
    confirmed: list[bytes] = []
    restarted = asyncio.Event()

    async def publish_all() -> None:
        publisher = Publisher(node.url, prefix="restart", partitions=1, window=50)
        pending = [f"m{i}".encode() for i in range(total)]
        while pending:
            window = pending[:50]
            try:
                await publisher.publish_many([("k", body) for body in window])
            except Exception:
                # Not confirmed: the broker went. Publish the window again once it is back.
                await publisher.close()
                await restarted.wait()
                continue
            confirmed.extend(window)
            del pending[:50]
        await publisher.close()

    publishing = asyncio.ensure_future(publish_all())
    await until(lambda: len(confirmed) >= 1000, 60, "a third of the messages to be confirmed")
    await node.stop(how)
    await node.start()
    restarted.set()
    await publishing
    await until(lambda: handled >= set(confirmed), 90, "every confirmed message to be handled")
    await ref.stop()
    assert len(confirmed) == total
    assert handled == set(confirmed)
    assert producer.statistics().connections >= 2, "the producer reconnected"
