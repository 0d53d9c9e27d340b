"""Back-pressure bounds what is in flight, the rate limit bounds what leaves the producer, and
a drain on shutdown ends every accepted message (acked, or failed after the deadline)."""

from __future__ import annotations

import asyncio

import pytest

from actors import ActorSystem
from actors.pipeline import (
    Batchers,
    BatchInfo,
    Message,
    Pipeline,
    PipelineFull,
    PipelineStopped,
    Processors,
    RateLimit,
    push,
    push_many,
    push_nowait,
    statistics,
    update_rate_limit,
)
from tests.pipeline.conftest import Ledger

pytestmark = pytest.mark.anyio


async def test_shutdown_while_10k_messages_are_in_flight_loses_none(system: ActorSystem) -> None:
    handled: list[int] = []

    async def handle(message: Message) -> None:
        if message.data % 100 == 0:
            await asyncio.sleep(0)
        handled.append(message.data)

    batched: list[int] = []
    ref = await system.spawn(
        Pipeline(
            "drain",
            processors=Processors(handle, concurrency=4, partition_by=lambda m: m.data % 50),
            batchers={
                "default": Batchers(
                    lambda ms, info: batched.extend(m.data for m in ms),
                    batch_size=64,
                    batch_timeout=30.0,
                )
            },
            max_in_flight=20_000,
        )
    )
    ledger = Ledger()
    await push_many(ref, [Message(i, acknowledger=ledger) for i in range(10_000)])
    assert statistics(ref).in_flight > 0
    await ref.stop(timeout=30)

    assert ledger.ended() == 10_000
    assert not ledger.failed
    assert sorted(handled) == list(range(10_000))
    assert sorted(batched) == list(range(10_000)), "open batches were flushed, not lost"
    stats = statistics(ref)
    assert (stats.accepted, stats.acked, stats.in_flight) == (10_000, 10_000, 0)
    with pytest.raises(PipelineStopped):
        await push(ref, 1)


async def test_messages_still_in_flight_at_the_drain_deadline_are_failed_not_lost(
    system: ActorSystem,
) -> None:
    async def stuck(message: Message) -> None:
        await asyncio.Event().wait()

    ref = await system.spawn(
        Pipeline("deadline", processors=Processors(stuck, concurrency=1), shutdown_timeout=0.05)
    )
    ledger = Ledger()
    await push_many(ref, [Message(i, acknowledger=ledger) for i in range(5)])
    await ref.stop(timeout=10)
    assert ledger.ended() == 5
    assert all(isinstance(m.failure, PipelineStopped) for m in ledger.failed.values())


async def test_a_full_pipeline_makes_push_wait_and_push_nowait_raise(system: ActorSystem) -> None:
    release = asyncio.Event()

    async def slow(message: Message) -> None:
        await release.wait()

    ref = await system.spawn(
        Pipeline("full", processors=Processors(slow, concurrency=1), max_in_flight=3)
    )
    for i in range(3):
        push_nowait(ref, i)
    with pytest.raises(PipelineFull):
        push_nowait(ref, 3)
    waiting = asyncio.ensure_future(push(ref, 3))
    await asyncio.sleep(0)
    assert not waiting.done()
    assert statistics(ref).in_flight == 3
    release.set()
    async with asyncio.timeout(5):
        await waiting
    assert statistics(ref).accepted == 4


async def test_the_rate_limit_holds_messages_until_the_next_interval_and_can_be_changed(
    system: ActorSystem,
) -> None:
    ledger = Ledger()
    ref = await system.spawn(
        Pipeline(
            "rate",
            processors=Processors(lambda m: None, concurrency=1),
            rate_limit=RateLimit(allowed=2, interval=3600),
        )
    )
    await push_many(ref, [Message(i, acknowledger=ledger) for i in range(5)])
    await ledger.wait_for(2)
    stats = statistics(ref)
    assert stats.acked == 2
    assert stats.rate_limited == 3
    assert stats.in_flight == 3
    await update_rate_limit(ref, RateLimit(allowed=100, interval=3600))
    await ledger.wait_for(5)
    assert ledger.acked_order == [0, 1, 2, 3, 4]
    await update_rate_limit(ref, None)
    await push(ref, 5)
    assert statistics(ref).rate_limited == 0


async def test_a_batch_is_emitted_at_batch_size_or_after_batch_timeout(
    system: ActorSystem,
) -> None:
    seen: list[tuple[int, str]] = []
    done = asyncio.Event()

    def handle_batch(messages: list[Message], info: BatchInfo) -> None:
        seen.append((info.size, info.trigger))
        if sum(size for size, _ in seen) == 5:
            done.set()

    ref = await system.spawn(
        Pipeline(
            "sizes",
            processors=Processors(lambda m: None, concurrency=1),
            batchers={"default": Batchers(handle_batch, batch_size=3, batch_timeout=0.01)},
        )
    )
    await push_many(ref, range(5))
    async with asyncio.timeout(5):
        await done.wait()
    assert seen == [(3, "size"), (2, "timeout")]


async def test_a_pusher_that_never_waits_for_room_still_lets_the_processors_run(
    system: ActorSystem,
) -> None:
    handled: list[int] = []
    ref = await system.spawn(
        Pipeline(
            "eager",
            processors=Processors(lambda m: handled.append(m.data), concurrency=2),
            max_in_flight=100_000,
        )
    )
    seen_while_pushing: list[int] = []
    for start in range(0, 5_000, 1_000):
        await push_many(ref, range(start, start + 1_000))
        seen_while_pushing.append(len(handled))
    assert seen_while_pushing[-1] > 0, "processors ran between the pusher's slices"
    assert statistics(ref).in_flight < 5_000
    await ref.stop(timeout=10)
    assert sorted(handled) == list(range(5_000))


async def test_a_pusher_that_never_waits_lets_every_stage_take_its_turn_on_what_it_pushed(
    system: ActorSystem,
) -> None:
    batched: list[int] = []
    ref = await system.spawn(
        Pipeline(
            "turns",
            processors=Processors(lambda m: None, concurrency=2),
            batchers={
                "default": Batchers(
                    lambda ms, info: batched.extend(m.data for m in ms),
                    batch_size=100,
                    batch_timeout=30.0,
                )
            },
            max_in_flight=100_000,
        )
    )
    for start in range(0, 3_000, 1_000):
        await push_many(ref, range(start, start + 1_000))
        assert len(batched) == start + 1_000, "full batches are handled before the next push"
    await ref.stop(timeout=10)
    assert sorted(batched) == list(range(3_000))
