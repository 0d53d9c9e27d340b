"""The RabbitMQ producer against a real broker: acks, requeues, rejects to a dead-letter queue,
metadata, prefetch as back-pressure, a poison message, a graceful drain and a cut network."""

from __future__ import annotations

import asyncio
import socket
from collections import Counter
from typing import Any

import pytest
import yarl

from actors import ActorSystem, Backoff
from actors.pipeline import Message, Pipeline, Processors, statistics
from actors.pipeline.rabbitmq import PARTITION_KEY_HEADER, OnFailure, RabbitMQProducer
from tests.pipeline.rabbitmq.conftest import Broker, Proxy

pytestmark = pytest.mark.anyio


async def start(
    system: ActorSystem,
    url: str,
    queues: list[str],
    handle: Any,
    *,
    on_failure: OnFailure = "requeue",
    prefetch: int = 50,
    concurrency: int = 2,
    name: str = "rabbit",
) -> tuple[Any, RabbitMQProducer]:
    producer = RabbitMQProducer(
        url,
        queues,
        prefetch=prefetch,
        on_failure=on_failure,
        reconnect=Backoff(initial=0.05, cap=0.5),
    )
    ref = await system.spawn(
        Pipeline(
            name,
            producer=producer,
            processors=Processors(handle, concurrency=concurrency, partition_by=lambda m: m.key),
        )
    )
    await producer.wait_consuming()
    return ref, producer


