"""The daemon's event pipeline: every thread event, in order per thread, to surfaces and store.

```
thread actor ──push──▶ events pipeline (partitioned by thread id)
                          ├─ processor k: deliver to the surfaces subscribed to the thread
                          └─ batcher "default" ─▶ batch processor: StoreWriter.WriteBatch
```

A thread's events all go to one processor, which hands them to its surfaces in order; the
batcher then groups events of any threads into batches, and one batch processor writes each
batch in one transaction, so a thread's events reach the store in order too. The batcher flushes
when the writer is idle (`Batchers.flush_when_idle`): a lone event is written at once, and while
a batch is being written the next one gathers everything that arrives meanwhile, up to
`batch_size` (group commit). So nothing waits for a timer when the system is quiet, and under
load batches grow instead of queueing. An event is acknowledged once its batch has committed.
While the store is down (it crashed and its supervisor is restarting it, its PostgreSQL server
is unreachable: `StoreUnavailable`, or its disk is full: `StoreFull`), a batch waits and
retries, with back-off, for up to `store_outage` seconds (``events.store_unavailable`` is logged
once per batch); only then does it fail. An event the store refuses (`BatchRejected`: an unknown
thread, a broken constraint) is logged as ``events.not_stored`` and dropped; the rest of its
batch is written again without it.

Each event's journal number (its per-thread `seq`) is assigned here, once, when its batch is
first handed to the store, and a retried batch carries the same numbers: if the store committed
a batch but its reply was lost (the writer was killed between COMMIT and answering), the retry
changes nothing (piano.store journals with ``ON CONFLICT DO NOTHING`` and applies only what
it inserted). The numbers continue from the store's `LastSeqs` the first time a thread is seen,
and again whenever the outcome of a write is unknown or the store says a number is taken
(`SeqTaken`). Pushing waits while `max_in_flight` events are
unacknowledged, which slows the thread actors (and so Codex's notifications) instead of growing
memory. On shutdown the pipeline drains: everything pushed is delivered and stored before the
store stops.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable

import structlog

from actors import ActorExited, ActorRef, ActorSystem, Registry
from actors.pipeline import (
    Batchers,
    BatchInfo,
    Message,
    Pipeline,
    Processors,
    Retry,
    push_many,
)
from piano.store import (
    BatchRejected,
    LastSeqs,
    SeqTaken,
    StoreFull,
    StoreUnavailable,
    WriteBatch,
)
from piano.surfaces import deliver
from schemas.events import ThreadEvent

__all__ = ["EVENTS", "event_pipeline", "publisher", "stored_publisher"]

EVENTS = "events"
"""The registered name of the daemon's event pipeline."""

log = structlog.get_logger(__name__)


_STORE_RETRY = Retry(max_attempts=None, initial=0.01, cap=1.0)
"""The back-off of a batch waiting for the store to come back (bounded by `store_outage`)."""


class _Numbering:
    """Each thread's last journal seq as the store has committed it, for numbering batches.

    A thread not known here is asked of the store; a thread whose batch ended in doubt (the
    write failed without the store refusing it) is forgotten, so that it is asked again."""

    def __init__(self) -> None:
        self.last: dict[str, int] = {}

    async def number(self, writer: ActorRef, events: list[ThreadEvent]) -> list[int]:
        unknown = {event.thread_id for event in events} - self.last.keys()
        if unknown:
            self.last.update(await writer.call(LastSeqs(sorted(unknown)), timeout=60))
        following = dict(self.last)
        seqs = []
        for event in events:
            seq = following[event.thread_id] = following[event.thread_id] + 1
            seqs.append(seq)
        return seqs

    def committed(self, events: list[ThreadEvent], seqs: list[int]) -> None:
        """What the store wrote; a thread whose events it dropped (seq 0: a cluster fenced it
        off) is forgotten, so that its journal's end is asked again if it comes back."""
        for event, seq in zip(events, seqs, strict=True):
            if seq:
                self.last[event.thread_id] = seq
            else:
                self.last.pop(event.thread_id, None)

    def forget(self, events: list[ThreadEvent]) -> None:
        for event in events:
            self.last.pop(event.thread_id, None)


def _thread(message: Message) -> str:
    thread_id: str = message.data.thread_id
    return thread_id


