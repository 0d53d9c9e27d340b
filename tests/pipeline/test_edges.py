"""The pipeline keeps its word at the edges: a drain that times out, a pipeline that gives up, a
processor that dies while the pipeline drains or kills itself, and keys pushed with
``push(key=...)`` on their way through a batcher."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from actors import ActorSystem, current_actor
from actors.pipeline import (
    Batchers,
    BatchInfo,
    Emit,
    Interrupted,
    Message,
    Pipeline,
    PipelineStopped,
    Processors,
    Producer,
    Retry,
    push,
    push_many,
    statistics,
)
from tests.pipeline.conftest import Ledger

pytestmark = pytest.mark.anyio


async def test_messages_already_handled_in_an_unfinished_chunk_end_when_the_drain_times_out(
    system: ActorSystem,
) -> None:
    """The chunk's first messages were handled by an async handler, the next one never ends:
    at the deadline the handled ones are acked, the rest failed; none is lost."""

    async def handle(message: Message) -> None:
        await asyncio.sleep(0)
        if message.data == 5:
            await asyncio.Event().wait()

    ref = await system.spawn(
        Pipeline("timeout", processors=Processors(handle, concurrency=1), shutdown_timeout=0.2)
    )
    ledger = Ledger()
    await push_many(ref, [Message(i, acknowledger=ledger) for i in range(10)])
    await ref.stop(timeout=30)

    assert all(len(v) == 1 for v in ledger.outcomes.values()), "each message ends exactly once"
    assert ledger.ended() == 10
    assert sorted(ledger.acked_order) == [0, 1, 2, 3, 4]
    assert sorted(m.data for m in ledger.failed.values()) == [5, 6, 7, 8, 9]
    assert all(isinstance(m.failure, PipelineStopped) for m in ledger.failed.values())
    assert statistics(ref).in_flight == 0


async def test_messages_handled_before_the_pipeline_gives_up_end_exactly_once(
    system: ActorSystem,
) -> None:
    """Kills beat the pipeline's intensity while a chunk is half handled: the pipeline stops,
    and every accepted message still ends once (handled ones acked, the others failed)."""
    entered = asyncio.Event()

    async def handle(message: Message) -> None:
        await asyncio.sleep(0)
        if message.data == 5:
            entered.set()
            await asyncio.Event().wait()

    ref = await system.spawn(
        Pipeline(
            "giveup", processors=Processors(handle, concurrency=1), max_restarts=0, max_seconds=60
        )
    )
    ledger = Ledger()
    await push_many(ref, [Message(i, acknowledger=ledger) for i in range(10)])
    async with asyncio.timeout(10):
        await entered.wait()
    victim = system.whereis("giveup.processor_0")
    assert victim is not None
    victim.exit("kill")
    assert await ref.join(timeout=30) == "shutdown"

    assert all(len(v) == 1 for v in ledger.outcomes.values()), "each message ends exactly once"
    assert ledger.ended() == 10
    assert sorted(ledger.acked_order) == [0, 1, 2, 3, 4]
    assert statistics(ref).in_flight == 0


class DrainWitness(Producer):
    """A producer that emits nothing and tells when the drain cancels it (the drain's step 1)."""

    def __init__(self) -> None:
        self.cancelled = asyncio.Event()

    async def produce(self, emit: Emit) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            self.cancelled.set()


@pytest.mark.parametrize("strict", [False, True])
async def test_a_drain_survives_a_processor_killed_while_it_drains(
    system: ActorSystem, strict: bool
) -> None:
    """A processor killed during the drain is restarted, so the drain goes on, long before the
    deadline: the interrupted message fails with `Interrupted` (strict mode: is retried and
    succeeds), every other one is handled in order."""
    entered = asyncio.Event()
    handled: list[int] = []
    producer = DrainWitness()

    async def handle(message: Message) -> None:
        if message.data == 3 and not entered.is_set():
            entered.set()
            await asyncio.Event().wait()
        handled.append(message.data)

    ref = await system.spawn(
        Pipeline(
            "drainkill",
            processors=Processors(
                handle,
                concurrency=2,
                partition_by=lambda m: 0,
                strict=Retry(initial=0.001) if strict else False,
            ),
            batchers={"default": Batchers(lambda ms, info: None, batch_size=4)},
            shutdown_timeout=120,
            producer=producer,
        )
    )
    ledger = Ledger()
    await push_many(ref, [Message(i, acknowledger=ledger) for i in range(10)])
    async with asyncio.timeout(10):
        await entered.wait()
    stopping = asyncio.ensure_future(ref.stop(timeout=150))
    async with asyncio.timeout(10):
        await producer.cancelled.wait()
    assert statistics(ref).draining
    victim = system.whereis("drainkill.processor_0")
    assert victim is not None
    victim.exit("kill")

    await ledger.wait_for(10, timeout=30)
    await asyncio.wait_for(stopping, timeout=30)
    assert all(len(v) == 1 for v in ledger.outcomes.values()), "each message ends exactly once"
    if strict:
        assert handled == list(range(10)), "redelivered in order, no gap"
        assert not ledger.failed
    else:
        assert handled == [0, 1, 2, 4, 5, 6, 7, 8, 9]
        (failed,) = ledger.failed.values()
        assert failed.data == 3
        assert isinstance(failed.failure, Interrupted)


async def test_an_async_handler_that_kills_its_processor_never_handles_a_message_twice(
    system: ActorSystem,
) -> None:
    """``kill`` stops the handler's task, whoever sends it: the killed handler does not go on
    with its chunk while the restarted processor handles the rest of it."""
    runs: dict[int, int] = {}
    killed = False

    async def handle(message: Message) -> None:
        nonlocal killed
        if message.data == 10 and not killed:
            killed = True
            actor = current_actor()
            assert actor is not None
            actor.ref.exit("kill")
        await asyncio.sleep(0)
        runs[message.data] = runs.get(message.data, 0) + 1

    ref = await system.spawn(
        Pipeline("selfkill", processors=Processors(handle, concurrency=1), max_restarts=5)
    )
    ledger = Ledger()
    await push_many(ref, [Message(i, acknowledger=ledger) for i in range(100)])
    await ledger.wait_for(100, timeout=30)

    assert all(count == 1 for count in runs.values()), {k: v for k, v in runs.items() if v > 1}
    assert all(len(v) == 1 for v in ledger.outcomes.values())
    (failed,) = ledger.failed.values()
    assert failed.data == 10
    assert isinstance(failed.failure, Interrupted)
    assert 10 not in runs


async def test_a_key_given_to_push_keeps_its_order_through_a_batcher_without_partition_by(
    system: ActorSystem,
) -> None:
    """Without any `partition_by`, the batch partition comes from the key given to `push`: a
    key's batches all go to one batch processor, in order."""
    seen: dict[str, list[int]] = {}
    partitions: dict[str, set[int | None]] = {}

    async def handle_batch(messages: list[Message], info: BatchInfo) -> None:
        for _ in range(messages[0].data[1] % 3):
            await asyncio.sleep(0)
        for message in messages:
            key, n = message.data
            seen.setdefault(key, []).append(n)
            partitions.setdefault(key, set()).add(info.partition)

    ref = await system.spawn(
        Pipeline(
            "keyed",
            processors=Processors(lambda m: None, concurrency=2),
            batchers={"default": Batchers(handle_batch, batch_size=3, concurrency=4)},
        )
    )
    ledger = Ledger()
    keys = ["a", "b", "c"]
    for n in range(200):
        for key in keys:
            await push(ref, (key, n), key=key, acknowledger=ledger)
    await ledger.wait_for(600, timeout=30)

    for key in keys:
        assert seen[key] == list(range(200)), f"key {key!r} kept its push order"
        (partition,) = partitions[key]
        assert partition == hash(key) % 4


async def test_messages_pushed_without_any_key_still_spread_over_batch_processors(
    system: ActorSystem,
) -> None:
    """No key and no `partition_by`: no ordering is promised and batches spread round-robin."""
    used: set[int | None] = set()
    processors: set[int] = set()

    def handle_batch(messages: list[Message], info: BatchInfo) -> None:
        used.add(info.partition)
        actor = current_actor()
        assert actor is not None
        processors.add(actor.ref.id)

    ref = await system.spawn(
        Pipeline(
            "unkeyed",
            processors=Processors(lambda m: None, concurrency=1),
            batchers={"default": Batchers(handle_batch, batch_size=2, concurrency=2)},
        )
    )
    ledger = Ledger()
    items: list[Any] = [Message(i, acknowledger=ledger) for i in range(8)]
    await push_many(ref, items)
    await ledger.wait_for(8)
    assert used == {None}
    assert len(processors) == 2


async def test_every_accepted_message_ends_exactly_once_when_a_drain_times_out_under_load(
    system: ActorSystem,
) -> None:
    """The issue's measurement (2,000 messages, shutdown_timeout 0.5 s, async handlers, one key
    that never ends): every message ends exactly once, whatever the timing."""

    async def handle(message: Message) -> None:
        await asyncio.sleep(0)
        if message.data == 1_000:
            await asyncio.Event().wait()

    ref = await system.spawn(
        Pipeline(
            "loaded",
            processors=Processors(handle, concurrency=4, partition_by=lambda m: m.data % 16),
            shutdown_timeout=0.5,
        )
    )
    ledger = Ledger()
    await push_many(ref, [Message(i, acknowledger=ledger) for i in range(2_000)])
    await ref.stop(timeout=60)

    assert ledger.ended() == 2_000
    assert all(len(v) == 1 for v in ledger.outcomes.values()), "each message ends exactly once"
    stats = statistics(ref)
    assert (stats.accepted, stats.acked + stats.failed, stats.in_flight) == (2_000, 2_000, 0)
