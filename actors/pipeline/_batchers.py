"""Batchers and batch processors: group messages and run ``handle_batch`` on each group.

A batcher (one actor per batcher name) receives the successful messages of every processor, in
the order each processor sent them, and puts each in the open batch of its (batch_key,
partition). The partition is ``key % concurrency`` (hash for non-integers) of the batcher's
`partition_by`, or of the message's processor key when the batcher has none, so a batch never
mixes partitions and all of a partition's batches go, in order, to the same batch processor.
Processors compute the partition (as GenStage's PartitionDispatcher does, in the sending stage)
and send runs of consecutive messages of one (batch_key, partition), so the batcher's work is
per run, not per message; a message whose batch partition cannot be computed fails with
`PartitionKeyError` there.
A batch is emitted at `batch_size` messages, `batch_timeout` seconds after it opened, at once
for a message marked ``flush`` (test helpers), and at once while the pipeline drains. With
`flush_when_idle`, it is also emitted whenever its batch processor has no batch: when the
batch opens, and when the batch processor finishes its last batch (it tells the batcher).

A batch processor handles one batch at a time: ``handle_batch(messages, info)`` may mark
messages failed; if it raises, all the batch's messages fail (strict mode: the batch is retried
after a back-off, and that batch processor's later batches wait). Then the batch is acked.

Open batches and queued batches live in slots (see `actors.pipeline._slots`): a restarted
batcher re-arms its timers, a restarted batch processor fails (strict: retries) the batch it
was in the middle of and goes on with the next.
"""

from __future__ import annotations

from types import CoroutineType
from typing import TYPE_CHECKING, Any

from actors import Actor, Timer
from actors.pipeline._message import MIXED, Interrupted, RetriesExhausted
from actors.pipeline._options import BatchInfo
from actors.pipeline._statistics import StageStatistics, emit

if TYPE_CHECKING:
    from actors.pipeline._topology import Topology

__all__ = ["BatchProcessor", "Batcher"]


class Batcher(Actor):
    """The batcher named `name`; see the module documentation."""

    def __init__(self, topology: Topology, name: str) -> None:
        self.topology = topology
        self.slot = topology.batcher_slots[name]
        self.spec = self.slot.spec
        self.targets = topology.batch_slots[name]
        self.timers: dict[tuple[Any, int | None], Timer] = {}

    def statistics(self) -> StageStatistics:
        return self.topology.batcher_statistics(self.slot.name)

    def describe(self) -> str:
        slot = self.slot
        return (
            f"batcher {slot.name!r}: {self.statistics().handled} batched, "
            f"{len(slot.buffers)} open batches, {len(slot.queue)} casts queued"
        )

    def init(self) -> None:
        assert self.topology.loop is not None
        now = self.topology.loop.time()
        for batch_key, (opened, _) in self.slot.buffers.items():
            delay = max(0.0, opened + self.spec.batch_timeout - now)
            self.timers[batch_key] = self.send_after(delay, ("timeout", batch_key))
        self.slot.attach(self.ref)
        if self.topology.draining:
            self._emit_all()
        elif self.spec.flush_when_idle:
            self._emit_idle()

    def handle_cast(self, message: Any) -> None:
        slot = self.slot
        if not slot.queue:
            return
        runs = slot.queue.popleft()
        buffers = slot.buffers
        size = self.spec.batch_size
        opened: list[tuple[Any, int | None]] = []
        loop = self.topology.loop
        assert loop is not None
        now = loop.time()
        for batch_key, partition, messages in runs:
            group = (batch_key, partition)
            start, count = 0, len(messages)
            while start < count:
                entry = buffers.get(group)
                if entry is None:
                    entry = buffers[group] = (now, [])
                    opened.append(group)
                batch = entry[1]
                take = min(max(1, size - len(batch)), count - start)
                batch.extend(messages if take == count else messages[start : start + take])
                start += take
                if start == count and messages[-1].flush:
                    self._emit(group, "flush")
                elif len(batch) >= size:
                    self._emit(group, "size")
        if self.topology.draining:
            self._emit_all()
        elif self.spec.flush_when_idle:
            self._emit_idle()
        timers, timeout = self.timers, self.spec.batch_timeout
        for group in opened:
            if group in buffers and group not in timers:
                delay = max(0.0, buffers[group][0] + timeout - loop.time())
                timers[group] = self.send_after(delay, ("timeout", group))

    def handle_info(self, message: Any) -> None:
        match message:
            case ("timeout", batch_key):
                self.timers.pop(batch_key, None)
                if batch_key in self.slot.buffers:
                    self._emit(batch_key, "timeout")
            case "flush":
                self._emit_all()
            case "idle":
                self._emit_idle()
            case _:
                self.log.warning("pipeline.batcher_unexpected", message=repr(message))

    def _emit_all(self) -> None:
        for batch_key in list(self.slot.buffers):
            self._emit(batch_key, "flush")

    def _emit_idle(self) -> None:
        """Emit the open batches whose batch processor has nothing queued (flush_when_idle)."""
        targets = self.targets
        for batch_key in list(self.slot.buffers):
            partition = batch_key[1]
            if partition is not None:
                if not targets[partition].queue:
                    self._emit(batch_key, "idle", partition)
                continue
            for index, target in enumerate(targets):
                if not target.queue:
                    self._emit(batch_key, "idle", index)
                    break

    def _emit(
        self, batch_key: tuple[Any, int | None], trigger: str, target: int | None = None
    ) -> None:
        slot = self.slot
        opened, messages = slot.buffers.pop(batch_key)
        timer = self.timers.pop(batch_key, None)
        if timer is not None:
            timer.cancel()
        partition = batch_key[1]
        if target is None:
            if partition is None:
                target = slot.next_processor
                slot.next_processor = (target + 1) % len(self.targets)
            else:
                target = partition
        info = BatchInfo(slot.name, batch_key[0], partition, len(messages), trigger)
        slot.counters.handled += len(messages)
        self.targets[target].send((info, messages, opened))


