"""Producers: where a pipeline's messages come from.

`InMemoryProducer` (the default) produces nothing by itself: callers push into the pipeline with
`push`, `push_nowait` and `push_many`, which hand messages straight to the dispatcher (no hop
through the producer actor), in the caller's order.

An external source (a broker consumer, a file tailer) subclasses `Producer` and implements
``produce(emit)``: a coroutine that runs for as long as the pipeline does and calls
``await emit(items)`` with data or `Message` objects (give them an `acknowledger` to settle them
at the source). `emit` waits while the pipeline is full (back-pressure) and raises
`PipelineStopped` once the pipeline drains. When the pipeline stops, `produce` is cancelled:
treat the cancellation as "stop fetching". If `produce` raises, the producer actor crashes and
its supervisor restarts it, calling `produce` again on the same object (resume from the source's
own position). A `produce` that returns means the source is exhausted; pushes still work.

``stop()`` is called whenever the producer actor stops, after `produce` has ended: on a restart,
and last on shutdown, when the drain has already ended every message it could (the terminator
stops first and waits, so a broker producer can still acknowledge on the channel that
delivered, and close it only in `stop`). It must leave the object ready for another `produce`.
Errors in `stop` are logged, not raised.

Only one producer per pipeline: per-key order holds for the messages of one producer (or one
pushing coroutine), as in Broadway.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from actors import Actor, Caller

if TYPE_CHECKING:
    from actors.pipeline._topology import Topology

__all__ = ["Emit", "InMemoryProducer", "Producer", "ProducerStage"]

Emit = Callable[[Sequence[Any]], Awaitable[None]]


class Producer:
    """A message source; override `produce`. See the module documentation."""

    async def produce(self, emit: Emit) -> None:
        """Emit messages until cancelled (the default emits nothing)."""
        return None

    async def stop(self) -> None:
        """Release the source after `produce` has ended (the default does nothing)."""
        return None

    def statistics(self) -> object | None:
        """A snapshot of the source's counters (e.g. `RabbitMQStatistics`), which its stage
        actor reports (`actors.statistics` of the producer stage); None: it keeps none."""
        return None


class InMemoryProducer(Producer):
    """The producer that callers push into (`push`, `push_nowait`, `push_many`)."""


class _ProduceFailed(Exception):
    pass


class ProducerStage(Actor):
    """The producer actor: runs the producer's `produce` on a task it owns."""

    def __init__(self, topology: Topology, producer: Producer) -> None:
        self.topology = topology
        self.producer = producer
        self.task: asyncio.Task[None] | None = None
        self.emitted = 0

    def statistics(self) -> object | None:
        return self.producer.statistics()

    def describe(self) -> str:
        state = "running" if self.task is not None and not self.task.done() else "idle"
        return f"producer {type(self.producer).__name__} ({state}), {self.emitted} emitted"

    def init(self) -> None:
        self.trap_exits = True
        self.topology.producer.attach(self.ref)
        if type(self.producer).produce is not Producer.produce and self.topology.accepting:
            self.task = asyncio.get_running_loop().create_task(self.producer.produce(self._emit))
            self.task.add_done_callback(self._ended)

    async def _emit(self, items: Sequence[Any]) -> None:
        from actors.pipeline._pipeline import accept_many

        await accept_many(self.topology, items)
        self.emitted += len(items)

    def _ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.ref.cast(_ProduceFailed(task.exception()))

    def handle_cast(self, message: Any) -> None:
        if isinstance(message, _ProduceFailed):
            raise message.args[0]

    async def handle_call(self, message: Any, caller: Caller) -> Any:
        if message == "drain":
            await self._cancel()
            return None
        return await super().handle_call(message, caller)

    async def terminate(self, reason: object) -> None:
        await self._cancel()
        try:
            await self.producer.stop()
        except Exception as exc:
            self.log.error("pipeline.producer_stop_failed", reason=repr(exc), exc_info=exc)

    async def _cancel(self) -> None:
        task, self.task = self.task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task])
