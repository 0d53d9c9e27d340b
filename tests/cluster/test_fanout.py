"""Live events between nodes (`piano.cluster.Fanout`), against the machine's real RabbitMQ and a
real SQLite store: two nodes in one process, each an actor system of its own with its own node
id and subscriptions. What one node's store commits reaches the other's surfaces in order and
once, never comes back to its own; a node that falls behind loses the oldest messages (its
queue is bounded) and reads what it missed from the store; a dropped connection or a restarted
broker is reconnected and what was missed meanwhile is read from the store; a malformed message
is logged and dropped."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
import pytest
import structlog

from actors import (
    NOREPLY,
    ActorRef,
    ActorSystem,
    Backoff,
    Caller,
    Registry,
    resume,
    statistics,
    suspend,
)
from actors.pipeline import push_many
from piano.cluster import (
    FANOUT,
    Committed,
    Fanout,
    FanoutStatistics,
    WaitConnected,
    fanout_publisher,
)
from piano.events import EVENTS, event_pipeline
from piano.store import (
    STORE,
    CreateThread,
    StoreReader,
    StoreWriter,
    UpsertAgent,
    UpsertSurface,
    WriteBatch,
)
from piano.surfaces import ALL_THREADS, Surface, subscribe
from schemas.events import Notice, ThreadEvent
from schemas.fanout import ORIGIN_HEADER
from tests.pipeline.rabbitmq.conftest import Broker, Proxy, until
from tests.pipeline.rabbitmq.node import TemporaryNode

pytestmark = pytest.mark.anyio

THREADS = ("t1", "t2", "t3")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Seen(Surface):
    """A surface that records every event delivered to it; `Until(n)` answers once it has n."""

    def __init__(self) -> None:
        self.events: list[ThreadEvent] = []
        self.waiters: list[tuple[int, Caller]] = []

    def on_event(self, message: ThreadEvent) -> None:
        self.events.append(message)
        self.waiters = [(n, c) for n, c in self.waiters if not self._answer(n, c)]

    def _answer(self, n: int, caller: Caller) -> bool:
        if len(self.events) >= n:
            caller.reply(list(self.events))
            return True
        return False

    async def handle_call(self, message: Any, caller: Caller) -> Any:
        match message:
            case ("until", int() as n):
                if not self._answer(n, caller):
                    self.waiters.append((n, caller))
                return NOREPLY
        return await super().handle_call(message, caller)


@dataclass
class Node:
    system: ActorSystem
    fanout: ActorRef
    seen: ActorRef
    subscriptions: Registry

    async def until(self, n: int) -> list[ThreadEvent]:
        """The events this node's surface has seen, once it has seen `n`."""
        events: list[ThreadEvent] = await self.seen.call(("until", n), timeout=30)
        return events

    def stats(self) -> FanoutStatistics:
        found = statistics(self.fanout, FanoutStatistics)
        assert found is not None
        return found


async def _store(system: ActorSystem, database: Path) -> ActorRef:
    store = await system.spawn(StoreWriter(database), name=STORE)
    for write in (UpsertSurface("web", "web"), UpsertAgent("codex", "codex")):
        await store.call(write, timeout=10)
    for thread in THREADS:
        await store.call(CreateThread(thread, "web", f"tab:{thread}", "codex"), timeout=10)
    return store


async def _node(
    system: ActorSystem, url: str, node_id: str, prefix: str, database: Path, **options: Any
) -> Node:
    subscriptions = Registry(keys="duplicate")
    seen = await system.spawn(Seen())
    subscribe(subscriptions, ALL_THREADS, seen)
    options.setdefault("reconnect", Backoff(initial=0.05, cap=0.5))
    fanout = await system.spawn(
        Fanout(
            url,
            node_id=node_id,
            exchange=f"{prefix}.events",
            subscriptions=subscriptions,
            reader=lambda: StoreReader(database),
            **options,
        ),
        name=FANOUT,
    )
    await fanout.call(WaitConnected(), timeout=30)
    return Node(system, fanout, seen, subscriptions)


async def _commit(store: ActorRef, node: Node, thread: str, seq: int) -> None:
    """Node's store commits event `seq` of `thread`; its fan-out is told, as by the pipeline
    (a send: it never waits for the broker)."""
    event = _notice(thread, seq)
    await store.call(WriteBatch([event], [seq]), timeout=10)
    node.fanout.send(Committed([event], [seq]))