class Seen:
    """Records handled bodies and wakes a waiter when a count is reached."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.messages: list[Message] = []
        self.changed = asyncio.Event()

    def add(self, message: Message) -> None:
        self.bodies.append(message.data)
        self.messages.append(message)
        self.changed.set()

    async def wait_for(self, count: int, timeout: float = 15.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.bodies) < count:
                self.changed.clear()
                await self.changed.wait()


async def test_handled_messages_are_acked_in_coalesced_frames_and_never_come_back(
    system: ActorSystem, broker: Broker
) -> None:
    queue = await broker.queue("work", quorum=True)
    await broker.publish(queue, [f"m{i}".encode() for i in range(300)])
    seen = Seen()
    ref, producer = await start(system, broker.url, [queue], seen.add)
    await seen.wait_for(300)
    await ref.stop()
    assert sorted(seen.bodies) == sorted(f"m{i}".encode() for i in range(300))
    stats = producer.statistics()
    assert stats.acked == 300
    assert stats.lost_settlements == 0
    assert stats.ack_frames < 150, "acks were not coalesced into multiple acks"
    assert await broker.count(queue) == 0, "an acked message went back to the queue"


async def test_a_failed_message_is_requeued_and_redelivered_with_its_delivery_count(
    system: ActorSystem, broker: Broker
) -> None:
    queue = await broker.queue("requeue", quorum=True)
    await broker.publish(queue, [b"flaky", b"fine"])
    seen = Seen()

    def handle(message: Message) -> None:
        seen.add(message)
        assert message.metadata is not None
        if message.data == b"flaky" and message.metadata["delivery_count"] == 0:
            raise ConnectionError("downstream unavailable")

    ref, producer = await start(system, broker.url, [queue], handle, on_failure="requeue")
    await seen.wait_for(3)
    await ref.stop()
    flaky = [m.metadata for m in seen.messages if m.data == b"flaky"]
    assert [m["delivery_count"] for m in flaky if m] == [0, 1]
    assert [m["redelivered"] for m in flaky if m] == [False, True]
    assert producer.statistics().requeued == 1
    assert await broker.count(queue) == 0


async def test_reject_sends_a_failed_message_to_the_dead_letter_queue_at_once(
    system: ActorSystem, broker: Broker
) -> None:
    dead = await broker.queue("dead")
    queue = await broker.queue("reject", dead_letter_to=dead)
    await broker.publish(queue, [b"bad", b"good"])
    seen = Seen()

    def handle(message: Message) -> None:
        seen.add(message)
        if message.data == b"bad":
            message.fail("malformed")

    ref, producer = await start(system, broker.url, [queue], handle, on_failure="reject")
    await seen.wait_for(2)
    [dead_lettered] = await broker.take(dead, 1)
    await ref.stop()
    assert dead_lettered.body == b"bad"
    assert sorted(seen.bodies) == [b"bad", b"good"], "the rejected message was not redelivered"
    assert producer.statistics().rejected == 1
    assert await broker.count(queue) == 0


async def test_requeue_once_retries_a_failure_once_then_dead_letters_it(
    system: ActorSystem, broker: Broker
) -> None:
    dead = await broker.queue("dead")
    queue = await broker.queue("once", quorum=True, dead_letter_to=dead)
    await broker.publish(queue, [b"always-fails"])
    seen = Seen()

    def handle(message: Message) -> None:
        seen.add(message)
        raise ValueError("cannot handle this")

    ref, producer = await start(system, broker.url, [queue], handle, on_failure="requeue_once")
    await seen.wait_for(2)
    [dead_lettered] = await broker.take(dead, 1)
    await ref.stop()
    assert dead_lettered.body == b"always-fails"
    assert [m.metadata["delivery_count"] for m in seen.messages if m.metadata] == [0, 1]
    assert (producer.statistics().requeued, producer.statistics().rejected) == (1, 1)


async def test_a_poison_message_is_dead_lettered_after_the_delivery_limit_instead_of_looping(
    system: ActorSystem, broker: Broker
) -> None:
    dead = await broker.queue("dead")
    queue = await broker.queue("poison", quorum=True, dead_letter_to=dead, delivery_limit=3)
    await broker.publish(queue, [b"poison"] + [f"ok{i}".encode() for i in range(20)])
    seen = Seen()

    def handle(message: Message) -> None:
        seen.add(message)
        if message.data == b"poison":
            raise ValueError("poison")

    ref, _ = await start(system, broker.url, [queue], handle, on_failure="requeue")
    [dead_lettered] = await broker.take(dead, 1)
    await seen.wait_for(24)
    await ref.stop()
    counts = Counter(seen.bodies)
    assert dead_lettered.body == b"poison"
    assert counts[b"poison"] == 4, "delivered once plus the 3 redeliveries the limit allows"
    assert all(counts[f"ok{i}".encode()] == 1 for i in range(20))
    assert await broker.count(queue) == 0


async def test_metadata_carries_headers_routing_key_and_the_partition_key(
    system: ActorSystem, broker: Broker
) -> None:
    queue = await broker.queue("meta")
    await broker.publish(queue, [b"hello"], headers={PARTITION_KEY_HEADER: "k1", "x-n": 7})
    seen = Seen()
    ref, _ = await start(system, broker.url, [queue], seen.add)
    await seen.wait_for(1)
    await ref.stop()
    [message] = seen.messages
    assert message.key == "k1"
    metadata = message.metadata
    assert metadata is not None
    assert metadata["queue"] == queue
    assert metadata["routing_key"] == queue
    assert metadata["exchange"] == ""
    assert metadata["headers"] == {PARTITION_KEY_HEADER: "k1", "x-n": 7}
    assert (metadata["redelivered"], metadata["delivery_count"]) == (False, 0)
    assert metadata["delivery_tag"] == 1


async def test_prefetch_bounds_what_the_pipeline_holds_while_handlers_are_stuck(
    system: ActorSystem, broker: Broker
) -> None:
    queue = await broker.queue("prefetch", quorum=True)
    await broker.publish(queue, [f"m{i}".encode() for i in range(100)])
    release = asyncio.Event()
    seen = Seen()

    async def handle(message: Message) -> None:
        seen.add(message)
        await release.wait()

    ref, producer = await start(system, broker.url, [queue], handle, prefetch=10, concurrency=10)
    await seen.wait_for(10)
    # The broker sent exactly `prefetch`; more cannot arrive until something is acked.
    assert producer.statistics().delivered == 10
    assert statistics(ref).in_flight == 10
    assert await broker.count(queue) == 90
    release.set()
    await seen.wait_for(100)
    await ref.stop()
    assert await broker.count(queue) == 0


async def test_a_drain_acks_what_is_in_flight_and_leaves_the_rest_queued(
    system: ActorSystem, broker: Broker
) -> None:
    queue = await broker.queue("drain", quorum=True)
    await broker.publish(queue, [f"m{i}".encode() for i in range(50)])
    started = asyncio.Event()
    seen = Seen()

    async def handle(message: Message) -> None:
        started.set()
        await asyncio.sleep(0.01)  # a handler doing work: the drain must wait for it
        seen.add(message)

    ref, producer = await start(system, broker.url, [queue], handle, prefetch=20, concurrency=1)
    await started.wait()
    await ref.stop()
    handled = len(seen.bodies)
    assert handled >= 1
    assert producer.statistics().acked == handled
    left = await broker.take(queue, 50 - handled)
    assert sorted(m.body for m in left) == sorted(
        {f"m{i}".encode() for i in range(50)} - set(seen.bodies)
    ), "a message acked in the drain came back, or one never handled was lost"
    assert await broker.count(queue) == 0


async def test_a_cut_connection_is_reconnected_and_unacked_messages_are_redelivered(
    system: ActorSystem, broker: Broker
) -> None:
    queue = await broker.queue("cut", quorum=True)
    await broker.publish(queue, [f"m{i}".encode() for i in range(40)])
    parsed = yarl.URL(broker.url)
    proxy = Proxy(parsed.host or "127.0.0.1", parsed.port or 5672)
    await proxy.start()
    gate = asyncio.Event()
    seen = Seen()

    async def handle(message: Message) -> None:
        seen.add(message)
        await gate.wait()

    try:
        ref, producer = await start(
            system, proxy.url(broker.url), [queue], handle, prefetch=5, concurrency=5
        )
        await seen.wait_for(5)
        proxy.cut()
        await producer.wait_consuming(15, connections=2)
        gate.set()
        await seen.wait_for(45)
        async with asyncio.timeout(15):
            while len(set(seen.bodies)) < 40:
                seen.changed.clear()
                await seen.changed.wait()
        await ref.stop()
    finally:
        await proxy.close()
    assert set(seen.bodies) == {f"m{i}".encode() for i in range(40)}
    redelivered = [m.data for m in seen.messages if m.metadata and m.metadata["redelivered"]]
    assert sorted(redelivered) == sorted(seen.bodies[:5]), "the 5 held ones came back"
    assert producer.statistics().lost_settlements == 5
    assert await broker.count(queue) == 0


async def test_an_unreachable_broker_is_retried_with_back_off_then_named_without_its_password() -> (
    None
):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    producer = RabbitMQProducer(
        f"amqp://guest:s3cret@127.0.0.1:{port}/",
        ["q"],
        reconnect=Backoff(initial=0.01, cap=0.02),
        reconnect_attempts=3,
    )

    async def emit(items: Any) -> None:
        raise AssertionError("nothing can be delivered")

    with pytest.raises(ConnectionError, match="unreachable after 3 attempts") as raised:
        await producer.produce(emit)
    assert "s3cret" not in str(raised.value)
    assert f"guest:***@127.0.0.1:{port}" in str(raised.value)
    assert producer.statistics().connections == 0


async def test_a_stuck_message_never_stalls_the_prefetch_window(
    system: ActorSystem, broker: Broker
) -> None:
    queue = await broker.queue("coalesce", quorum=True)
    # Integer keys: the stuck message alone on processor 0, the others on processors 1-3.
    await broker.publish(queue, [b"stuck"], headers={PARTITION_KEY_HEADER: 0})
    for i in range(299):
        await broker.publish(queue, [f"m{i}".encode()], headers={PARTITION_KEY_HEADER: 1 + i % 3})
    release = asyncio.Event()
    seen = Seen()

    async def handle(message: Message) -> None:
        if message.data == b"stuck":
            await release.wait()
        seen.add(message)

    ref, producer = await start(system, broker.url, [queue], handle, prefetch=20, concurrency=4)
    # The first delivery is held by its handler: the 299 behind it still get through, because
    # acks above it are sent once they are half the prefetch window.
    await seen.wait_for(299)
    release.set()
    await seen.wait_for(300)
    await ref.stop()
    assert producer.statistics().acked == 300
    assert await broker.count(queue) == 0
