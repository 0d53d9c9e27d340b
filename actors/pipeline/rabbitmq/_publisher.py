"""The publishing half: partitioned quorum queues, and a publisher that waits for confirms.

```python
queues = await declare_partitions(url, "orders", 8, delivery_limit=5, dead_letter_exchange="dlx")
async with Publisher(url, prefix="orders", partitions=8) as publisher:
    await publisher.publish("customer-42", b"...")         # returns once the broker confirms
    await publisher.publish_many([("customer-7", b"..."), ("customer-42", b"...")])
```

`declare_partitions` declares P durable quorum queues ``prefix.00`` … with single-active-consumer
(the broker delivers each queue to one consumer at a time, across every process, and hands it to
a standby when that consumer's channel goes) and ``x-delivery-limit`` (a message returned more
than that many times is dead-lettered, or dropped without a dead-letter exchange, instead of
looping; with a limit set, a returned message also keeps its place at the head of the queue).
Quorum, not classic: classic-queue single-active-consumer crashed on failover in 3.10/3.11.

`Publisher.publish(key, body)` sends the message to queue ``partition_for(key, P)`` with the key
in the `PARTITION_KEY_HEADER` header, persistent and mandatory, and returns when the broker has
confirmed it (raises `PublishFailed` if the broker nacked or could not route it: nothing is
silently lost). Concurrent `publish` calls share one channel and are pipelined, so their confirms
come back in batches; `publish_many` sends a list in windows of `window` messages and waits for
each window's confirms together. Messages of one key published by one coroutine reach their
queue in order, so one consumer at a time sees each key's messages in publish order.
If the connection is gone, the next publish reconnects (once); a publish that was in flight
when it went raises, and its message may or may not have been queued: publish again (the
consumer must tolerate the duplicate, as it tolerates redeliveries).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from actors.pipeline._options import positive_int
from actors.pipeline.rabbitmq._amqp import aio_pika, aiormq, redact
from actors.pipeline.rabbitmq._partitions import (
    PARTITION_KEY_HEADER,
    partition_for,
    partition_queues,
)

__all__ = ["PublishFailed", "Publisher", "declare_partitions"]


class PublishFailed(Exception):
    """The broker did not take a message (nacked, or no queue to route it to)."""


async def declare_partitions(
    url: str,
    prefix: str,
    partitions: int,
    *,
    delivery_limit: int | None = 5,
    dead_letter_exchange: str | None = None,
    dead_letter_routing_key: str | None = None,
    single_active_consumer: bool = True,
) -> list[str]:
    """Declare the partitioned quorum queues (idempotent with the same arguments); their names.

    Declaring an existing queue with different arguments fails (RabbitMQ's
    ``PRECONDITION_FAILED``): P and the arguments are fixed for the queues' life."""
    if delivery_limit is not None:
        positive_int("delivery_limit", delivery_limit)
    names = partition_queues(prefix, partitions)
    arguments: dict[str, Any] = {"x-queue-type": "quorum"}
    if single_active_consumer:
        arguments["x-single-active-consumer"] = True
    if delivery_limit is not None:
        arguments["x-delivery-limit"] = delivery_limit
    if dead_letter_exchange is not None:
        arguments["x-dead-letter-exchange"] = dead_letter_exchange
    if dead_letter_routing_key is not None:
        arguments["x-dead-letter-routing-key"] = dead_letter_routing_key
    connection = await aio_pika.connect(url, timeout=10)
    try:
        channel = await connection.channel()
        for name in names:
            await channel.declare_queue(name, durable=True, arguments=arguments)
    finally:
        await connection.close()
    return names


