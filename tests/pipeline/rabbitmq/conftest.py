"""Shared pieces of the RabbitMQ tests: the broker's URL, a `Broker` helper that declares uniquely
named queues and deletes them afterwards (tests never touch anyone else's data), and a TCP
proxy that can cut every connection through it (the network going away).

The broker is ``PIANO_RABBITMQ_URL`` (set by `scripts/test`, which starts a temporary node when
none runs here), else the machine's own at 127.0.0.1:5672 with guest/guest. If neither answers,
the tests fail with how to get one."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import pytest

from actors import ActorSystem
from tests.actors.conftest import anyio_backend

__all__ = ["Broker", "Proxy", "amqp_url", "anyio_backend", "broker", "system", "until"]

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/"


def _reachable(url: str) -> bool:
    parsed = aio_pika.connection.make_url(url)
    try:
        with socket.create_connection((parsed.host or "127.0.0.1", parsed.port or 5672), 2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def amqp_url() -> str:
    url = os.environ.get("PIANO_RABBITMQ_URL", DEFAULT_URL)
    if not _reachable(url):
        pytest.fail(
            f"no RabbitMQ answers at {aio_pika.connection.make_url(url).with_password('***')}: "
            "run the tests through scripts/test (it starts a temporary node, installing the "
            "Debian package rabbitmq-server if needed: apt-get install rabbitmq-server), or "
            "set PIANO_RABBITMQ_URL"
        )
    return url


@pytest.fixture
async def system() -> AsyncIterator[ActorSystem]:
    async with ActorSystem() as system:
        yield system


class Broker:
    """Declares queues and exchanges under a unique prefix and deletes them at the end."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.prefix = f"piano-test.{uuid.uuid4().hex[:10]}"
        self.queues: list[str] = []
        self.exchanges: list[str] = []
        self.connection: aio_pika.abc.AbstractConnection | None = None
        self.channel: aio_pika.abc.AbstractChannel | None = None

    async def open(self) -> None:
        self.connection = await aio_pika.connect(self.url)
        self.channel = await self.connection.channel()

    def name(self, suffix: str) -> str:
        return f"{self.prefix}.{suffix}"

    def own(self, *queues: str) -> None:
        """Delete these queues (declared elsewhere) at the end too."""
        self.queues.extend(queues)

    async def queue(
        self,
        suffix: str,
        *,
        quorum: bool = False,
        dead_letter_to: str | None = None,
        delivery_limit: int | None = None,
    ) -> str:
        assert self.channel is not None
        name = self.name(suffix)
        arguments: dict[str, Any] = {}
        if quorum:
            arguments["x-queue-type"] = "quorum"
        if dead_letter_to is not None:
            arguments["x-dead-letter-exchange"] = ""
            arguments["x-dead-letter-routing-key"] = dead_letter_to
        if delivery_limit is not None:
            arguments["x-delivery-limit"] = delivery_limit
        await self.channel.declare_queue(name, durable=True, arguments=arguments)
        self.queues.append(name)
        return name

    async def publish(
        self, queue: str, bodies: list[bytes], headers: dict[str, Any] | None = None
    ) -> None:
        assert self.channel is not None
        for body in bodies:
            await self.channel.default_exchange.publish(
                aio_pika.Message(body, headers=headers), routing_key=queue
            )

    async def count(self, queue: str) -> int:
        """Messages ready in `queue` (not counting deliveries held unacked by a consumer)."""
        assert self.channel is not None
        declared = await self.channel.declare_queue(queue, passive=True)
        count = declared.declaration_result.message_count
        assert count is not None
        return count

    async def take(
        self, queue: str, expected: int, timeout: float = 10.0
    ) -> list[aio_pika.abc.AbstractIncomingMessage]:
        """Get and ack `expected` messages of `queue`, waiting up to `timeout` for them to
        arrive (a dead-lettered message may take a moment)."""
        assert self.channel is not None
        got: list[aio_pika.abc.AbstractIncomingMessage] = []
        declared = await self.channel.get_queue(queue)
        async with asyncio.timeout(timeout):
            while len(got) < expected:
                message = await declared.get(fail=False)
                if message is None:
                    await asyncio.sleep(0.02)  # polling the broker, not synchronising tasks
                    continue
                await message.ack()
                got.append(message)
        return got

    async def close(self) -> None:
        if self.connection is None:
            return
        with contextlib.suppress(Exception):
            channel = await self.connection.channel()
            for queue in self.queues:
                await channel.queue_delete(queue)
            for exchange in self.exchanges:
                await channel.exchange_delete(exchange)
        await self.connection.close()


@pytest.fixture
async def broker(amqp_url: str) -> AsyncIterator[Broker]:
    made = Broker(amqp_url)
    await made.open()
    try:
        yield made
    finally:
        await made.close()


class Proxy:
    """A TCP forwarder to the broker whose connections `cut()` drops at once."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.port = 0
        self.connections = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    def url(self, url: str) -> str:
        return str(aio_pika.connection.make_url(url).with_host("127.0.0.1").with_port(self.port))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self.writers.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self.writers.difference_update((writer, up_writer))

    def cut(self) -> None:
        for writer in list(self.writers):
            writer.transport.abort()
        self.writers.clear()

    async def close(self) -> None:
        self.cut()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


async def until(predicate: Any, timeout: float, what: str) -> None:
    """Wait for a condition on something outside this process (a file another process writes,
    the broker's state), checking every 20 ms; fail naming `what` after `timeout` seconds.
    `predicate` may be a coroutine function (a question to the broker)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    for _ in iter(int, 1):
        holds = predicate()
        if inspect.isawaitable(holds):
            holds = await holds
        if holds:
            return
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(0.02)
