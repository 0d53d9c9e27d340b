"""The pipeline's shared state: dispatch to processors, in-flight accounting, back-pressure,
the rate-limit buffer, outcomes, draining.

One `Topology` belongs to one `Pipeline`. Every stage actor of the pipeline reaches it directly
(they all run on the system's loop, one callback at a time, so no lock is needed): it is where
the slots live, so stage restarts lose nothing.

Dispatch: a pushed message gets its key (the explicit key, else ``partition_by(message)``) and
its processor index, then joins that processor's pending chunk. A chunk is sent when it reaches
`CHUNK` messages or at the end of the current loop iteration, whichever comes first; messages to
one processor therefore arrive in push order. A pusher that has routed `CHUNK` messages the loop
has not flushed yet sends the pending chunks and yields to the loop once per stage (`pause`), so
the stages keep up with a pusher that never waits: messages stay in flight briefly (lower
latency, and they die young, which keeps the garbage collector's older generations out of the
hot path).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from actors._logging import get_logger
from actors.pipeline._message import (
    MIXED,
    Acknowledger,
    Message,
    Mixed,
    PartitionKeyError,
    PipelineFull,
    PipelineStopped,
    acknowledge,
    run_hook,
)
from actors.pipeline._options import Batchers, Processors, RateLimit
from actors.pipeline._slots import PARKED, BatcherSlot, BatchSlot, ProcessorSlot, Slot
from actors.pipeline._statistics import (
    PipelineStatistics,
    StageStatistics,
    Telemetry,
    stage_statistics,
)

__all__ = ["CHUNK", "Topology"]

log = get_logger(__name__)

CHUNK = 256
"""Most messages sent to a processor in one cast."""


class Topology:
    """Shared state of one pipeline; see the module documentation."""

    def __init__(
        self,
        name: str,
        processors: Processors,
        batchers: dict[str, Batchers],
        handle_failed: Callable[[list[Message]], Any] | None,
        max_in_flight: int,
        rate_limit: RateLimit | None,
        telemetry: Telemetry | None,
    ) -> None:
        self.name = name
        self.processors = processors
        self.batchers = batchers
        self.handle_failed = handle_failed
        self.telemetry = telemetry
        self.partitions = processors.concurrency
        self.partition_by = processors.partition_by
        self.processor_slots = [ProcessorSlot(i) for i in range(self.partitions)]
        self.batcher_slots = {name: BatcherSlot(name, spec) for name, spec in batchers.items()}
        self.batch_slots = {
            name: [BatchSlot(i) for i in range(spec.concurrency)] for name, spec in batchers.items()
        }
        self.producer: Slot[None] = Slot(0)
        self.pending: list[list[Message]] = [[] for _ in range(self.partitions)]
        self.pending_since = [0.0] * self.partitions
        self.flush_scheduled = False
        self.unflushed = 0
        """Messages routed since the loop last ran `flush` (pushers yield beyond `CHUNK`)."""
        self.hops = 3 if batchers else 1
        """How many times a pausing pusher yields: once per stage a message goes through
        (processor; batcher; batch processor), so each stage takes its turn on what was pushed."""
        self.next_partition = 0
        self.accepted = 0
        self.acked = 0
        self.failed = 0
        self.in_flight = 0
        self.max_in_flight = max_in_flight
        self.waiters: deque[asyncio.Future[None]] = deque()
        self.wake_room = max(1, max_in_flight // 4)
        """Waiting pushers are woken once this much room is free (hysteresis: pushers then
        accept big slices instead of trickling one chunk at a time)."""
        self.accepting = True
        self.draining = False
        self.stopping = False
        self.rate = rate_limit
        self.remaining = rate_limit.allowed if rate_limit is not None else 0
        self.held: deque[Message] = deque()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.idle: asyncio.Event | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.idle = asyncio.Event()

    # -- accepting -----------------------------------------------------------------------------

    def prepare(self, items: Iterable[Any]) -> list[Message]:
        """Wrap items in messages and give each its key and processor; raises
        `PartitionKeyError` (nothing accepted) if a key cannot be computed or hashed."""
        partition_by = self.partition_by
        partitions = self.partitions
        new = object.__new__
        messages: list[Message] = []
        append = messages.append
        for item in items:
            if isinstance(item, Message):
                message = item
                key = message.key
            else:
                # `Message(item)` without its `__init__` (the other fields are class defaults):
                # 100 instead of 160 ns, paid by every pushed item.
                message = new(Message)
                message.data = item
                key = None
            if key is None and partition_by is not None:
                try:
                    key = partition_by(message)
                except Exception as exc:
                    raise PartitionKeyError(
                        f"partition_by raised {exc!r} for {message!r}; nothing was accepted"
                    ) from exc
                message.key = key
            if type(key) is int:
                message._index = abs(key) % partitions
            elif key is None:
                message._index = self.next_partition
                self.next_partition = (self.next_partition + 1) % partitions
            else:
                try:
                    message._index = hash(key) % partitions
                except TypeError:
                    raise PartitionKeyError(
                        f"the partition key {key!r} of {message!r} is not hashable; "
                        "nothing was accepted"
                    ) from None
            append(message)
        return messages

    async def pause(self) -> None:
        """If this pusher has routed `CHUNK` messages nobody has seen yet: send the pending
        chunks now and yield once per stage (`hops`), so the stages handle them before the
        pusher goes on."""
        if self.unflushed >= CHUNK:
            self.flush()
            for _ in range(self.hops):
                await asyncio.sleep(0)

    def check_open(self) -> None:
        if not self.accepting:
            raise PipelineStopped(f"pipeline {self.name!r} is not accepting messages")

    def free(self) -> int:
        """How many messages may be accepted now without waiting."""
        return 0 if self.waiters else self.max_in_flight - self.in_flight

    def accept_nowait(self, messages: list[Message]) -> None:
        """Accept all of `messages` or raise `PipelineFull` / `PipelineStopped`."""
        self.check_open()
        if len(messages) > self.free():
            raise PipelineFull(
                f"pipeline {self.name!r} holds {self.in_flight} of {self.max_in_flight} messages"
            )
        self.accept(messages)

    async def room(self, wanted: int) -> int:
        """Wait (FIFO with other pushers) until some messages may be accepted; how many."""
        self.check_open()
        free = self.max_in_flight - self.in_flight
        if free > 0 and not self.waiters:
            return min(free, wanted)
        assert self.loop is not None
        first = False
        while True:
            fut = self.loop.create_future()
            if first:
                self.waiters.appendleft(fut)
            else:
                self.waiters.append(fut)
            try:
                await fut
            except BaseException:
                if fut in self.waiters:
                    self.waiters.remove(fut)
                elif fut.done() and not fut.cancelled() and fut.exception() is None:
                    self.wake()
                raise
            self.check_open()
            free = self.max_in_flight - self.in_flight
            if free > 0:
                if self.waiters:
                    self.wake()
                return min(free, wanted)
            first = True

    def wake(self) -> None:
        free = self.max_in_flight - self.in_flight
        waiters = self.waiters
        while waiters and free > 0:
            fut = waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                free -= 1

    def accept(self, messages: list[Message]) -> None:
        count = len(messages)
        self.accepted += count
        self.in_flight += count
        if self.rate is not None or self.held:
            self.held.extend(messages)
            self.release()
        else:
            self.route(messages)

    def release(self) -> None:
        """Send on what the rate limit allows now (everything while draining)."""
        held = self.held
        if not held:
            return
        count = len(held)
        if self.rate is not None and not self.draining:
            count = min(count, self.remaining)
            self.remaining -= count
        if count > 0:
            self.route([held.popleft() for _ in range(count)])

    def route(self, messages: list[Message]) -> None:
        pending = self.pending
        self.unflushed += len(messages)
        assert self.loop is not None
        now = self.loop.time()
        since = self.pending_since
        for index, chunk in enumerate(pending):
            if not chunk:
                since[index] = now
        appends = [chunk.append for chunk in pending]
        for message in messages:
            appends[message._index](message)
        for index, chunk in enumerate(pending):
            if len(chunk) >= CHUNK:
                slot = self.processor_slots[index]
                for start in range(0, len(chunk) - CHUNK + 1, CHUNK):
                    slot.send((since[index], chunk[start : start + CHUNK]))
                pending[index] = chunk[len(chunk) - len(chunk) % CHUNK :]
                since[index] = now
        if not self.flush_scheduled:
            self.flush_scheduled = True
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        self.flush_scheduled = False
        self.unflushed = 0
        pending = self.pending
        for index, chunk in enumerate(pending):
            if chunk:
                pending[index] = []
                self.processor_slots[index].send((self.pending_since[index], chunk))

    # -- outcomes ------------------------------------------------------------------------------

    def finish(
        self,
        successful: list[Message],
        failed: list[Message],
        acknowledger: Acknowledger | Mixed | None = MIXED,
    ) -> None:
        """Messages ended: `handle_failed`, then the acknowledgers, then the accounting.
        `acknowledger`: the one every message carries, when the caller knows it (see
        `acknowledge`)."""
        if failed:
            run_hook(self.handle_failed, failed)
        acknowledge(successful, failed, acknowledger)
        done_ok, done_failed = len(successful), len(failed)
        self.acked += done_ok
        self.failed += done_failed
        self.in_flight -= done_ok + done_failed
        if self.waiters and self.max_in_flight - self.in_flight >= self.wake_room:
            self.wake()
        if self.in_flight == 0 and self.draining:
            assert self.idle is not None
            self.idle.set()

    # -- draining and stopping -----------------------------------------------------------------

    def stop_accepting(self) -> None:
        self.accepting = False
        self.draining = True
        waiters, self.waiters = self.waiters, deque()
        for fut in waiters:
            if not fut.done():
                fut.set_exception(PipelineStopped(f"pipeline {self.name!r} is draining"))
        self.release()
        self.flush()
        for slot in self.batcher_slots.values():
            if slot.ref is not None:
                slot.ref.send("flush")

    async def drained(self, timeout: float) -> bool:
        """Wait until nothing is in flight; False if `timeout` passed first."""
        assert self.idle is not None
        if self.in_flight == 0:
            return True
        try:
            async with asyncio.timeout(timeout):
                await self.idle.wait()
        except TimeoutError:
            return False
        return True

    def abandon(self, reason: object) -> None:
        """The pipeline has stopped: end everything still in flight, exactly once. What a
        processor had handled is acked (no batchers) or failed (it never reached its batch),
        everything else is failed with `reason`: nothing is lost silently."""
        self.accepting = False
        successful: list[Message] = []
        left: list[Message] = list(self.held)
        self.held.clear()
        for chunk in self.pending:
            left.extend(chunk)
            chunk.clear()
        for pslot in self.processor_slots:
            successful.extend(pslot.ok)
            left.extend(pslot.failed)
            for runs in pslot.out.values():
                for _, _, messages in runs:
                    left.extend(messages)
            for position, (_, chunk) in enumerate(pslot.queue):
                if position == 0:
                    self._settle_handled(chunk[: pslot.pos], successful, left)
                    left.extend(chunk[pslot.pos :])
                else:
                    left.extend(chunk)
            for parked in pslot.parked.values():
                left.extend(parked)
            pslot.ok, pslot.failed, pslot.out, pslot.parked = [], [], {}, {}
            pslot.queue.clear()
            pslot.running = None
        for bslot in self.batcher_slots.values():
            for runs in bslot.queue:
                for _, _, messages in runs:
                    left.extend(messages)
            for _, messages in bslot.buffers.values():
                left.extend(messages)
            bslot.queue.clear()
            bslot.buffers.clear()
        for slots in self.batch_slots.values():
            for batch_slot in slots:
                for _, messages, _ in batch_slot.queue:
                    left.extend(messages)
                batch_slot.queue.clear()
        for message in left:
            if message.failure is None:
                message.failure = reason
        if successful or left:
            log.warning(
                "pipeline.abandoned", pipeline=self.name, failed=len(left), reason=repr(reason)
            )
            self.finish(successful, left)

    def _settle_handled(
        self, handled: list[Message], successful: list[Message], left: list[Message]
    ) -> None:
        """The messages of an unfinished chunk that its processor had already handled: without
        batchers a success is final (acked); with batchers it never reached its batch (failed).
        A message parked for a strict-mode retry is left to the parked ones, so it ends once."""
        for message in handled:
            if message._index == PARKED:
                continue
            if message.failure is None and not self.batchers:
                successful.append(message)
            else:
                left.append(message)

    # -- statistics ----------------------------------------------------------------------------

    def processor_statistics(self, index: int) -> StageStatistics:
        """Processor `index`'s counters (what its actor's `statistics()` reports)."""
        pslot = self.processor_slots[index]
        return stage_statistics("processor", pslot.index, pslot.counters, len(pslot.queue))

    def batcher_statistics(self, name: str) -> StageStatistics:
        """Batcher `name`'s counters; its queue counts open batches too."""
        bslot = self.batcher_slots[name]
        queued = len(bslot.queue) + len(bslot.buffers)
        return stage_statistics(f"batcher:{name}", 0, bslot.counters, queued)

    def batch_processor_statistics(self, name: str, index: int) -> StageStatistics:
        """Batch processor `index` of batcher `name`: its counters."""
        slot = self.batch_slots[name][index]
        return stage_statistics(
            f"batch_processor:{name}", slot.index, slot.counters, len(slot.queue)
        )

    def statistics(self) -> PipelineStatistics:
        stages: list[StageStatistics] = [
            self.processor_statistics(pslot.index) for pslot in self.processor_slots
        ]
        for name in self.batcher_slots:
            stages.append(self.batcher_statistics(name))
            stages.extend(
                self.batch_processor_statistics(name, slot.index) for slot in self.batch_slots[name]
            )
        return PipelineStatistics(
            name=self.name,
            accepted=self.accepted,
            acked=self.acked,
            failed=self.failed,
            in_flight=self.in_flight,
            max_in_flight=self.max_in_flight,
            rate_limited=len(self.held),
            draining=self.draining,
            stages=tuple(stages),
        )