def _notice(thread: str, n: int) -> Notice:
    return Notice(thread_id=thread, level="info", message=f"{thread}-{n}")


def _messages(events: list[ThreadEvent], thread: str | None = None) -> list[str]:
    return [e.message for e in events if isinstance(e, Notice) and thread in (None, e.thread_id)]


@pytest.fixture
async def systems() -> AsyncIterator[tuple[ActorSystem, ActorSystem]]:
    async with ActorSystem() as a, ActorSystem() as b:
        yield a, b


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "piano.db"


async def test_a_threads_events_reach_the_other_node_in_order_and_never_come_back(
    systems: tuple[ActorSystem, ActorSystem], broker: Broker, database: Path, amqp_url: str
) -> None:
    system_a, system_b = systems
    broker.exchanges.append(f"{broker.prefix}.events")
    await _store(system_a, database)
    a = await _node(system_a, amqp_url, "node-a", broker.prefix, database)
    pipeline = await system_a.spawn(
        event_pipeline(
            a.subscriptions,
            lambda: system_a.whereis(STORE),
            committed=fanout_publisher(lambda: system_a),
        ),
        name=EVENTS,
    )
    b = await _node(system_b, amqp_url, "node-b", broker.prefix, database)

    sent = [_notice(thread, n) for n in range(100) for thread in THREADS]
    for start in range(0, len(sent), 7):  # many batches, threads interleaved
        await push_many(pipeline, sent[start : start + 7])
    on_b = await b.until(len(sent))
    for thread in THREADS:
        assert _messages(on_b, thread) == [f"{thread}-{n}" for n in range(100)]
    assert len(on_b) == len(sent)

    # b says something of its own: once a has shown it, a has read past its own messages
    b.fanout.send(Committed([_notice("t1", 1000)], [101]))
    on_a = await a.until(len(sent) + 1)
    assert len(on_a) == len(sent) + 1  # its own events once: locally, never from the broker
    assert _messages(on_a, "t1") == [f"t1-{n}" for n in range(100)] + ["t1-1000"]
    stats_a = a.stats()
    assert stats_a.own == stats_a.published > 0
    assert stats_a.shown == 1
    assert b.stats().own == 1
    await pipeline.stop(timeout=10)


async def test_a_node_that_falls_behind_loses_the_oldest_and_reads_the_gap_from_the_store(
    systems: tuple[ActorSystem, ActorSystem], broker: Broker, database: Path, amqp_url: str
) -> None:
    system_a, system_b = systems
    broker.exchanges.append(f"{broker.prefix}.events")
    store = await _store(system_a, database)
    a = await _node(system_a, amqp_url, "node-a", broker.prefix, database)
    b = await _node(
        system_b, amqp_url, "node-b", broker.prefix, database, queue_length=5, prefetch=2
    )
    assert b.stats().queue is not None
    watch = await broker.queue("watch")  # sees what b's queue is sent
    assert broker.channel is not None
    await (await broker.channel.get_queue(watch)).bind(f"{broker.prefix}.events", "#")

    await suspend(b.fanout)  # b stops reading: two deliveries wait unacknowledged
    total = 50
    for seq in range(1, total + 1):
        await _commit(store, a, "t1", seq)

    async def routed() -> bool:  # a's channel routes each message to both queues at once
        return await broker.count(watch) == total

    await until(routed, 30, "every message of a routed")
    await resume(b.fanout)

    on_b = await b.until(total)
    assert _messages(on_b) == [f"t1-{n}" for n in range(1, total + 1)]  # each once, in order
    stats = b.stats()
    assert stats.received < total  # the broker dropped the oldest (its queue holds 5)
    assert stats.gaps >= 1
    assert stats.filled >= total - stats.received  # what it never got came from the store
    assert stats.shown == total


