"""RabbitMQ: a consume→ack loop through a pipeline against a bare aio-pika consumer, and the
partitioned publish rate with confirms.

Needs a broker: ``PIANO_RABBITMQ_URL``, else the machine's at 127.0.0.1:5672 (`scripts/rabbitmq`
starts a temporary one). Queues are uniquely named and deleted afterwards.

Workloads (contenders measured interleaved round by round; medians, [min, max] beside them):
- ``consume_ack_classic`` / ``consume_ack_quorum``: N messages are published (outside the
  timing) to a fresh queue of that type, then consumed with prefetch 200 until every one has
  been handled and its ack written. piano: a `Pipeline` with `RabbitMQProducer` and 4
  processors partitioned by key (a no-op handler); raw_asyncio: a bare aio-pika consumer whose
  callback awaits ``message.ack()`` (manual acks). Target: piano ≥ 0.8x.
- ``publish_partitioned``: N messages over 64 keys to 8 partitioned quorum queues
  (single-active-consumer, delivery limit) with publisher confirms. piano:
  `Publisher.publish_many` (windows of 256 confirmed together); raw_asyncio: aio-pika publishes
  awaited one by one, each waiting for its confirm (the naive loop).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import aio_pika

from actors import ActorSystem
from actors.pipeline import Message, Pipeline, Processors
from actors.pipeline.rabbitmq import (
    Publisher,
    RabbitMQProducer,
    declare_partitions,
    partition_for,
)
from bench.harness import Options, comparison, medians, sample_rounds, spread

__all__ = ["run"]

PREFETCH = 200
KEYS = [f"key{i:02d}" for i in range(64)]


def _url() -> str:
    return os.environ.get("PIANO_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")


async def _declare(name: str, quorum: bool) -> None:
    connection = await aio_pika.connect(_url())
    async with connection:
        channel = await connection.channel()
        arguments: dict[str, Any] = {"x-queue-type": "quorum"} if quorum else {}
        await channel.declare_queue(name, durable=True, arguments=arguments)


async def _delete(*names: str) -> None:
    connection = await aio_pika.connect(_url())
    async with connection:
        channel = await connection.channel()
        for name in names:
            await channel.queue_delete(name)


async def _fill(queue: str, count: int) -> None:
    async with Publisher(_url()) as publisher:
        await publisher.publish_many(
            ((KEYS[i % 64], b"x" * 100) for i in range(count)), queue=queue
        )


async def _pipeline_consume(queue: str, count: int) -> float:
    done = asyncio.Event()
    handled = 0

    def handle(message: Message) -> None:
        nonlocal handled
        handled += 1

    async with ActorSystem() as system:
        start = time.perf_counter()
        producer = RabbitMQProducer(_url(), [queue], prefetch=PREFETCH)

        def check() -> None:
            if producer.acked >= count:
                done.set()

        def chunk_done(event: tuple[str, ...], measured: Any, metadata: Any) -> None:
            # Telemetry comes just before the chunk is acknowledged: check right after.
            asyncio.get_running_loop().call_soon(check)

        ref = await system.spawn(
            Pipeline(
                "bench",
                producer=producer,
                processors=Processors(handle, concurrency=4, partition_by=lambda m: m.key),
                telemetry=chunk_done,
            )
        )
        await done.wait()
        elapsed = time.perf_counter() - start
        await ref.stop()
    assert handled == count
    return count / elapsed


async def _bare_consume(queue: str, count: int) -> float:
    done = asyncio.Event()
    handled = 0
    start = time.perf_counter()
    connection = await aio_pika.connect(_url())
    async with connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=PREFETCH)
        declared = await channel.get_queue(queue)

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal handled
            await message.ack()
            handled += 1
            if handled == count:
                done.set()

        await declared.consume(on_message)
        await done.wait()
        elapsed = time.perf_counter() - start
    return count / elapsed


def _consume(
    count: int, quorum: bool, consumer: Callable[[str, int], Any], cpu: list[float]
) -> Callable[[], float]:
    """Measure one consume of `count` messages: the rate (returned) and this process's CPU
    time per message in µs (appended to `cpu`: what the client costs, whatever the broker's
    share of the shared cores)."""

    def measure() -> float:
        async def once() -> float:
            queue = f"bench.rabbitmq.{uuid.uuid4().hex[:8]}"
            await _declare(queue, quorum)
            try:
                await _fill(queue, count)
                before = time.process_time()
                rate: float = await consumer(queue, count)
                cpu.append((time.process_time() - before) / count * 1e6)
                return rate
            finally:
                await _delete(queue)

        return asyncio.run(once())

    return measure


def _publish(count: int, naive: bool) -> Callable[[], float]:
    def measure() -> float:
        async def once() -> float:
            prefix = f"bench.rabbitmq.{uuid.uuid4().hex[:8]}"
            queues = await declare_partitions(_url(), prefix, 8, delivery_limit=5)
            items = [(KEYS[i % 64], b"x" * 100) for i in range(count)]
            try:
                if naive:
                    connection = await aio_pika.connect(_url())
                    async with connection:
                        channel = await connection.channel(publisher_confirms=True)
                        exchange = channel.default_exchange
                        start = time.perf_counter()
                        for key, body in items:
                            await exchange.publish(
                                aio_pika.Message(body, headers={"partition-key": key}),
                                routing_key=queues[partition_for(key, 8)],
                            )
                        elapsed = time.perf_counter() - start
                else:
                    async with Publisher(_url(), prefix=prefix, partitions=8) as publisher:
                        start = time.perf_counter()
                        await publisher.publish_many(items)
                        elapsed = time.perf_counter() - start
                return count / elapsed
            finally:
                await _delete(*queues)

        return asyncio.run(once())

    return measure


def run(options: Options) -> Iterator[dict[str, Any]]:
    count = 500 if options.quick else 20_000
    for quorum in (False, True):
        workload = f"consume_ack_{'quorum' if quorum else 'classic'}"
        if not options.wants(workload):
            continue
        cpu: dict[str, list[float]] = {"piano": [], "raw_asyncio": []}
        samples = sample_rounds(
            options.rounds,
            {
                "piano": _consume(count, quorum, _pipeline_consume, cpu["piano"]),
                "raw_asyncio": _consume(count, quorum, _bare_consume, cpu["raw_asyncio"]),
            },
        )
        cpu_us = {name: round(statistics.median(v), 1) for name, v in cpu.items() if v}
        yield comparison(
            "rabbitmq",
            workload,
            "msg/s",
            medians(samples),
            min_vs_raw=0.8,
            spread=spread(samples),
            messages=count,
            prefetch=PREFETCH,
            client_cpu_us_per_msg=cpu_us,
            baseline="bare aio-pika consumer awaiting message.ack()",
        )
    if options.wants("publish_partitioned"):
        count = 200 if options.quick else 5_000  # the naive baseline manages ~200/s
        samples = sample_rounds(
            options.rounds, {"piano": _publish(count, False), "raw_asyncio": _publish(count, True)}
        )
        yield comparison(
            "rabbitmq",
            "publish_partitioned",
            "msg/s",
            medians(samples),
            spread=spread(samples),
            messages=count,
            partitions=8,
            keys=64,
            baseline="aio-pika publishes awaited one by one, each confirmed",
        )
