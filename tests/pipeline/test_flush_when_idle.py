"""`Batchers(flush_when_idle=True)`: a batch goes to its batch processor as soon as that one has
nothing to do, so a lone message does not wait for `batch_timeout`, and what arrives while a
batch is handled is gathered into the next batch (group commit), still bounded by
`batch_size`, and emitted the moment the batch processor is free, even after a restart."""

from __future__ import annotations

import asyncio

import pytest

from actors import ActorRef, ActorSystem, get_state
from actors.pipeline import Batchers, BatchInfo, Message, Pipeline, Processors, push, push_many
from tests.pipeline.conftest import Ledger

pytestmark = pytest.mark.anyio


class Held:
    """A pipeline (batch_timeout 30 s, flush_when_idle) whose batch handler records each batch
    and holds them until `release` is set; `ledger` records every message's end."""

    def __init__(self) -> None:
        self.batches: list[tuple[list[int], str]] = []
        self.first_started = asyncio.Event()
        self.release = asyncio.Event()
        self.processed = asyncio.Event()
        self.ledger = Ledger()
        self.last = 0

    async def handle_batch(self, messages: list[Message], info: BatchInfo) -> None:
        self.batches.append(([m.data for m in messages], info.trigger))
        self.first_started.set()
        await self.release.wait()

    def handle_message(self, message: Message) -> None:
        if message.data == self.last:
            self.processed.set()

    async def start(self, system: ActorSystem, name: str, batch_size: int = 100) -> ActorRef:
        batchers = Batchers(
            self.handle_batch, batch_size=batch_size, batch_timeout=30.0, flush_when_idle=True
        )
        self.ref = await system.spawn(
            Pipeline(
                name,
                processors=Processors(self.handle_message, concurrency=1),
                batchers={"default": batchers},
            )
        )
        return self.ref

    async def hold_first_then_gather(self, last: int, *, one_push: bool = True) -> None:
        """Push 0 and wait until its batch is being handled; then push 1..`last` (in one push,
        or one push each) and wait until the processor has handled them all: their runs are
        then on their way to the batcher, ahead of anything sent later."""
        self.last = last
        await push(self.ref, 0, acknowledger=self.ledger)
        async with asyncio.timeout(5):
            await self.first_started.wait()
        if one_push:
            await push_many(
                self.ref, [Message(n, acknowledger=self.ledger) for n in range(1, last + 1)]
            )
        else:
            for n in range(1, last + 1):
                await push(self.ref, n, acknowledger=self.ledger)
        async with asyncio.timeout(5):
            await self.processed.wait()


async def test_a_lone_message_is_batched_at_once_when_the_batch_processor_is_idle(
    system: ActorSystem,
) -> None:
    held = Held()
    held.release.set()
    ref = await held.start(system, "lone")
    await push(ref, 0, acknowledger=held.ledger)
    await held.ledger.wait_for(1, timeout=5)  # far below the 30 s batch_timeout
    assert held.batches == [([0], "idle")]


async def test_what_arrives_while_a_batch_is_handled_goes_together_in_the_next_batch(
    system: ActorSystem,
) -> None:
    held = Held()
    await held.start(system, "gather")
    await held.hold_first_then_gather(9, one_push=False)  # nine runs reach the batcher
    held.release.set()
    await held.ledger.wait_for(10, timeout=5)
    assert held.batches == [([0], "idle"), (list(range(1, 10)), "idle")]
    assert held.ledger.acked_order == list(range(10))


async def test_batch_size_still_bounds_what_gathers_behind_a_running_batch(
    system: ActorSystem,
) -> None:
    held = Held()
    await held.start(system, "bounded", batch_size=4)
    await held.hold_first_then_gather(9)
    held.release.set()
    await held.ledger.wait_for(10, timeout=5)
    assert held.batches == [
        ([0], "idle"),
        ([1, 2, 3, 4], "size"),
        ([5, 6, 7, 8], "size"),
        ([9], "idle"),
    ]


async def test_a_restarted_batch_processor_takes_what_gathered_while_it_was_busy(
    system: ActorSystem,
) -> None:
    held = Held()
    await held.start(system, "restart")
    await held.hold_first_then_gather(3)
    held.release.set()  # only later batches pass: the first one is interrupted by the kill
    victim = system.whereis("restart.batcher.default.processor_0")
    assert victim is not None
    victim.exit("kill")
    await held.ledger.wait_for(4, timeout=5)
    assert [m.data for m in held.ledger.failed.values()] == [0]
    assert held.ledger.acked_order == [1, 2, 3]
    assert held.batches == [([0], "idle"), ([1, 2, 3], "idle")]


async def test_a_restarted_batcher_flushes_what_it_had_gathered_once_its_processor_is_free(
    system: ActorSystem,
) -> None:
    held = Held()
    await held.start(system, "rebatch")
    await held.hold_first_then_gather(3)
    victim = system.whereis("rebatch.batcher.default.batcher")
    assert victim is not None
    await get_state(victim)  # in mailbox order: the batcher has gathered 1, 2, 3 by now
    victim.exit("kill")  # rest_for_one: its batch processor is shut down, then both restart
    held.release.set()  # the batch processor finishes its batch as it shuts down
    await held.ledger.wait_for(4, timeout=5)  # far below the 30 s batch_timeout
    assert held.ledger.acked_order == [0, 1, 2, 3]
    assert held.batches == [([0], "idle"), ([1, 2, 3], "idle")]
