"""`Fanout` (``cluster:fanout``): every thread's live events on every node of a cluster.

A surface on any node follows any conversation, whichever node runs it. Each node publishes
what its own conversations produce and delivers what the others publish to its local
subscriptions (`piano.surfaces.deliver`), exactly as its own events are delivered:

```
node A: thread ─▶ events pipeline ─▶ deliver (A's surfaces)
                                  └▶ store COMMIT ─▶ committed(events, seqs) ─▶ Fanout(A)
Fanout(A) ──publish──▶ topic exchange <prefix>.events (routing key: thread id)
          ──▶ queue of node B (exclusive, auto-delete, x-max-length, drop-head) ──▶ Fanout(B)
Fanout(B) ─▶ deliver (B's surfaces), in order per thread; a gap read back from the store
```

**What is published, and when.** The event pipeline calls `committed(events, seqs)` once a
batch is in the store (`piano.events.event_pipeline`); `fanout_publisher` hands it to this
actor, which publishes one `schemas.fanout.ThreadEvents` per thread of the batch, with the
node's id in the `ORIGIN_HEADER`. Publishing after the commit costs the remote view a commit's
latency (docs/BENCHMARKS.md) and buys the events' journal numbers: contiguous per thread
whichever node wrote them (a new owner continues its predecessor's numbers), so a receiver
knows exactly what it missed. Publishing never blocks a thread: the hook is a `send`, and the
actor keeps at most `outbox` messages waiting for the broker (while it is away), dropping the
oldest; loss is tolerated, the store is the truth.

**What is received.** Each node consumes one queue of its own, exclusive and auto-delete (it
goes with the node's connection), bounded by ``x-max-length`` with ``x-overflow: drop-head``:
a node that falls behind loses the oldest messages, not memory. It holds at most `prefetch`
deliveries unacknowledged, acknowledging each once handled. A message from this node itself
is skipped unread (no echo); one that does not decode is logged
(``cluster.fanout_bad_message``) and dropped.

**Order, gaps, no duplicates.** Per thread the actor remembers the last journal number it has
shown (its own commits included, so a conversation moving here and back is not a gap). The
next number is shown; an older or equal one is a duplicate and dropped; a jump is a gap: the
thread's later events are held while the missing ones are read from the store
(`StoreReader.events_since`) and delivered first, then the held ones (those the store already
gave are dropped). So a subscriber sees each event once, in journal order, even across a lost
message, a full queue or a new owner. After a reconnect every thread followed recently is
read up to the store's end the same way, since what it missed while away may have no
successor to reveal the gap. If the store cannot be read, the held events are shown after the
gap (``cluster.fanout_gap_unfilled``): the web stream's clients get a snapshot when they
reconnect.

**The broker going away.** The connection is the actor's own task: it reconnects with
`actors.Backoff` (jittered, capped) for as long as it takes, logs ``cluster.fanout_unavailable``
once per outage and ``cluster.fanout_connected`` on each connection; the daemon keeps running
and local surfaces are unaffected. A bug in that task crashes the actor (its supervisor
restarts it).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import aiormq
import aiormq.abc
import msgspec
import structlog

from actors import NOREPLY, Actor, ActorSystem, Backoff, Caller, Registry
from actors.pipeline.rabbitmq import redact
from piano.config import ClusterConfig
from piano.store import StoreLocation, StoreReader
from piano.surfaces import deliver
from schemas.events import ThreadEvent
from schemas.fanout import (
    ORIGIN_HEADER,
    ThreadEvents,
    decode_thread_events,
    encode_thread_events,
)
from supervisors import ChildSpec

__all__ = [
    "FANOUT",
    "Committed",
    "Fanout",
    "FanoutStatistics",
    "WaitConnected",
    "fanout_child_spec",
    "fanout_publisher",
]

FANOUT = "cluster:fanout"
"""The registered name of a node's fan-out actor."""

log = structlog.get_logger(__name__)

CATCH_UP = 200
"""Threads (the most recently active) read up to the store's end after a reconnect."""

READ_PAGE = 5_000
"""Journal entries read from the store at a time while filling a gap."""


@dataclass(frozen=True, slots=True)
class Committed:
    """What the store committed of one batch: the events and their journal numbers."""

    events: list[ThreadEvent]
    seqs: list[int]