class Publisher:
    """Publishes to partitioned queues with confirms; see the module documentation.

    Without `prefix`, `publish` needs an explicit `queue=` (one plain queue)."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str | None = None,
        partitions: int = 1,
        key_header: str = PARTITION_KEY_HEADER,
        window: int = 256,
        persistent: bool = True,
    ) -> None:
        if not isinstance(url, str) or not url:
            raise ValueError("url must be an AMQP URL such as amqp://user:pass@127.0.0.1:5672/")
        positive_int("window", window)
        self.url = url
        self.queues = partition_queues(prefix, partitions) if prefix is not None else []
        self.partitions = partitions
        self.key_header = key_header
        self.window = window
        self.delivery_mode = (
            aio_pika.DeliveryMode.PERSISTENT if persistent else aio_pika.DeliveryMode.NOT_PERSISTENT
        )
        self._connection: aio_pika.abc.AbstractConnection | None = None
        self._exchange: aio_pika.abc.AbstractExchange | None = None
        self._lock = asyncio.Lock()
        self.published = 0

    def __repr__(self) -> str:
        return f"<Publisher {redact(self.url)} partitions={self.partitions}>"

    async def __aenter__(self) -> Publisher:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def queue_for(self, key: str | bytes) -> str:
        """The queue a key's messages go to."""
        if not self.queues:
            raise ValueError("this Publisher has no partitions: pass queue= to publish")
        return self.queues[partition_for(key, len(self.queues))]

    async def connect(self) -> None:
        """Open the connection and a confirming channel (publish does it when needed)."""
        await self._ready()

    async def close(self) -> None:
        connection, self._connection, self._exchange = self._connection, None, None
        if connection is not None and not connection.is_closed:
            await connection.close()

    async def _ready(self) -> aio_pika.abc.AbstractExchange:
        exchange = self._exchange
        connection = self._connection
        if exchange is not None and connection is not None and not connection.is_closed:
            return exchange
        async with self._lock:
            if self._exchange is not None and self._connection is not None:
                if not self._connection.is_closed:
                    return self._exchange
                await self.close()
            connection = await aio_pika.connect(self.url, timeout=10)
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            self._connection, self._exchange = connection, channel.default_exchange
            return channel.default_exchange

    def _message(self, key: str | bytes, body: bytes, headers: dict[str, Any] | None) -> Any:
        if not isinstance(body, bytes | bytearray | memoryview):
            raise TypeError(f"a message body must be bytes, got {type(body).__name__}")
        text = key.decode(errors="replace") if isinstance(key, bytes) else key
        return aio_pika.Message(
            bytes(body),
            headers={**(headers or {}), self.key_header: text},
            delivery_mode=self.delivery_mode,
        )

    async def publish(
        self,
        key: str | bytes,
        body: bytes,
        *,
        headers: dict[str, Any] | None = None,
        queue: str | None = None,
    ) -> None:
        """Publish one message to its key's partition (or `queue`) and wait for the confirm."""
        routing = queue if queue is not None else self.queue_for(key)
        message = self._message(key, body, headers)
        exchange = await self._ready()
        await self._send(exchange, message, routing)

    async def publish_many(
        self, items: Iterable[tuple[str | bytes, bytes]], *, queue: str | None = None
    ) -> int:
        """Publish `(key, body)` pairs in order, `window` at a time, each window confirmed
        before the next is sent; how many were published."""
        batch = [
            (self._message(key, body, None), queue if queue is not None else self.queue_for(key))
            for key, body in items
        ]
        exchange = await self._ready()
        for start in range(0, len(batch), self.window):
            window = batch[start : start + self.window]
            results = await asyncio.gather(
                *(self._send(exchange, message, routing) for message, routing in window),
                return_exceptions=True,
            )
            for result in results:
                if isinstance(result, BaseException):
                    raise result
        return len(batch)

    async def _send(
        self, exchange: aio_pika.abc.AbstractExchange, message: Any, routing: str
    ) -> None:
        try:
            confirmation = await exchange.publish(message, routing_key=routing, mandatory=True)
        except aio_pika.exceptions.DeliveryError as exc:
            raise PublishFailed(
                f"the broker did not take a message for {routing!r}: {exc}"
            ) from exc
        if not isinstance(confirmation, aiormq.spec.Basic.Ack):
            raise PublishFailed(f"the broker nacked a message for {routing!r}: {confirmation!r}")
        self.published += 1
