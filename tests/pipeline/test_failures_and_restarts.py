"""Failures: a raising handler fails only its message, handle_failed sees it, and a killed
processor or batch processor loses nothing: the interrupted message fails (strict mode: is
retried), and the rest of its partition is handled in order by the restarted actor."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from actors import ActorSystem
from actors.pipeline import (
    Batchers,
    BatchInfo,
    Interrupted,
    Message,
    Pipeline,
    Processors,
    RetriesExhausted,
    Retry,
    push,
    push_many,
    statistics,
    test_message,
)
from tests.pipeline.conftest import Ledger

pytestmark = pytest.mark.anyio


async def test_a_handler_that_raises_fails_its_message_and_the_partition_goes_on(
    system: ActorSystem,
) -> None:
    seen: list[int] = []
    failed_hook: list[Any] = []

    def handle(message: Message) -> None:
        if message.data == 2:
            raise ValueError("bad two")
        seen.append(message.data)

    ref = await system.spawn(
        Pipeline(
            "fail",
            processors=Processors(handle, concurrency=1),
            handle_failed=lambda ms: failed_hook.extend(m.data for m in ms),
        )
    )
    ledger = Ledger()
    await push_many(ref, [Message(i, acknowledger=ledger) for i in range(5)])
    await ledger.wait_for(5)
    assert seen == [0, 1, 3, 4]
    assert failed_hook == [2]
    (bad,) = ledger.failed.values()
    assert isinstance(bad.failure, ValueError)
    assert ref.alive
    assert statistics(ref).failed == 1


async def test_message_fail_marks_a_message_failed_without_raising(system: ActorSystem) -> None:
    ref = await system.spawn(
        Pipeline("mark", processors=Processors(lambda m: m.fail("nope"), concurrency=1))
    )
    message = await test_message(ref, "x")
    assert message.status == "failed"
    assert message.failure == "nope"


async def test_strict_mode_gives_up_after_max_attempts_with_a_gap_reported_to_handle_failed(
    system: ActorSystem,
) -> None:
    calls: list[int] = []
    hook: list[Message] = []

    def handle(message: Message) -> None:
        calls.append(message.data)
        if message.data == 1:
            raise ValueError("always")

    ref = await system.spawn(
        Pipeline(
            "exhaust",
            processors=Processors(
                handle, concurrency=1, partition_by=lambda m: "k", strict=Retry(3, 0.001, 2, 0.002)
            ),
            handle_failed=hook.extend,
        )
    )
    ledger = Ledger()
    await push_many(ref, [Message(i, acknowledger=ledger) for i in range(3)])
    await ledger.wait_for(3)
    assert calls == [0, 1, 1, 1, 2], "the key waited for the retries before moving on"
    assert [m.data for m in hook] == [1]
    assert isinstance(hook[0].failure, RetriesExhausted)
    assert isinstance(hook[0].failure.__cause__, ValueError)


class Gate:
    """An async handler that blocks on one message until released."""

    def __init__(self, blocking: int) -> None:
        self.blocking = blocking
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.handled: list[int] = []
        self.attempts = 0

    async def __call__(self, message: Message) -> None:
        if message.data == self.blocking:
            self.attempts += 1
            if self.attempts == 1:
                self.entered.set()
                await self.release.wait()
        self.handled.append(message.data)


@pytest.mark.parametrize("strict", [False, True])
async def test_killing_a_processor_mid_stream_fails_or_retries_its_message_and_loses_none(
    system: ActorSystem, strict: bool
) -> None:
    gate = Gate(blocking=3)
    ref = await system.spawn(
        Pipeline(
            "kill",
            processors=Processors(
                gate,
                concurrency=2,
                partition_by=lambda m: 0,
                strict=Retry(initial=0.001) if strict else False,
            ),
        )
    )
    ledger = Ledger()
    await push_many(ref, [Message(i, acknowledger=ledger) for i in range(10)])
    async with asyncio.timeout(5):
        await gate.entered.wait()
    victim = system.whereis("kill.processor_0")
    assert victim is not None
    victim.exit("kill")
    await ledger.wait_for(10)

    assert all(len(v) == 1 for v in ledger.outcomes.values()), "each message ends exactly once"
    assert len(ledger.outcomes) == 10
    if strict:
        assert gate.handled == list(range(10)), "redelivered in order, no gap"
        assert not ledger.failed
    else:
        assert gate.handled == [0, 1, 2, 4, 5, 6, 7, 8, 9]
        (failed,) = ledger.failed.values()
        assert failed.data == 3
        assert isinstance(failed.failure, Interrupted)
    restarted = system.whereis("kill.processor_0")
    assert restarted is not None
    assert restarted != victim
    assert ref.alive
    assert statistics(ref).stages[0].restarts == 1


async def test_killing_a_batch_processor_fails_its_batch_and_the_next_batches_follow(
    system: ActorSystem,
) -> None:
    entered = asyncio.Event()
    batches: list[list[int]] = []

    async def handle_batch(messages: list[Message], info: BatchInfo) -> None:
        data = [m.data for m in messages]
        if data[0] == 0 and not entered.is_set():
            entered.set()
            await asyncio.Event().wait()
        batches.append(data)

    ref = await system.spawn(
        Pipeline(
            "bkill",
            processors=Processors(lambda m: None, concurrency=1, partition_by=lambda m: 0),
            batchers={"default": Batchers(handle_batch, batch_size=2, batch_timeout=0.01)},
        )
    )
    ledger = Ledger()
    await push_many(ref, [Message(i, acknowledger=ledger) for i in range(6)])
    async with asyncio.timeout(5):
        await entered.wait()
    victim = system.whereis("bkill.batcher.default.processor_0")
    assert victim is not None
    victim.exit("kill")
    await ledger.wait_for(6)
    assert batches == [[2, 3], [4, 5]]
    assert sorted(m.data for m in ledger.failed.values()) == [0, 1]
    assert all(isinstance(m.failure, Interrupted) for m in ledger.failed.values())
    assert all(len(v) == 1 for v in ledger.outcomes.values())


async def test_a_batch_handler_that_raises_fails_the_whole_batch(system: ActorSystem) -> None:
    def handle_batch(messages: list[Message], info: BatchInfo) -> None:
        raise RuntimeError("store down")

    ref = await system.spawn(
        Pipeline(
            "braise",
            processors=Processors(lambda m: None, concurrency=1),
            batchers={"default": Batchers(handle_batch, batch_size=10, batch_timeout=0.01)},
        )
    )
    message = await test_message(ref, "x")
    assert isinstance(message.failure, RuntimeError)
    await push(ref, "y")
    assert ref.alive