@dataclass(frozen=True, slots=True)
class WaitConnected:
    """Call: reply once consuming on a live connection, the `connections`-th one or later."""

    connections: int = 1


@dataclass(frozen=True, slots=True)
class FanoutStatistics:
    """Counters of one `Fanout` (since it started)."""

    connected: bool
    connections: int
    """Connections opened (1 + reconnects)."""
    queue: str | None
    """The node's queue on the current connection."""
    published: int
    """Messages (one thread's events of one batch) handed to the broker."""
    outbox_dropped: int
    """Messages dropped unpublished because `outbox` was full (the broker was away)."""
    received: int
    """Messages of other nodes received."""
    own: int
    """Messages of this node skipped."""
    bad: int
    shown: int
    """Events of other nodes delivered to local subscriptions."""
    duplicates: int
    """Events dropped because they had already been shown."""
    gaps: int
    """Gaps found (including catch-ups after a reconnect)."""
    filled: int
    """Events read from the store to fill gaps and shown."""
    unfilled: int
    """Gaps the store could not fill."""


@dataclass(eq=False)
class _Session:
    """One connection, its channel and the queue consumed on it."""

    connection: aio_pika.abc.AbstractConnection
    channel: aio_pika.abc.AbstractChannel
    raw: aiormq.abc.AbstractChannel
    queue: str
    closed: bool = False
    reason: object = None
    ack_upto: int = 0
    """The highest delivery tag handled."""
    acked: int = 0
    """The highest delivery tag acknowledged (acknowledging a tag twice closes the channel)."""
    ack_scheduled: bool = False


@dataclass(frozen=True, slots=True)
class _Delivery:
    session: _Session
    tag: int
    origin: object
    body: bytes


@dataclass(frozen=True, slots=True)
class _Up:
    session: _Session


@dataclass(frozen=True, slots=True)
class _Down:
    session: _Session


@dataclass(frozen=True, slots=True)
class _Filled:
    thread_id: str
    entries: list[tuple[int, ThreadEvent]] | None
    """The store's events after the last shown (None: the store could not be read)."""


@dataclass(frozen=True, slots=True)
class _Failed:
    error: BaseException


@dataclass
class _Thread:
    """What this node knows of one thread: the last journal number shown, and the events held
    while a gap is read from the store (None: no gap open)."""

    last: int
    held: list[tuple[int, ThreadEvent]] | None = field(default=None)


