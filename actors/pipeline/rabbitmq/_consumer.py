"""The consuming half: a pipeline `Producer` fed by RabbitMQ queues, acknowledging on the broker.

```python
producer = RabbitMQProducer(url, ["orders"], prefetch=200, on_failure="requeue_once")
pipeline = Pipeline("orders", producer=producer, processors=Processors(handle, concurrency=4))
```

What is guaranteed:

- **Back-pressure.** The broker sends each queue's consumer at most `prefetch` deliveries that
  are not yet settled (per-consumer QoS; quorum queues do not support a channel-wide one), so
  this producer never holds more than ``prefetch * len(queues)``; keep that within the
  pipeline's `max_in_flight`. `emit` also waits while the pipeline is full.
- **Acknowledgement.** A message is settled once, on the channel that delivered it, when the
  pipeline ends it: acked if it succeeded; if it failed, by `on_failure`: ``"requeue"`` (nack
  with requeue: delivered again, to the back of a classic queue, to the front of a quorum queue
  with a delivery limit), ``"reject"`` (nack without requeue: dead-lettered if the queue has a
  dead-letter exchange, else dropped), or ``"requeue_once"`` (requeue on the first delivery,
  reject once it has been delivered before: `delivery_count` ≥ 1). Successful acks are
  coalesced once per loop iteration: one ``multiple`` ack covers every delivery below the
  lowest one still in the pipeline; successes above it wait for it, but never more than half
  the prefetch (then they are acked one by one), so a slow message shrinks the broker's
  window by half at most. Failures are settled at once, before any ack that follows.
- **Metadata.** `Message.data` is the body (bytes); `Message.key` is the value of the
  `key_header` header when present (see `partition_queues`); `Message.metadata` holds
  ``queue, exchange, routing_key, headers, redelivered, delivery_count, delivery_tag,
  message_id, content_type, correlation_id``. `delivery_count` is how often the message was
  delivered before: a quorum queue's ``x-delivery-count``, else 1 if it is redelivered, else 0.
- **Connection loss.** When the connection or channel goes, the producer reconnects after the
  waits of `reconnect` (an `actors.Backoff`: full jitter under ``min(cap, initial *
  factor**(n-1))``; the streak starts over once a connection works), forever unless
  `reconnect_attempts` is set (then `produce` raises and the producer restarts). The
  broker takes back every delivery of the dead channel that was not settled and delivers it
  again, marked redelivered: messages the pipeline still holds, and deliveries not yet
  emitted, are settled on nothing (their acks are counted in `lost_settlements`) and will
  come again. Processing is therefore at least once: a message handled just before a
  connection drop is handled again. Exactly-once *effects* need the handler to be idempotent
  (a unique key per message in the store: insert-or-ignore), as Piano's cluster design does.
- **Draining.** When the pipeline stops, `produce` is cancelled first: nothing delivered after
  that enters the pipeline. The pipeline then ends what it holds and those acks go out on the
  still-open channel. Only then, in `stop`, are the broker consumers cancelled and the channel
  and connection closed. The order matters on RabbitMQ 3.10: a quorum queue can ignore acks
  that arrive just before their channel closes (rabbitmq-server#10327: the deliveries come
  back although they were acked); ``basic.cancel`` on a quorum queue is applied by the queue
  after every earlier settlement of the channel, so cancelling after the last ack and waiting
  for ``cancel-ok`` flushes them, where cancelling first does not.
  `tests/pipeline/rabbitmq/test_acks_before_close.py` shows both. Deliveries that arrived after
  the drain began go back to the queue when the channel closes (a quorum queue counts that as
  a delivery).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from actors import Backoff
from actors._logging import get_logger
from actors.pipeline._message import Message, PipelineStopped
from actors.pipeline._options import positive_int
from actors.pipeline._producer import Emit, Producer
from actors.pipeline.rabbitmq._amqp import aio_pika, aiormq, redact
from actors.pipeline.rabbitmq._partitions import PARTITION_KEY_HEADER

__all__ = ["OnFailure", "RabbitMQProducer", "RabbitMQStatistics"]

log = get_logger(__name__)

OnFailure = Literal["requeue", "reject", "requeue_once"]
_ON_FAILURE = ("requeue", "reject", "requeue_once")

_ACK, _REQUEUE, _REJECT = 0, 1, 2

CLOSE_TIMEOUT = 5.0
"""Seconds each step of closing a channel (cancel, close) may take before it is abandoned."""


@dataclass(frozen=True, slots=True)
class RabbitMQStatistics:
    """Counters of one `RabbitMQProducer` since it was made (they survive reconnects)."""

    consuming: bool
    """Subscribed on a live channel right now."""
    connections: int
    """Connections opened successfully (1 + reconnects)."""
    delivered: int
    acked: int
    requeued: int
    rejected: int
    lost_settlements: int
    """Settlements not sent because the delivering channel had closed (the broker delivers
    those messages again)."""
    dropped: int
    """Deliveries never emitted because their channel closed or the pipeline was draining
    (the broker delivers them again)."""
    ack_frames: int
    """``basic.ack`` frames sent: fewer than `acked` as acks are coalesced."""


class RabbitMQProducer(Producer):
    """Consumes `queues` into a pipeline; see the module documentation."""

    def __init__(
        self,
        url: str,
        queues: Sequence[str],
        *,
        prefetch: int = 100,
        on_failure: OnFailure = "requeue",
        key_header: str | None = PARTITION_KEY_HEADER,
        reconnect: Backoff | None = None,
        reconnect_attempts: int | None = None,
        connection_name: str = "actors.pipeline",
    ) -> None:
        if not isinstance(url, str) or not url:
            raise ValueError("url must be an AMQP URL such as amqp://user:pass@127.0.0.1:5672/")
        if isinstance(queues, str) or not all(isinstance(q, str) and q for q in queues):
            raise ValueError(f"queues must be a sequence of queue names, got {queues!r}")
        positive_int("prefetch", prefetch)
        if prefetch > 65535:
            raise ValueError(f"prefetch must be at most 65535 (AMQP's limit), got {prefetch!r}")
        if on_failure not in _ON_FAILURE:
            raise ValueError(f"on_failure must be one of {_ON_FAILURE}, got {on_failure!r}")
        if reconnect is not None and not isinstance(reconnect, Backoff):
            raise TypeError(f"reconnect must be an actors.Backoff, got {reconnect!r}")
        if reconnect_attempts is not None:
            positive_int("reconnect_attempts", reconnect_attempts)
        self.url = url
        self.queues = list(dict.fromkeys(queues))
        self.prefetch = prefetch
        self.on_failure: OnFailure = on_failure
        self.key_header = key_header
        self.reconnect = reconnect or Backoff(initial=0.1, cap=5.0)
        self.reconnect_attempts = reconnect_attempts
        self.connection_name = connection_name
        self._session: _Session | None = None
        self._sessions: set[_Session] = set()
        self._consuming: asyncio.Event | None = None
        self.connections = 0
        self.delivered = 0
        self.acked = 0
        self.requeued = 0
        self.rejected = 0
        self.lost_settlements = 0
        self.dropped = 0
        self.ack_frames = 0

    def __repr__(self) -> str:
        return f"<RabbitMQProducer {redact(self.url)} queues={self.queues}>"

    def statistics(self) -> RabbitMQStatistics:
        session = self._session
        return RabbitMQStatistics(
            consuming=session is not None and session.live,
            connections=self.connections,
            delivered=self.delivered,
            acked=self.acked,
            requeued=self.requeued,
            rejected=self.rejected,
            lost_settlements=self.lost_settlements,
            dropped=self.dropped,
            ack_frames=self.ack_frames,
        )

    async def wait_consuming(self, timeout: float = 30.0, *, connections: int = 1) -> None:
        """Wait until the producer is subscribed to its queues on a live channel, on at least
        its `connections`-th connection (2: after a reconnect)."""
        async with asyncio.timeout(timeout):
            while True:
                session = self._session
                if session is not None and session.live and self.connections >= connections:
                    return
                await self._event().wait()

    async def add_queue(self, queue: str) -> None:
        """Consume one more queue, now if connected and after every reconnect.

        With single-active-consumer queues, this is how a process becomes a standby for
        partitions another process is consuming: the broker makes it active only when the
        other's consumer goes."""
        if not isinstance(queue, str) or not queue:
            raise ValueError(f"a queue name must be a non-empty string, got {queue!r}")
        if queue in self.queues:
            return
        self.queues.append(queue)
        session = self._session
        if session is not None and session.live:
            await session.consume(queue)

    # -- producing -----------------------------------------------------------------------------

    async def produce(self, emit: Emit) -> None:
        streak = self.reconnect.streak()
        while True:
            session: _Session | None = None
            try:
                session = await self._open()
                streak.succeeded()
                await session.pump(emit)
                reason: object = session.close_reason
            except asyncio.CancelledError:
                if session is not None:
                    session.draining = True
                raise
            except PipelineStopped:
                if session is not None:
                    session.draining = True
                return
            except Exception as exc:
                reason = exc
            if session is not None:
                self._discard(session)
            delay = streak.failed()
            limit = self.reconnect_attempts
            if limit is not None and streak.failures >= limit:
                raise ConnectionError(
                    f"RabbitMQ at {redact(self.url)} unreachable after {limit} attempts: {reason!r}"
                )
            log.warning(
                "rabbitmq.reconnecting",
                broker=redact(self.url),
                attempt=streak.failures,
                delay=round(delay, 3),
                reason=repr(reason),
            )
            await asyncio.sleep(delay)

    async def stop(self) -> None:
        """Flush settlements, cancel the consumers (after the acks: rabbitmq-server#10327), and
        close every channel and connection this producer opened."""
        sessions = list(self._sessions)
        self._session = None
        await asyncio.gather(*(self._close(session) for session in sessions))

    def _event(self) -> asyncio.Event:
        if self._consuming is None:
            self._consuming = asyncio.Event()
        return self._consuming

    async def _open(self) -> _Session:
        connection = await aio_pika.connect(
            self.url, timeout=10, client_properties={"connection_name": self.connection_name}
        )
        session: _Session | None = None
        try:
            channel = await connection.channel(publisher_confirms=False)
            raw = await channel.get_underlay_channel()
            await raw.basic_qos(prefetch_count=self.prefetch)
            session = _Session(self, connection, channel, raw)
            self._sessions.add(session)
            for queue in list(self.queues):
                await session.consume(queue)
        except BaseException:
            if session is not None:
                self._sessions.discard(session)
            with contextlib.suppress(Exception):
                await connection.close()
            raise
        self.connections += 1
        self._session = session
        event = self._event()
        event.set()
        event.clear()
        log.info("rabbitmq.consuming", broker=redact(self.url), queues=self.queues)
        return session

    def _discard(self, session: _Session) -> None:
        """A session that closed under us: settle nothing more on it, close what is left."""
        session.dead = True
        if self._session is session:
            self._session = None
        self.dropped += len(session.buffer)
        session.buffer.clear()
        self.lost_settlements += len(session.outbox) + len(session.unsent)
        session.outbox.clear()
        session.unsent.clear()
        task = asyncio.get_running_loop().create_task(self._close(session))
        session.closer = task

    async def _close(self, session: _Session) -> None:
        if session.closer is not None and session.closer is not asyncio.current_task():
            await asyncio.wait([session.closer])
            return
        session.draining = True
        try:
            session.settle(force=True)
            if session.flusher is not None:
                await asyncio.wait([session.flusher])
            if not session.dead:
                for tag in list(session.consumers):
                    async with asyncio.timeout(CLOSE_TIMEOUT):
                        await session.raw.basic_cancel(tag)
            self.dropped += len(session.buffer)
            session.buffer.clear()
        except Exception as exc:
            log.warning("rabbitmq.cancel_failed", broker=redact(self.url), reason=repr(exc))
        finally:
            session.dead = True
            self._sessions.discard(session)
            try:
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    await session.connection.close()
            except Exception as exc:
                log.debug("rabbitmq.close_failed", broker=redact(self.url), reason=repr(exc))


