"""RabbitMQ 3.10 quorum queues can ignore acks that arrive just before their channel closes
(rabbitmq-server#10327): the acked deliveries come back. The first test shows the bug with a
bare client (consumer cancelled first, then acks, then close), so it fails loudly once a
broker upgrade fixes it; the second proves the producer's drain (acks, then ``basic.cancel``
as a barrier, then close) loses none over many rounds."""

from __future__ import annotations

import asyncio

import aio_pika
import aiormq.abc
import pytest

from actors import ActorSystem
from actors.pipeline import Message, Pipeline, Processors
from actors.pipeline.rabbitmq import RabbitMQProducer
from tests.pipeline.rabbitmq.conftest import Broker

pytestmark = pytest.mark.anyio

N = 200
SETTLE = 0.5
"""Seconds a returned message has to reappear: waiting for an absence needs a window."""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def returned_within(broker: Broker, queue: str, seconds: float) -> int:
    """How many messages reappear in `queue` within `seconds` (consumed and acked)."""
    assert broker.channel is not None
    declared = await broker.channel.get_queue(queue)
    got = 0
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        message = await declared.get(fail=False)
        if message is None:
            await asyncio.sleep(0.02)  # polling the broker for a message that may come back
            continue
        await message.ack()
        got += 1
    return got


async def test_a_bare_client_that_cancels_first_loses_acks_sent_just_before_close(
    broker: Broker,
) -> None:
    queue = await broker.queue("bug", quorum=True)
    connection = await aio_pika.connect(broker.url)
    rounds_with_loss = 0
    try:
        for _ in range(30):
            await broker.publish(queue, [b"x"] * N)
            channel = await connection.channel()
            raw = await channel.get_underlay_channel()
            await raw.basic_qos(prefetch_count=N)
            tags: list[int] = []
            all_in = asyncio.Event()

            async def deliver(message: aiormq.abc.DeliveredMessage) -> None:
                assert message.delivery_tag is not None
                tags.append(message.delivery_tag)  # noqa: B023 - one round's list
                if len(tags) == N:  # noqa: B023
                    all_in.set()  # noqa: B023

            consumer = await raw.basic_consume(queue, deliver)
            await all_in.wait()
            assert consumer.consumer_tag is not None
            await raw.basic_cancel(consumer.consumer_tag)
            for tag in tags:
                await raw.basic_ack(tag, wait=False)
            await channel.close()
            if await returned_within(broker, queue, SETTLE):
                rounds_with_loss += 1
                break
    finally:
        await connection.close()
    assert rounds_with_loss == 1, (
        "acks sent just before a channel close were never lost in 30 rounds: the broker no "
        "longer has rabbitmq-server#10327 (the producer's workaround is then merely harmless)"
    )


async def test_the_producers_drain_loses_no_ack_on_a_quorum_queue(
    system: ActorSystem, broker: Broker
) -> None:
    queue = await broker.queue("drain", quorum=True)
    for round_number in range(8):
        await broker.publish(queue, [f"{round_number}.{i}".encode() for i in range(N)])
        handled: list[bytes] = []
        done = asyncio.Event()

        def handle(message: Message) -> None:
            handled.append(message.data)  # noqa: B023 - one round's list
            if len(handled) == N:  # noqa: B023
                done.set()  # noqa: B023

        producer = RabbitMQProducer(broker.url, [queue], prefetch=N)
        ref = await system.spawn(
            Pipeline(f"round{round_number}", producer=producer, processors=Processors(handle))
        )
        await done.wait()
        await ref.stop()
        assert producer.statistics().acked == N
        assert await returned_within(broker, queue, SETTLE) == 0, (
            f"round {round_number}: acked messages came back after the drain"
        )
