"""Processors: the stage that runs ``handle_message`` on every message, in order per partition.

Processor number i serves partition i. It handles one chunk at a time, one message at a time,
in the order the chunks were dispatched, so messages with equal keys are handled one after
another in push order. A plain handler runs inline (a whole chunk is one callback); an
``async def`` handler is awaited, message by message.

Failures never crash the processor: a handler that raises, or that calls ``message.fail``,
fails its message. Without strict mode the message is acked as failed at the end of its chunk
and the partition goes on (a gap, as in Broadway). In strict mode (``Processors(strict=
Retry(...))``) the failed message's key is *parked*: later messages with that key wait behind it
while other keys go on, and the message is retried after a back-off until it succeeds (then the
waiting messages follow, in order) or exhausts its attempts (`RetriesExhausted`, a gap).

Outcomes are grouped per chunk: successful messages go to their batchers (one cast per batcher,
carrying runs of messages already sorted by batch key and batch partition) or, without
batchers, are acked together with the failed ones.

If a processor dies (killed, or stopped because a sibling died and its group restarts), its slot
keeps the chunks it had not finished. The restarted processor fails the message whose handler
was interrupted with `Interrupted` (strict mode: retries it like any failure) and handles the
rest in order.
"""

from __future__ import annotations

from collections import deque
from types import CoroutineType
from typing import TYPE_CHECKING, Any

from actors import Actor
from actors.pipeline._message import (
    Interrupted,
    Message,
    PartitionKeyError,
    RetriesExhausted,
    UnknownBatcher,
)
from actors.pipeline._options import KeyFunction
from actors.pipeline._slots import PARKED, Run
from actors.pipeline._statistics import StageStatistics, emit

if TYPE_CHECKING:
    from actors.pipeline._topology import Topology

__all__ = ["Processor"]