class BatchProcessor(Actor):
    """Batch processor number `index` of batcher `name`; see the module documentation."""

    def __init__(self, topology: Topology, name: str, index: int) -> None:
        self.topology = topology
        self.name = name
        self.slot = topology.batch_slots[name][index]
        self.handle_batch = topology.batchers[name].handle_batch
        self.retry = topology.processors.retry
        self.batcher = (
            topology.batcher_slots[name] if topology.batchers[name].flush_when_idle else None
        )
        """The batcher to tell when this batch processor runs out of batches (flush_when_idle)."""

    def statistics(self) -> StageStatistics:
        return self.topology.batch_processor_statistics(self.name, self.slot.index)

    def describe(self) -> str:
        stats, slot = self.statistics(), self.slot
        blocked = ", retrying its head batch" if slot.blocked else ""
        of = len(self.topology.batch_slots[self.name])
        return (
            f"batch processor {self.name!r} {slot.index + 1}/{of}: "
            f"{stats.handled} handled, {stats.failed} failed, "
            f"{stats.queued} batches queued{blocked}"
        )

    def init(self) -> None:
        slot = self.slot
        if slot.running:
            slot.running = False
            error = Interrupted(f"batch processor {slot.index} exited while handling this batch")
            self._failed(error)
        if slot.blocked and slot.queue:
            assert self.retry is not None
            self.send_after(self.retry.delay(slot.attempts), "retry")
        slot.attach(self.ref)

    async def handle_cast(self, message: Any) -> None:
        if self.slot.queue and not self.slot.blocked:
            await self._run_head()

    async def handle_info(self, message: Any) -> None:
        if message == "retry":
            slot = self.slot
            slot.blocked = False
            while slot.queue and not slot.blocked:
                await self._run_head()
        else:
            await super().handle_info(message)

    async def _run_head(self) -> None:
        slot = self.slot
        info, messages, _ = slot.queue[0]
        loop = self.topology.loop
        assert loop is not None
        started = loop.time()
        try:
            result = self.handle_batch(messages, info)
            if type(result) is CoroutineType:
                slot.running = True
                await result
                slot.running = False
        except Exception as exc:
            slot.running = False
            self._failed(exc)
            return
        self._done(started)

    def _tell_if_idle(self) -> None:
        batcher = self.batcher
        if batcher is not None and not self.slot.queue and batcher.ref is not None:
            batcher.ref.send("idle")

    def _failed(self, error: Exception) -> None:
        """The head batch raised (or was interrupted): retry it, or fail all its messages."""
        slot = self.slot
        _, messages, _ = slot.queue[0]
        if self.retry is not None:
            slot.attempts += 1
            if not self.retry.exhausted(slot.attempts):
                for message in messages:
                    message.failure = None
                slot.blocked = True
                self.send_after(self.retry.delay(slot.attempts), "retry")
                return
            final = RetriesExhausted(f"batch failed {slot.attempts} times: {error!r}")
            final.__cause__ = error
            error = final
        for message in messages:
            message.failure = error
        assert self.topology.loop is not None
        self._done(self.topology.loop.time())

    def _done(self, started: float) -> None:
        slot = self.slot
        _, messages, opened = slot.queue.popleft()
        slot.attempts = 0
        slot.blocked = False
        self._tell_if_idle()
        # One pass for the common batch (all successful, one acknowledger): it is acked as a
        # whole, without the failure split and the acknowledgers' grouping (two passes more).
        first = messages[0].acknowledger
        for message in messages:
            if message.failure is not None or message.acknowledger is not first:
                failed = [message for message in messages if message.failure is not None]
                ok = [m for m in messages if m.failure is None] if failed else messages
                break
        else:
            ok, failed = messages, []
        counters = slot.counters
        counters.handled += len(messages)
        counters.failed += len(failed)
        topology = self.topology
        assert topology.loop is not None
        now = topology.loop.time()
        counters.latency(now - opened)
        if topology.telemetry is not None:
            emit(
                topology.telemetry,
                ("batch_processor", "stop"),
                {"count": len(messages), "failed": len(failed), "duration": now - started},
                {"pipeline": topology.name, "batcher": self.name, "index": slot.index},
            )
        topology.finish(ok, failed, first if ok is messages and not failed else MIXED)
