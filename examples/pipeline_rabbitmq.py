"""A pipeline fed by RabbitMQ: orders partitioned by customer over quorum queues.

A publisher sends each customer's orders, with confirms, to one of 4 partitioned quorum queues
(single-active-consumer: one consumer per queue at a time, across processes), chosen by a BLAKE2b
hash of the customer. A pipeline consumes the 4 queues with a prefetch window, handles each
customer's orders in order, and acks each on the channel that delivered it. One order is
malformed: with ``on_failure="requeue_once"`` it is retried once, then rejected to the
dead-letter queue. Stopping the pipeline drains it: consumption stops, what is in flight is
handled and acked, then the channel closes. The queues are deleted at the end.

Needs a broker: PIANO_RABBITMQ_URL, else the machine's at 127.0.0.1:5672 (guest/guest);
`scripts/rabbitmq` starts a temporary one.

Run: .venv/bin/python examples/pipeline_rabbitmq.py
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections import defaultdict

import aio_pika
import structlog

from actors import ActorSystem
from actors.pipeline import Message, Pipeline, Processors
from actors.pipeline.rabbitmq import Publisher, RabbitMQProducer, declare_partitions

URL = os.environ.get("PIANO_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")

handled: dict[str, list[int]] = defaultdict(list)
attempts: list[int] = []
all_done = asyncio.Event()


def handle(message: Message) -> None:
    customer, number = message.data.decode().split(":")
    if number == "bad":
        assert message.metadata is not None
        attempts.append(message.metadata["delivery_count"])
        raise ValueError(f"order {message.data!r} is malformed")
    handled[customer].append(int(number))
    if sum(map(len, handled.values())) == 15:
        all_done.set()


async def main() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    prefix = f"example.orders.{uuid.uuid4().hex[:6]}"
    connection = await aio_pika.connect(URL)
    channel = await connection.channel()
    dead = await channel.declare_queue(f"{prefix}.dead", durable=True)
    queues = await declare_partitions(
        URL, prefix, 4, delivery_limit=5, dead_letter_exchange="", dead_letter_routing_key=dead.name
    )
    try:
        producer = RabbitMQProducer(URL, queues, prefetch=50, on_failure="requeue_once")
        async with ActorSystem() as system:
            ref = await system.spawn(
                Pipeline(
                    "orders",
                    producer=producer,
                    processors=Processors(handle, concurrency=3, partition_by=lambda m: m.key),
                )
            )
            async with Publisher(URL, prefix=prefix, partitions=4) as publisher:
                for number in range(5):
                    for customer in ("alice", "bob", "carol"):
                        await publisher.publish(customer, f"{customer}:{number}".encode())
                await publisher.publish("carol", b"carol:bad")
            await all_done.wait()
            rejected = None
            while rejected is None:  # the rejection reaches the dead-letter queue shortly
                rejected = await dead.get(fail=False)
                await asyncio.sleep(0.05)
            await rejected.ack()
            await ref.stop()
            stats = producer.statistics()
        for customer in sorted(handled):
            print(f"{customer}: {handled[customer]}")
        print(f"malformed order delivered {len(attempts)} times (delivery counts {attempts})")
        print(f"dead-lettered: {rejected.body.decode()}")
        print(f"acked={stats.acked} requeued={stats.requeued} rejected={stats.rejected}")
    finally:
        for queue in [*queues, dead.name]:
            await channel.queue_delete(queue)
        await connection.close()


if __name__ == "__main__":
    asyncio.run(main())