class Fanout(Actor):
    """A node's fan-out; see the module documentation."""

    def __init__(
        self,
        url: str,
        *,
        node_id: str,
        exchange: str,
        subscriptions: Registry,
        reader: Callable[[], StoreReader],
        queue_length: int = 10_000,
        prefetch: int = 256,
        outbox: int = 10_000,
        hold: int = 10_000,
        remembered: int = 10_000,
        reconnect: Backoff | None = None,
    ) -> None:
        self.url = url
        self.node_id = node_id
        self.exchange = exchange
        self.subscriptions = subscriptions
        self.open_reader = reader
        self.queue_length = queue_length
        self.prefetch = prefetch
        self.hold = hold
        self.remembered = remembered
        self.reconnect = reconnect or Backoff(initial=0.1, cap=5.0)
        self.outbox: deque[ThreadEvents] = deque(maxlen=outbox)
        self.threads: OrderedDict[str, _Thread] = OrderedDict()
        self.session: _Session | None = None
        self.reader: StoreReader | None = None
        self.waiters: list[tuple[int, Caller]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._readers: set[asyncio.Task[None]] = set()
        self.connections = 0
        self.published = self.outbox_dropped = 0
        self.received = self.own = self.bad = 0
        self.shown = self.duplicates = self.gaps = self.filled = self.unfilled = 0

    def describe(self) -> str:
        state = "connected" if self.session is not None else "disconnected"
        return (
            f"{redact(self.url)} {self.exchange}, {state}, {self.shown} shown, "
            f"{self.published} published, {self.gaps} gaps"
        )

    def statistics(self) -> FanoutStatistics:
        session = self.session
        return FanoutStatistics(
            connected=session is not None,
            connections=self.connections,
            queue=session.queue if session is not None else None,
            published=self.published,
            outbox_dropped=self.outbox_dropped,
            received=self.received,
            own=self.own,
            bad=self.bad,
            shown=self.shown,
            duplicates=self.duplicates,
            gaps=self.gaps,
            filled=self.filled,
            unfilled=self.unfilled,
        )

    def init(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=FANOUT)
        self._task.add_done_callback(self._ended)

    async def terminate(self, reason: object) -> None:
        tasks = [task for task in (self._task, *self._readers) if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.session is not None:
            await self._close(self.session)
        if self.reader is not None:
            reader, self.reader = self.reader, None
            await asyncio.to_thread(reader.close)

    # -- messages -------------------------------------------------------------------------------

    def handle_info(self, message: Any) -> Any:
        match message:
            case _Delivery():
                self._delivered(message)
            case Committed(events=events, seqs=seqs):
                self._committed(events, seqs)
            case _Filled(thread_id=thread_id, entries=entries):
                self._filled(thread_id, entries)
            case _Up(session=session):
                self._up(session)
            case _Down(session=session):
                self._down(session)
            case _Failed(error=error):
                raise error
            case _:
                return super().handle_info(message)
        return None

    async def handle_call(self, message: Any, caller: Caller) -> Any:
        match message:
            case WaitConnected(connections=connections):
                if self.session is not None and self.connections >= connections:
                    return None
                self.waiters.append((connections, caller))
                return NOREPLY
        return await super().handle_call(message, caller)

    # -- publishing -----------------------------------------------------------------------------

    def _committed(self, events: list[ThreadEvent], seqs: list[int]) -> None:
        """This node's batch is in the store: remember what it showed, queue it for the others."""
        by_thread: dict[str, tuple[list[int], list[ThreadEvent]]] = {}
        for event, seq in zip(events, seqs, strict=True):
            if seq < 1:
                continue  # not written (the store dropped it)
            numbers, kept = by_thread.setdefault(event.thread_id, ([], []))
            numbers.append(seq)
            kept.append(event)
        for thread_id, (numbers, kept) in by_thread.items():
            thread = self._thread(thread_id, numbers[-1])
            thread.last = max(thread.last, numbers[-1])
            if len(self.outbox) == self.outbox.maxlen:
                self.outbox_dropped += 1
            self.outbox.append(
                ThreadEvents(origin=self.node_id, thread_id=thread_id, seqs=numbers, events=kept)
            )
        self._wake.set()

    async def _publish(self, session: _Session) -> None:
        """Publish the outbox until the session closes."""
        properties = aiormq.spec.Basic.Properties(
            content_type="application/json",
            delivery_mode=1,
            headers={ORIGIN_HEADER: self.node_id},
        )
        while not session.closed:
            while self.outbox and not session.closed:
                message = self.outbox.popleft()
                try:
                    await session.raw.basic_publish(
                        encode_thread_events(message),
                        exchange=self.exchange,
                        routing_key=message.thread_id,
                        properties=properties,
                    )
                except BaseException:
                    self.outbox.appendleft(message)
                    raise
                self.published += 1
            self._wake.clear()
            if not session.closed:
                await self._wake.wait()

    # -- receiving ------------------------------------------------------------------------------

    def _delivered(self, delivery: _Delivery) -> None:
        session = delivery.session
        if session is not self.session:
            return  # its channel is gone; nothing to acknowledge it on
        try:
            origin = delivery.origin
            if isinstance(origin, bytes):
                origin = origin.decode(errors="replace")
            if origin == self.node_id:
                self.own += 1
                return
            try:
                message = decode_thread_events(delivery.body)
            except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                self.bad += 1
                log.warning(
                    "cluster.fanout_bad_message",
                    origin=str(origin)[:64],
                    error=str(exc)[:200],
                    hint="a node of another Piano version, or not Piano, publishes to "
                    f"{self.exchange}; its message was dropped",
                )
                return
            self.received += 1
            for seq, event in zip(message.seqs, message.events, strict=True):
                self._offer(message.thread_id, seq, event)
        finally:
            self._ack(session, delivery.tag)

    def _ack(self, session: _Session, tag: int) -> None:
        session.ack_upto = max(session.ack_upto, tag)
        if not session.ack_scheduled:
            session.ack_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_acks, session)

    def _flush_acks(self, session: _Session) -> None:
        session.ack_scheduled = False
        tag = session.ack_upto
        if session.closed or tag <= session.acked:
            return
        session.acked = tag

        async def ack() -> None:
            with contextlib.suppress(Exception):
                await session.raw.basic_ack(tag, multiple=True)

        task = asyncio.get_running_loop().create_task(ack())
        self._readers.add(task)
        task.add_done_callback(self._readers.discard)

    def _thread(self, thread_id: str, first: int) -> _Thread:
        thread = self.threads.get(thread_id)
        if thread is None:
            thread = self.threads[thread_id] = _Thread(last=first - 1)
            while len(self.threads) > self.remembered:
                self.threads.popitem(last=False)
        else:
            self.threads.move_to_end(thread_id)
        return thread

    def _offer(self, thread_id: str, seq: int, event: ThreadEvent) -> None:
        """Show the event if it is the thread's next; drop it if seen; else open a gap."""
        thread = self._thread(thread_id, seq)
        if thread.held is not None:
            if len(thread.held) < self.hold:
                thread.held.append((seq, event))  # past `hold`: read from the store later
            return
        if seq <= thread.last:
            self.duplicates += 1
        elif seq == thread.last + 1:
            self._show(thread, seq, event)
        else:
            thread.held = [(seq, event)]
            self._fill(thread_id, thread.last)

    def _show(self, thread: _Thread, seq: int, event: ThreadEvent) -> None:
        thread.last = seq
        self.shown += 1
        deliver(self.subscriptions, event)

    def _fill(self, thread_id: str, after: int) -> None:
        """Read the thread's events after `after` from the store, in the background."""
        self.gaps += 1
        task = asyncio.get_running_loop().create_task(self._read(thread_id, after))
        self._readers.add(task)
        task.add_done_callback(self._readers.discard)

    async def _read(self, thread_id: str, after: int) -> None:
        entries: list[tuple[int, ThreadEvent]] | None = []
        try:
            while True:
                page = await asyncio.to_thread(self._read_page, thread_id, after)
                assert entries is not None
                entries.extend(page)
                if len(page) < READ_PAGE:
                    break
                after = page[-1][0]
        except Exception as exc:
            log.warning(
                "cluster.fanout_gap_unfilled",
                thread=thread_id,
                after=after,
                error=str(exc)[:200],
                hint="the store could not be read: the thread's live view misses events "
                "until its web clients reconnect",
            )
            entries = None
            if self.reader is not None:
                reader, self.reader = self.reader, None
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(reader.close)
        self.ref.send(_Filled(thread_id, entries))

    def _read_page(self, thread_id: str, after: int) -> list[tuple[int, ThreadEvent]]:
        if self.reader is None:
            self.reader = self.open_reader()
        journal = self.reader.events_since(thread_id, after, limit=READ_PAGE)
        return [(entry.seq, entry.event) for entry in journal]

    def _filled(self, thread_id: str, entries: list[tuple[int, ThreadEvent]] | None) -> None:
        thread = self.threads.get(thread_id)
        if thread is None:
            return  # forgotten meanwhile (many newer threads): start again from what comes
        held, thread.held = thread.held or [], None
        if entries is None:
            self.unfilled += 1
            if held:
                thread.last = max(thread.last, held[0][0] - 1)  # show past the gap
        else:
            for seq, event in entries:
                if seq > thread.last:
                    self.filled += 1
                    self._show(thread, seq, event)
        for seq, event in held:
            self._offer(thread_id, seq, event)

    # -- the connection -------------------------------------------------------------------------

    def _up(self, session: _Session) -> None:
        if session.closed:
            return
        self.session = session
        self.connections += 1
        if self.connections > 1:
            # what was published while we were away may have no successor to reveal it
            for thread_id in list(reversed(self.threads))[:CATCH_UP]:
                thread = self.threads[thread_id]
                if thread.held is None:
                    thread.held = []
                    self._fill(thread_id, thread.last)
        waiting = []
        for connections, caller in self.waiters:
            if self.connections >= connections:
                caller.reply(None)
            else:
                waiting.append((connections, caller))
        self.waiters = waiting

    def _down(self, session: _Session) -> None:
        if self.session is session:
            self.session = None

    def _ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.ref.send(_Failed(task.exception() or RuntimeError("the fan-out task ended")))

    async def _run(self) -> None:
        streak = self.reconnect.streak()
        down_since: float | None = None
        while True:
            session: _Session | None = None
            try:
                session = await self._open()
                streak.started()
                log.info(
                    "cluster.fanout_connected",
                    broker=redact(self.url),
                    queue=session.queue,
                    outage=None if down_since is None else round(time.monotonic() - down_since, 3),
                )
                down_since = None
                self.ref.send(_Up(session))
                await self._publish(session)
                reason: object = session.reason
            except Exception as exc:  # the broker refused, went away, or never answered
                reason = exc
            if session is not None:
                session.closed = True
                self.ref.send(_Down(session))
                await self._close(session)
            delay = streak.failed()
            if down_since is None:
                down_since = time.monotonic()
                log.warning(
                    "cluster.fanout_unavailable",
                    broker=redact(self.url),
                    reason=repr(reason)[:300],
                    hint="other nodes' live events are not shown here until the broker is back "
                    "(conversations and the store are unaffected); reconnecting",
                )
            await asyncio.sleep(delay)

    async def _open(self) -> _Session:
        connection = await aio_pika.connect(
            self.url,
            timeout=10,
            client_properties={"connection_name": f"piano {FANOUT} {self.node_id}"},
        )
        try:
            channel = await connection.channel(publisher_confirms=False)
            exchange = await channel.declare_exchange(
                self.exchange, aio_pika.ExchangeType.TOPIC, durable=True
            )
            name = f"{self.exchange}.{self.node_id}.{secrets.token_hex(4)}"
            queue = await channel.declare_queue(
                name,
                exclusive=True,
                auto_delete=True,
                arguments={"x-max-length": self.queue_length, "x-overflow": "drop-head"},
            )
            await queue.bind(exchange, routing_key="#")
            raw = await channel.get_underlay_channel()
            await raw.basic_qos(prefetch_count=self.prefetch)
            session = _Session(connection, channel, raw, name)

            def closed(_sender: object, reason: object = None) -> None:
                if not session.closed:
                    session.closed = True
                    session.reason = reason or "closed"
                self._wake.set()

            connection.close_callbacks.add(closed)
            channel.close_callbacks.add(closed)

            async def on_delivery(delivered: aiormq.abc.DeliveredMessage) -> None:
                # aiormq starts one task per delivery, in order; sending before any await
                # keeps that order in the mailbox
                delivery = delivered.delivery
                assert isinstance(delivery, aiormq.spec.Basic.Deliver)
                headers = delivered.header.properties.headers or {}
                tag = delivery.delivery_tag or 0
                origin = headers.get(ORIGIN_HEADER)
                self.ref.send(_Delivery(session, tag, origin, delivered.body))

            await raw.basic_consume(name, on_delivery, consumer_tag=f"{FANOUT}.{self.node_id}")
        except BaseException:
            with contextlib.suppress(Exception):
                await connection.close()
            raise
        return session

    async def _close(self, session: _Session) -> None:
        session.closed = True
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5.0):
                await session.connection.close()


def fanout_publisher(
    system: Callable[[], ActorSystem | None],
) -> Callable[[list[ThreadEvent], list[int]], None]:
    """The event pipeline's `committed` hook: hand each committed batch to the live fan-out
    (dropped while it restarts: loss is tolerated, the store is the truth)."""

    def committed(events: list[ThreadEvent], seqs: list[int]) -> None:
        running = system()
        ref = running.whereis(FANOUT) if running is not None else None
        if ref is not None:
            ref.send(Committed(events, seqs))

    return committed


def fanout_child_spec(
    cluster: ClusterConfig, subscriptions: Registry, location: StoreLocation
) -> ChildSpec:
    """The fan-out's child spec for the daemon's tree (`ConfigError`, one line, if the broker's
    URL variable is unset)."""
    url = cluster.rabbitmq.url()
    return ChildSpec(
        FANOUT,
        start=lambda: Fanout(
            url,
            node_id=cluster.node(),
            exchange=cluster.rabbitmq.events_exchange,
            subscriptions=subscriptions,
            reader=location.reader,
            queue_length=cluster.rabbitmq.events_queue_length,
        ),
        name=FANOUT,
        backoff=Backoff(initial=0.5, cap=30.0),
    )