class _Session:
    """One connection and channel: its deliveries, and the acknowledger of their messages."""

    def __init__(
        self,
        producer: RabbitMQProducer,
        connection: aio_pika.abc.AbstractConnection,
        channel: aio_pika.abc.AbstractChannel,
        raw: aiormq.abc.AbstractChannel,
    ) -> None:
        self.producer = producer
        self.connection = connection
        self.channel = channel
        self.raw = raw
        self.consumers: dict[str, str] = {}
        """consumer tag -> queue"""
        self.buffer: list[Message] = []
        self.wake = asyncio.Event()
        self.dead = False
        self.draining = False
        self.close_reason: object = None
        self.closer: asyncio.Task[None] | None = None
        self.outbox: deque[tuple[int, int, bool]] = deque()
        self.flusher: asyncio.Task[None] | None = None
        self.low = 1
        """The lowest delivery tag that has not ended (tags are 1, 2, 3… per channel)."""
        self.ended: set[int] = set()
        """Tags above `low` that have ended."""
        self.unsent: list[int] = []
        """Successes whose ack is not in the outbox yet (see `settle`)."""
        self.settle_scheduled = False
        self.hold = max(1, producer.prefetch // 2)
        connection.close_callbacks.add(self._closed)
        channel.close_callbacks.add(self._closed)

    @property
    def live(self) -> bool:
        return not self.dead and not self.draining

    def _closed(self, _sender: object, reason: object = None) -> None:
        if self.close_reason is None:
            self.close_reason = reason or "closed"
        self.dead = True
        self.wake.set()

    async def consume(self, queue: str) -> None:
        # The tag is known before subscribing: deliveries can arrive before consume-ok.
        tag = f"actors.pipeline.{uuid.uuid4().hex}"
        self.consumers[tag] = queue
        try:
            await self.raw.basic_consume(queue, self.deliver, consumer_tag=tag)
        except BaseException:
            del self.consumers[tag]
            raise

    async def deliver(self, delivered: aiormq.abc.DeliveredMessage) -> None:
        delivery = delivered.delivery
        assert isinstance(delivery, aiormq.spec.Basic.Deliver)
        properties = delivered.header.properties
        headers: dict[str, Any] = properties.headers or {}
        count = headers.get("x-delivery-count")
        producer = self.producer
        key = headers.get(producer.key_header) if producer.key_header is not None else None
        message = Message(
            delivered.body,
            key,
            metadata={
                "queue": self.consumers.get(delivery.consumer_tag or ""),
                "exchange": delivery.exchange,
                "routing_key": delivery.routing_key,
                "headers": headers,
                "redelivered": bool(delivery.redelivered),
                "delivery_count": (
                    count if type(count) is int else (1 if delivery.redelivered else 0)
                ),
                "delivery_tag": delivery.delivery_tag,
                "message_id": properties.message_id,
                "content_type": properties.content_type,
                "correlation_id": properties.correlation_id,
            },
            acknowledger=self,
        )
        producer.delivered += 1
        self.buffer.append(message)
        self.wake.set()

    async def pump(self, emit: Emit) -> None:
        """Emit deliveries as they arrive until the channel closes."""
        while True:
            await self.wake.wait()
            self.wake.clear()
            if self.dead:
                return
            if self.buffer:
                items, self.buffer = self.buffer, []
                await emit(items)

    # -- acknowledging -------------------------------------------------------------------------

    def ack(self, successful: list[Message], failed: list[Message]) -> None:
        producer = self.producer
        if self.dead:
            producer.lost_settlements += len(successful) + len(failed)
            return
        outbox = self.outbox
        ended = self.ended
        policy = producer.on_failure
        for message in failed:
            metadata = message.metadata
            assert metadata is not None
            tag = metadata["delivery_tag"]
            ended.add(tag)
            if policy == "reject" or (policy == "requeue_once" and metadata["delivery_count"]):
                outbox.append((_REJECT, tag, False))
                producer.rejected += 1
            else:
                outbox.append((_REQUEUE, tag, False))
                producer.requeued += 1
        unsent = self.unsent
        for message in successful:
            metadata = message.metadata
            assert metadata is not None
            tag = metadata["delivery_tag"]
            ended.add(tag)
            unsent.append(tag)
        producer.acked += len(successful)
        if not self.settle_scheduled:
            self.settle_scheduled = True
            asyncio.get_running_loop().call_soon(self.settle)

    def settle(self, force: bool = False) -> None:
        """Turn the acks of this loop iteration into as few frames as RabbitMQ allows.

        Every delivery below `low` has ended, and all of them but the unsent successes are
        settled already (failures are queued as they come, before any ack that follows): one
        ``multiple`` ack of the highest unsent tag below `low` (unacked at the broker, as
        RabbitMQ requires) settles exactly those. Successes above `low` wait for it to move
        past them, unless they are half the prefetch (a slow message must not shrink the
        broker's window by more than that) or the channel is closing (`force`)."""
        self.settle_scheduled = False
        if self.dead:
            return
        ended = self.ended
        low = self.low
        while low in ended:
            ended.discard(low)
            low += 1
        self.low = low
        unsent = self.unsent
        if unsent:
            below = [tag for tag in unsent if tag < low]
            if below:
                self.outbox.append((_ACK, max(below), True))
                if len(below) < len(unsent):
                    unsent = self.unsent = [tag for tag in unsent if tag >= low]
                else:
                    unsent.clear()
            if unsent and (force or len(unsent) >= self.hold):
                self.outbox.extend((_ACK, tag, False) for tag in sorted(unsent))
                unsent.clear()
        if self.outbox and self.flusher is None:
            self.flusher = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        """Send the settlements in order (failures before the multiple ack that follows them)."""
        outbox = self.outbox
        raw = self.raw
        try:
            while outbox:
                kind, tag, multiple = outbox.popleft()
                if kind == _ACK:
                    await raw.basic_ack(tag, multiple=multiple, wait=False)
                    self.producer.ack_frames += 1
                else:
                    await raw.basic_nack(tag, requeue=kind == _REQUEUE, wait=False)
        except Exception as exc:
            self.producer.lost_settlements += len(outbox) + 1
            outbox.clear()
            log.info("rabbitmq.settlements_lost", reason=repr(exc))
        finally:
            self.flusher = None