def event_pipeline(
    subscriptions: Registry,
    store: Callable[[], ActorRef | None],
    *,
    processors: int = 2,
    batch_size: int = 500,
    batch_timeout: float = 1.0,
    max_in_flight: int = 20_000,
    store_outage: float = 30.0,
    stored: Callable[[list[ThreadEvent]], None] | None = None,
    committed: Callable[[list[ThreadEvent], list[int]], None] | None = None,
) -> Pipeline:
    """The pipeline; `store()` returns the live store writer; `stored(events)` (telemetry, for
    benchmarks) is called after each batch has committed, and `committed(events, seqs)` with
    each event's journal number (a cluster's fan-out publishes them: `piano.cluster`); both
    must return at once."""

    def to_surfaces(message: Message) -> None:
        deliver(subscriptions, message.data)

    numbering = _Numbering()

    async def write(events: list[ThreadEvent]) -> list[int]:
        """Write `events` once the store is running, waiting out a restart; they are numbered
        once, so a retry of a batch that did commit changes nothing. Their journal numbers."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + store_outage
        seqs: list[int] | None = None
        for attempt in itertools.count(1):
            writer = store()
            try:
                if writer is None:
                    raise StoreUnavailable("the store is not running")
                if seqs is None:
                    seqs = await numbering.number(writer, events)
                written: list[int] = await writer.call(WriteBatch(events, seqs), timeout=60)
            except (ActorExited, StoreUnavailable, StoreFull) as exc:
                delay = _STORE_RETRY.delay(attempt)
                if loop.time() + delay > deadline:
                    numbering.forget(events)
                    raise
                if attempt == 1:
                    log.warning("events.store_unavailable", events=len(events), error=str(exc))
                await asyncio.sleep(delay)
                continue
            except SeqTaken:
                numbering.forget(events)
                raise
            except BatchRejected:
                raise  # nothing written: the numbering stands
            except BaseException:
                numbering.forget(events)
                raise
            numbering.committed(events, written)
            return written
        raise AssertionError("unreachable")

    async def to_store(messages: list[Message], info: BatchInfo) -> None:
        renumbered = False
        while messages:
            events = [message.data for message in messages]
            try:
                seqs = await write(events)
            except SeqTaken:
                if renumbered:
                    raise
                renumbered = True
                continue
            except BatchRejected as exc:
                refused = messages[exc.index]
                refused.fail(exc)
                messages = [message for message in messages if message is not refused]
                continue
            if stored is not None:
                stored(events)
            if committed is not None:
                kept = [(e, seq) for e, seq in zip(events, seqs, strict=True) if seq]
                if kept:  # seq 0: not written, a cluster fenced its thread off
                    committed([e for e, _ in kept], [seq for _, seq in kept])
            return

    def failed(messages: list[Message]) -> None:
        for message in messages:
            log.error("events.not_stored", thread_event=message.data, reason=repr(message.failure))

    return Pipeline(
        EVENTS,
        processors=Processors(to_surfaces, concurrency=processors, partition_by=_thread),
        batchers={
            "default": Batchers(
                to_store,
                batch_size=batch_size,
                batch_timeout=batch_timeout,
                partition_by=lambda message: 0,
                flush_when_idle=True,
            )
        },
        handle_failed=failed,
        max_in_flight=max_in_flight,
    )


def publisher(
    system: Callable[[], ActorSystem | None],
) -> Callable[[list[ThreadEvent]], Awaitable[None]]:
    """The `publish` function thread actors use: push events, in order, into the live pipeline."""

    async def publish(events: list[ThreadEvent]) -> None:
        running = system()
        ref = running.whereis(EVENTS) if running is not None else None
        if ref is None:
            raise RuntimeError("the event pipeline is not running")
        await push_many(ref, events)

    return publish


class _Stored:
    """Resolves once its one message has ended (stored, or failed and logged)."""

    def __init__(self) -> None:
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def ack(self, successful: list[Message], failed: list[Message]) -> None:
        if not self.done.done():
            self.done.set_result(None)


def stored_publisher(
    system: Callable[[], ActorSystem | None],
) -> Callable[[ThreadEvent], Awaitable[None]]:
    """Publish one event and return once the store has it (or has refused it).

    Since a thread's events are delivered and stored in the order pushed, every event of that
    thread pushed before it is then in the store too: a barrier after which the store tells a
    thread's actor the truth (piano.threads uses it before recovering a conversation)."""

    async def publish(event: ThreadEvent) -> None:
        running = system()
        ref = running.whereis(EVENTS) if running is not None else None
        if ref is None:
            raise RuntimeError("the event pipeline is not running")
        stored = _Stored()
        await push_many(ref, [Message(event, acknowledger=stored)])
        await stored.done

    return publish
