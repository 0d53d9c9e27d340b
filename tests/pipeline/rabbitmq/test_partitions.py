"""Partitioned quorum queues across processes: client-side BLAKE2b partitioning, a publisher
that waits for confirms, and consumers in separate processes (single-active-consumer) that keep
each key's order, including when one of them is SIGKILLed mid-batch."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from actors.pipeline.rabbitmq import (
    PARTITION_KEY_HEADER,
    Publisher,
    PublishFailed,
    RabbitMQProducer,
    declare_partitions,
    partition_for,
    partition_queues,
)
from tests.pipeline.rabbitmq.conftest import Broker, until

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_partition_for_is_blake2b_of_the_key_and_the_same_in_every_process() -> None:
    digest = hashlib.blake2b(b"customer-42", digest_size=8).digest()
    assert partition_for("customer-42", 8) == int.from_bytes(digest, "big") % 8
    assert partition_for(b"customer-42", 8) == partition_for("customer-42", 8)
    spread: dict[int, int] = defaultdict(int)
    for i in range(6400):
        spread[partition_for(f"key-{i}", 8)] += 1
    assert sorted(spread) == list(range(8))
    assert all(700 <= count <= 900 for count in spread.values()), spread
    assert partition_queues("orders", 3) == ["orders.00", "orders.01", "orders.02"]
    with pytest.raises(TypeError, match="str or bytes"):
        partition_for(42, 8)  # type: ignore[arg-type]


async def test_publish_returns_after_the_confirm_and_routes_each_key_to_its_partition(
    broker: Broker,
) -> None:
    # basic.get (how the test reads) is refused on single-active-consumer queues.
    queues = await declare_partitions(broker.url, broker.name("p"), 4, single_active_consumer=False)
    broker.own(*queues)
    async with Publisher(broker.url, prefix=broker.name("p"), partitions=4) as publisher:
        await publisher.publish("alice", b"one")
        sent = await publisher.publish_many([(f"k{i}", f"{i}".encode()) for i in range(40)])
        assert sent == 40
        assert publisher.published == 41
        [alice] = await broker.take(publisher.queue_for("alice"), 1)
    assert alice.body == b"one"
    assert alice.headers[PARTITION_KEY_HEADER] == "alice"
    for queue in queues:
        for message in await broker.take(queue, await broker.count(queue)):
            key = message.headers[PARTITION_KEY_HEADER]
            assert isinstance(key, str)
            assert queues[partition_for(key, 4)] == queue


async def test_a_message_no_queue_takes_raises_publish_failed(broker: Broker) -> None:
    async with Publisher(broker.url) as publisher:
        with pytest.raises(PublishFailed, match="did not take"):
            await publisher.publish("k", b"lost?", queue=broker.name("missing"))
        await publisher.publish("k", b"kept", queue=await broker.queue("present"))


class ConsumerProcess:
    """One `consumer_process` child, driven through its stdin and stdout."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.process: asyncio.subprocess.Process | None = None

    async def start(
        self, url: str, primary: list[str], standby: list[str], *, delay: float = 0.0
    ) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.pipeline.rabbitmq.consumer_process",
            url,
            str(self.log),
            ",".join(primary),
            ",".join(standby),
            "--delay",
            str(delay),
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        await self.expect("ready")

    async def expect(self, word: str, timeout: float = 30.0) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        async with asyncio.timeout(timeout):
            line = (await self.process.stdout.readline()).decode().strip()
        assert line == word, f"consumer process said {line!r}, expected {word!r}"

    async def say(self, word: str) -> None:
        assert self.process is not None
        assert self.process.stdin is not None
        self.process.stdin.write(f"{word}\n".encode())
        await self.process.stdin.drain()

    async def stop(self) -> None:
        assert self.process is not None
        if self.process.returncode is None:
            await self.say("stop")
            await self.expect("stopped")
            assert await self.process.wait() == 0

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)

    def records(self) -> list[tuple[str, int]]:
        if not self.log.exists():
            return []
        lines = self.log.read_text().splitlines()
        return [(key, int(seq)) for key, seq in (line.split() for line in lines if line)]


def by_key(records: list[tuple[str, int]]) -> dict[str, list[int]]:
    keys: dict[str, list[int]] = defaultdict(list)
    for key, seq in records:
        keys[key].append(seq)
    return keys


