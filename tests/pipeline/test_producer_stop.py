"""`Producer.stop` runs after `produce` has ended and after the drain: a broker producer can
still acknowledge what was in flight on its channel, and close the channel only then."""

from __future__ import annotations

import asyncio

import pytest

from actors import ActorSystem
from actors.pipeline import Emit, Message, Pipeline, Processors, Producer

pytestmark = pytest.mark.anyio


class Source(Producer):
    def __init__(self) -> None:
        self.events: list[str] = []
        self.acked: list[int] = []
        self.cancelled = asyncio.Event()

    async def produce(self, emit: Emit) -> None:
        try:
            await emit([Message(i, acknowledger=self) for i in range(5)])
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.events.append("produce cancelled")
            self.cancelled.set()
            raise

    def ack(self, successful: list[Message], failed: list[Message]) -> None:
        self.acked.extend(m.data for m in successful)
        self.events.append(f"acked {len(self.acked)}")

    async def stop(self) -> None:
        self.events.append(f"stop after {len(self.acked)} acks")


async def test_stop_is_called_once_after_produce_is_cancelled_and_everything_is_acked(
    system: ActorSystem,
) -> None:
    gate = asyncio.Event()
    started = asyncio.Event()

    async def handle(message: Message) -> None:
        started.set()
        await gate.wait()

    source = Source()
    ref = await system.spawn(Pipeline("stopping", producer=source, processors=Processors(handle)))
    await started.wait()
    stopping = asyncio.ensure_future(ref.stop())
    await source.cancelled.wait()
    gate.set()
    await stopping
    assert source.events[0] == "produce cancelled"
    assert source.events[-1] == "stop after 5 acks"
    assert [e for e in source.events if e.startswith("stop")] == ["stop after 5 acks"]
    assert sorted(source.acked) == [0, 1, 2, 3, 4]