class Processor(Actor):
    """Processor number `index` of a pipeline; see the module documentation."""

    def __init__(self, topology: Topology, index: int) -> None:
        self.topology = topology
        self.slot = topology.processor_slots[index]
        self.handle = topology.processors.handle_message
        self.retry = topology.processors.retry
        self.batched = bool(topology.batchers)
        self.routes: dict[str, tuple[KeyFunction | None, int]] = {
            name: (spec.partition_by, spec.concurrency) for name, spec in topology.batchers.items()
        }
        """Per batcher: its key function (None: the message's key, from `push(key=...)` or the
        processors' `partition_by`), its concurrency."""

    def statistics(self) -> StageStatistics:
        return self.topology.processor_statistics(self.slot.index)

    def describe(self) -> str:
        stats, slot = self.statistics(), self.slot
        retrying = f", {len(slot.parked)} keys retrying" if slot.parked else ""
        return (
            f"processor {slot.index + 1}/{self.topology.partitions}: {stats.handled} handled, "
            f"{stats.failed} failed, {stats.queued} chunks queued{retrying}"
        )

    def init(self) -> None:
        slot = self.slot
        running, slot.running = slot.running, None
        if running is not None:
            message, from_chunk = running
            message.failure = Interrupted(
                f"processor {slot.index} exited while handling this message"
            )
            if from_chunk:
                slot.pos += 1
                if self.retry is not None:
                    self._park(message, arm=False)
            else:
                self._failed_retry(message, slot.parked[message.key])
        for key, parked in list(slot.parked.items()):
            if parked:
                self._arm(key, parked[0])
            else:
                del slot.parked[key]
        slot.attach(self.ref)
        self._flush()

    async def handle_cast(self, message: Any) -> None:
        """Handle the first queued chunk (each cast is a wake-up for one chunk)."""
        slot = self.slot
        if not slot.queue:
            return
        since, chunk = slot.queue[0]
        handle = self.handle
        parked = slot.parked
        strict = self.retry is not None
        topology = self.topology
        loop = topology.loop
        assert loop is not None
        started = loop.time() if topology.telemetry else 0.0
        skipped = 0
        start = slot.pos
        for index in range(start, len(chunk)):
            message = chunk[index]
            if parked and message.key in parked:
                parked[message.key].append(message)
                message._index = PARKED
                skipped += 1
                continue
            try:
                result = handle(message)
                if type(result) is CoroutineType:
                    slot.pos = index
                    slot.running = (message, True)
                    await result
                    slot.running = None
            except Exception as exc:
                slot.running = None
                message.failure = exc
            if strict and message.failure is not None:
                self._park(message)
        slot.queue.popleft()
        handled = len(chunk) - start - skipped
        slot.pos = 0
        self._settle(chunk, strict or skipped > 0)
        counters = slot.counters
        counters.handled += handled
        now = loop.time()
        counters.latency(now - since)
        if topology.telemetry is not None:
            emit(
                topology.telemetry,
                ("processor", "stop"),
                {"count": handled, "duration": now - started},
                {"pipeline": topology.name, "index": slot.index},
            )
        self._flush()

    def _settle(self, chunk: list[Message], parking: bool) -> None:
        """Sort a finished chunk's messages into the slot's outcomes (parked ones stay out)."""
        if self.batched:
            self._route(chunk, parking)
            return
        slot = self.slot
        failed = [message for message in chunk if message.failure is not None]
        if parking:
            failed = [message for message in failed if message._index != PARKED]
        if not failed and not parking:
            slot.ok.extend(chunk) if slot.ok else setattr(slot, "ok", chunk)
        else:
            slot.ok.extend(m for m in chunk if m.failure is None and m._index != PARKED)
        slot.failed.extend(failed)

    async def handle_info(self, message: Any) -> None:
        match message:
            case ("retry", key):
                await self._retry(key)
            case _:
                await super().handle_info(message)

    # -- strict mode ---------------------------------------------------------------------------

    def _park(self, message: Message, *, arm: bool = True) -> None:
        """A message failed an attempt: park its key and retry it later, unless exhausted."""
        retry = self.retry
        assert retry is not None
        message.attempts += 1
        if retry.exhausted(message.attempts):
            self._exhausted(message)
            return
        message._index = PARKED
        self.slot.parked[message.key] = deque((message,))
        if arm:
            self._arm(message.key, message)

    def _arm(self, key: Any, message: Message) -> None:
        assert self.retry is not None
        self.send_after(self.retry.delay(message.attempts), ("retry", key))

    def _exhausted(self, message: Message) -> None:
        error = RetriesExhausted(f"failed {message.attempts} times: {message.failure!r}")
        if isinstance(message.failure, BaseException):
            error.__cause__ = message.failure
        message.failure = error

    def _failed_retry(self, message: Message, parked: deque[Message]) -> bool:
        """The head of a parked key failed again: True if it will be retried."""
        assert self.retry is not None
        message.attempts += 1
        if not self.retry.exhausted(message.attempts):
            return True
        parked.popleft()
        self._exhausted(message)
        self.slot.failed.append(message)
        return False

    async def _retry(self, key: Any) -> None:
        slot = self.slot
        parked = slot.parked.get(key)
        while parked:
            message = parked[0]
            message.failure = None
            slot.counters.handled += 1
            try:
                result = self.handle(message)
                if type(result) is CoroutineType:
                    slot.running = (message, False)
                    await result
                    slot.running = None
            except Exception as exc:
                slot.running = None
                message.failure = exc
            if message.failure is not None:
                if self._failed_retry(message, parked):
                    self._arm(key, message)
                    break
                continue
            parked.popleft()
            self._succeeded(message)
        if parked is not None and not parked:
            del slot.parked[key]
        self._flush()

    def _succeeded(self, message: Message) -> None:
        if self.batched:
            self._route([message], False)
        else:
            self.slot.ok.append(message)

    def _route(self, messages: list[Message], parking: bool) -> None:
        """Move failed messages to the slot's failed ones (parked ones stay out) and group the
        successful ones into runs for their batchers (the batchers' dispatch, done
        here as GenStage's PartitionDispatcher does it in the sending stage): a run is a list of
        consecutive messages with the same batcher, batch key and batch partition; it ends after
        a message marked ``flush``. A message routed to a batcher that does not exist fails with
        `UnknownBatcher`, one whose batch partition cannot be computed with
        `PartitionKeyError`."""
        slot = self.slot
        out = slot.out
        routes = self.routes
        bad: list[Message] = []
        name: str | None = None
        key_function: KeyFunction | None = None
        concurrency = 1
        runs: list[Run] = []
        run: list[Message] | None = None
        batch_key: Any = None
        partition: int | None = None
        failed: list[Message] = []
        for message in messages:
            if parking and message._index == PARKED:
                continue
            if message.failure is not None:
                failed.append(message)
                continue
            if message.batcher != name:
                route = routes.get(message.batcher)
                if route is None:
                    message.failure = UnknownBatcher(f"no batcher named {message.batcher!r}")
                    bad.append(message)
                    continue
                name = message.batcher
                key_function, concurrency = route
                runs = out.setdefault(name, [])
                run = None
            try:
                key = key_function(message) if key_function is not None else message.key
                if key is None:
                    part = None
                elif type(key) is int:
                    part = abs(key) % concurrency
                else:
                    part = hash(key) % concurrency
            except Exception as exc:
                message.failure = PartitionKeyError(f"batcher {name!r}: {exc!r}")
                message.failure.__cause__ = exc
                bad.append(message)
                continue
            if run is None or part != partition or message.batch_key is not batch_key:
                batch_key, partition = message.batch_key, part
                run = []
                runs.append((batch_key, partition, run))
            run.append(message)
            if message.flush:
                run = None
        slot.failed.extend(failed)
        slot.failed.extend(bad)

    # -- outcomes ------------------------------------------------------------------------------

    def _flush(self) -> None:
        slot = self.slot
        if slot.out:
            out, slot.out = slot.out, {}
            for name, runs in out.items():
                self.topology.batcher_slots[name].send(runs)
        if slot.ok or slot.failed:
            ok, failed = slot.ok, slot.failed
            slot.ok, slot.failed = [], []
            slot.counters.failed += len(failed)
            self.topology.finish(ok, failed)