class ClosableProxy(Proxy):
    """A proxy that can also stop accepting connections (the broker unreachable) and start
    again on the same port."""

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port or 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def refuse(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()
        self.cut()


@pytest.fixture
async def proxy(amqp_url: str) -> AsyncIterator[ClosableProxy]:
    """A started `ClosableProxy` to the broker, closed after the test."""
    parsed = aio_pika.connection.make_url(amqp_url)
    made = ClosableProxy(parsed.host or "127.0.0.1", parsed.port or 5672)
    await made.start()
    try:
        yield made
    finally:
        await made.close()


async def test_a_dropped_connection_reconnects_and_what_was_missed_is_read_from_the_store(
    systems: tuple[ActorSystem, ActorSystem],
    broker: Broker,
    database: Path,
    amqp_url: str,
    proxy: ClosableProxy,
) -> None:
    system_a, system_b = systems
    broker.exchanges.append(f"{broker.prefix}.events")
    store = await _store(system_a, database)
    a = await _node(system_a, amqp_url, "node-a", broker.prefix, database)
    with structlog.testing.capture_logs() as logs:
        b = await _node(system_b, proxy.url(amqp_url), "node-b", broker.prefix, database)

        for seq in range(1, 6):
            await _commit(store, a, "t2", seq)
        await b.until(5)
        await proxy.refuse()  # b's connection and its queue are gone
        for seq in range(6, 11):
            await _commit(store, a, "t2", seq)
        await until(lambda: a.stats().published == 10, 30, "a publishing")
        await proxy.start()
        await b.fanout.call(WaitConnected(2), timeout=30)
        on_b = await b.until(10)  # nothing more is published: the catch-up reads it

    assert _messages(on_b) == [f"t2-{n}" for n in range(1, 11)]
    assert b.stats().connections == 2
    outages = [entry for entry in logs if entry["event"] == "cluster.fanout_unavailable"]
    assert len(outages) == 1
    assert "guest:guest" not in str(logs)  # the broker's password is never logged


async def test_a_broker_restart_is_one_outage_and_events_flow_again_after_it(
    systems: tuple[ActorSystem, ActorSystem], database: Path, tmp_path: Path
) -> None:
    node = TemporaryNode(tmp_path)
    await node.start()
    try:
        system_a, system_b = systems
        store = await _store(system_a, database)
        with structlog.testing.capture_logs() as logs:
            a = await _node(system_a, node.url, "node-a", "restart", database)
            b = await _node(system_b, node.url, "node-b", "restart", database)
            fanout_b = b.fanout
            await _commit(store, a, "t3", 1)
            await b.until(1)

            await node.stop(signal.SIGKILL)
            await node.start()
            await a.fanout.call(WaitConnected(2), timeout=60)
            await b.fanout.call(WaitConnected(2), timeout=60)
            await _commit(store, a, "t3", 2)
            on_b = await b.until(2)
    finally:
        await node.stop(signal.SIGKILL)

    assert _messages(on_b) == ["t3-1", "t3-2"]
    assert system_b.whereis(FANOUT) == fanout_b  # the same actor: never crashed
    connected = [e for e in logs if e["event"] == "cluster.fanout_connected"]
    assert len(connected) == 4  # each node twice
    outages = [entry for entry in logs if entry["event"] == "cluster.fanout_unavailable"]
    assert len(outages) == 2  # one per node


async def test_a_malformed_message_is_logged_and_dropped_and_the_next_one_shown(
    systems: tuple[ActorSystem, ActorSystem], broker: Broker, database: Path, amqp_url: str
) -> None:
    _, system_b = systems
    broker.exchanges.append(f"{broker.prefix}.events")
    b = await _node(system_b, amqp_url, "node-b", broker.prefix, database)
    assert broker.channel is not None
    exchange = await broker.channel.get_exchange(f"{broker.prefix}.events")
    good = b'{"origin":"x","thread_id":"t1","seqs":[1],"events":[' + (
        b'{"type":"notice","thread_id":"t1","level":"info","message":"fine"}]}'
    )
    messages = [
        (b"not json", "x"),
        (b'{"origin":"x","thread_id":"t1","seqs":[1,2],"events":[]}', "x"),
        (good.replace(b'"thread_id":"t1","level"', b'"thread_id":"t9","level"'), "x"),
        (good, "node-b"),  # its own: skipped unread
        (good, "x"),
    ]
    with structlog.testing.capture_logs() as logs:
        for body, origin in messages:
            await exchange.publish(
                aio_pika.Message(body, headers={ORIGIN_HEADER: origin}), routing_key="t1"
            )
        on_b = await b.until(1)
    assert _messages(on_b) == ["fine"]
    stats = b.stats()
    assert (stats.bad, stats.own, stats.received) == (3, 1, 1)
    bad = [entry for entry in logs if entry["event"] == "cluster.fanout_bad_message"]
    assert len(bad) == 3
    assert all(entry["origin"] == "x" for entry in bad)


async def test_a_thread_that_moves_here_and_back_is_no_gap_and_its_repeats_are_dropped(
    systems: tuple[ActorSystem, ActorSystem], broker: Broker, database: Path, amqp_url: str
) -> None:
    system_a, system_b = systems
    broker.exchanges.append(f"{broker.prefix}.events")
    a = await _node(system_a, amqp_url, "node-a", broker.prefix, database)
    b = await _node(system_b, amqp_url, "node-b", broker.prefix, database)
    # b ran t1 first (its surfaces saw 1-3 locally), then a took it over and continues at 4
    b.fanout.send(Committed([_notice("t1", n) for n in (1, 2, 3)], [1, 2, 3]))
    a.fanout.send(Committed([_notice("t1", n) for n in (2, 3)], [2, 3]))  # a repeat
    a.fanout.send(Committed([_notice("t1", n) for n in (4, 5)], [4, 5]))
    on_b = await b.until(2)
    assert _messages(on_b) == ["t1-4", "t1-5"]
    stats = b.stats()
    assert (stats.gaps, stats.duplicates, stats.shown) == (0, 2, 2)


async def test_a_gap_the_store_cannot_fill_is_one_log_line_and_the_events_after_it_are_shown(
    systems: tuple[ActorSystem, ActorSystem], broker: Broker, tmp_path: Path, amqp_url: str
) -> None:
    system_a, system_b = systems
    broker.exchanges.append(f"{broker.prefix}.events")
    unreadable = tmp_path / "not-a-database"
    unreadable.mkdir()  # a directory: every read of the store fails
    a = await _node(system_a, amqp_url, "node-a", broker.prefix, unreadable)
    b = await _node(system_b, amqp_url, "node-b", broker.prefix, unreadable)
    with structlog.testing.capture_logs() as logs:
        a.fanout.send(Committed([_notice("t1", 1)], [1]))
        a.fanout.send(Committed([_notice("t1", 3), _notice("t1", 4)], [3, 4]))  # 2 is lost
        on_b = await b.until(3)
    assert _messages(on_b) == ["t1-1", "t1-3", "t1-4"]
    stats = b.stats()
    assert (stats.gaps, stats.unfilled, stats.filled) == (1, 1, 0)
    unfilled = [entry for entry in logs if entry["event"] == "cluster.fanout_gap_unfilled"]
    assert [(entry["thread"], entry["after"]) for entry in unfilled] == [("t1", 1)]
    assert system_b.whereis(FANOUT) == b.fanout  # the node carries on


async def test_while_the_broker_is_away_commits_wait_in_a_bounded_outbox_and_the_rest_is_filled(
    systems: tuple[ActorSystem, ActorSystem],
    broker: Broker,
    database: Path,
    amqp_url: str,
    proxy: ClosableProxy,
) -> None:
    system_a, system_b = systems
    broker.exchanges.append(f"{broker.prefix}.events")
    store = await _store(system_a, database)
    a = await _node(system_a, proxy.url(amqp_url), "node-a", broker.prefix, database, outbox=3)
    b = await _node(system_b, amqp_url, "node-b", broker.prefix, database)

    await _commit(store, a, "t1", 1)
    await b.until(1)
    await proxy.refuse()
    await until(lambda: not a.stats().connected, 30, "a noticing the broker is away")
    for seq in range(2, 7):
        await _commit(store, a, "t1", seq)
    await proxy.start()
    on_b = await b.until(6)
    assert _messages(on_b) == [f"t1-{n}" for n in range(1, 7)]
    assert a.stats().outbox_dropped == 2  # 2 and 3: the oldest; b read them from the store
    assert b.stats().gaps == 1
    assert b.stats().filled >= 2  # the read goes to the store's end: 4-6 may come from it too