async def run_two(
    broker: Broker,
    tmp_path: Path,
    partitions: int,
    keys: int,
    per_key: int,
    *,
    delay: float = 0.0,
) -> tuple[ConsumerProcess, ConsumerProcess, list[str]]:
    prefix = broker.name("parts")
    queues = await declare_partitions(broker.url, prefix, partitions, delivery_limit=5)
    broker.own(*queues)
    a, b = ConsumerProcess(tmp_path / "a.log"), ConsumerProcess(tmp_path / "b.log")
    half = partitions // 2
    await a.start(broker.url, queues[:half], queues[half:], delay=delay)
    await b.start(broker.url, queues[half:], queues[:half], delay=delay)
    for process in (a, b):
        await process.say("standby")
        await process.expect("standby")
    names = [f"key{k:02d}" for k in range(keys)]
    async with Publisher(broker.url, prefix=prefix, partitions=partitions) as publisher:
        await publisher.publish_many(
            (name, f"{name}:{seq}".encode()) for seq in range(per_key) for name in names
        )
    return a, b, names


async def test_10000_messages_over_64_keys_through_two_consumer_processes_keep_per_key_order(
    broker: Broker, tmp_path: Path
) -> None:
    per_key = 157  # 64 * 157 = 10,048 messages
    a, b, names = await run_two(broker, tmp_path, 4, 64, per_key)
    try:
        await until(
            lambda: len(a.records()) + len(b.records()) >= 64 * per_key,
            120,
            "both consumers to handle every message",
        )
    finally:
        await a.stop()
        await b.stop()
    a_keys, b_keys = by_key(a.records()), by_key(b.records())
    assert a_keys, "each process had its own partitions"
    assert b_keys, "each process had its own partitions"
    assert not set(a_keys) & set(b_keys), "a key was handled by both processes"
    for name in names:
        assert (a_keys.get(name) or b_keys.get(name)) == list(range(per_key)), name


async def test_a_sigkilled_consumers_partitions_fail_over_to_the_survivor_in_key_order(
    broker: Broker, tmp_path: Path
) -> None:
    per_key = 100
    a, b, names = await run_two(broker, tmp_path, 4, 16, per_key, delay=0.002)
    try:
        await until(lambda: len(a.records()) >= 200, 60, "the first consumer to be mid-run")
        a.kill()
        assert a.process is not None
        assert await a.process.wait() == -signal.SIGKILL
        await until(
            lambda: (
                set(a.records()) | set(b.records())
                >= {(name, seq) for name in names for seq in range(per_key)}
            ),
            120,
            "the survivor to handle everything the killed one left",
        )
    finally:
        await b.stop()
    a_keys, b_keys = by_key(a.records()), by_key(b.records())
    taken_over = [name for name in names if name in a_keys and name in b_keys]
    assert taken_over, "the survivor took over the killed consumer's partitions"
    for name in names:
        before, after = a_keys.get(name, []), b_keys.get(name, [])
        # Each process handled a key's messages in order, without gaps; the survivor started
        # at most where the killed one had got to (redelivering what it had not acked).
        assert before == list(range(len(before))), (name, before)
        if after:
            assert after == list(range(after[0], per_key)), (name, after)
            assert after[0] <= len(before), (name, len(before), after[0])
        else:
            assert before == list(range(per_key))
    duplicates = sum(len(a_keys[n]) + len(b_keys.get(n, [])) - per_key for n in a_keys)
    assert duplicates <= 4 * 50, "only unacked deliveries (prefetch per queue) were redone"
    os.unlink(a.log)


def test_bad_options_raise_at_construction_naming_the_option() -> None:
    url = "amqp://guest:guest@127.0.0.1:5672/"
    with pytest.raises(ValueError, match="queues must be a sequence of queue names"):
        RabbitMQProducer(url, "orders")
    with pytest.raises(ValueError, match="prefetch must be a positive integer"):
        RabbitMQProducer(url, ["q"], prefetch=0)
    with pytest.raises(ValueError, match="on_failure must be one of"):
        RabbitMQProducer(url, ["q"], on_failure="drop")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"reconnect must be an actors\.Backoff"):
        RabbitMQProducer(url, ["q"], reconnect=1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="url must be an AMQP URL"):
        Publisher("")
    with pytest.raises(ValueError, match="partitions must be an integer from 1 to 1000"):
        Publisher(url, prefix="p", partitions=0)
    with pytest.raises(ValueError, match="no partitions"):
        Publisher(url).queue_for("k")
    assert "guest:***@" in repr(RabbitMQProducer("amqp://guest:s3cret@127.0.0.1/", ["q"]))
