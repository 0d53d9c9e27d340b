"""Statistics, telemetry and describe() report each stage; test helpers return outcomes; an
external producer's messages flow with back-pressure and its produce() is cancelled on drain."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import structlog

from actors import ActorSystem
from actors.console._helpers import Helpers
from actors.pipeline import (
    Batchers,
    Emit,
    Message,
    Pipeline,
    Processors,
    Producer,
    push_many,
    statistics,
    test_batch,
    test_message,
)
from tests.pipeline.conftest import Ledger

pytestmark = pytest.mark.anyio


async def test_statistics_count_each_stage_and_the_tree_shows_them(
    system: ActorSystem, capsys: pytest.CaptureFixture[str]
) -> None:
    events: list[tuple[tuple[str, ...], dict[str, float]]] = []

    def handle(message: Message) -> None:
        if message.data == 3:
            raise ValueError("three")

    ref = await system.spawn(
        Pipeline(
            "stats",
            processors=Processors(handle, concurrency=2, partition_by=lambda m: m.data % 2),
            batchers={"default": Batchers(lambda ms, info: None, batch_size=2)},
            telemetry=lambda event, measurements, metadata: events.append((event, measurements)),
        )
    )
    outcome = await test_batch(ref, range(6), flush=True)
    assert sorted(m.data for m in outcome.successful) == [0, 1, 2, 4, 5]
    assert [m.data for m in outcome.failed] == [3]
    stats = statistics(ref)
    assert (stats.accepted, stats.acked, stats.failed, stats.in_flight) == (6, 5, 1, 0)
    processors = [s for s in stats.stages if s.stage == "processor"]
    assert sum(s.handled for s in processors) == 6
    assert sum(s.failed for s in processors) == 1
    batch = [s for s in stats.stages if s.stage == "batch_processor:default"]
    assert sum(s.handled for s in batch) == 5
    assert batch[0].latency_max >= 0
    assert {event for event, _ in events} == {("processor", "stop"), ("batch_processor", "stop")}
    Helpers(system).tree()
    tree = capsys.readouterr().out
    assert "pipeline 'stats': 0/10000 in flight, 5 acked, 1 failed" in tree
    assert "processor 1/2:" in tree
    assert "batch processor 'default' 1/1: 5 handled" in tree
    assert "terminator (ready" in tree


async def test_statistics_count_every_message_an_async_handler_handled(
    system: ActorSystem,
) -> None:
    async def handle(message: Message) -> None:
        await asyncio.sleep(0)

    ref = await system.spawn(Pipeline("async_stats", processors=Processors(handle, concurrency=2)))
    await push_many(ref, range(300))
    await ref.stop(timeout=10)
    processors = [s for s in statistics(ref).stages if s.stage == "processor"]
    assert sum(s.handled for s in processors) == 300


async def test_a_failing_telemetry_handler_is_logged_and_the_messages_still_end(
    system: ActorSystem,
) -> None:
    def telemetry(event: tuple[str, ...], measurements: Any, metadata: Any) -> None:
        raise RuntimeError("telemetry broke")

    ref = await system.spawn(
        Pipeline(
            "bad_telemetry",
            processors=Processors(lambda m: None, concurrency=1),
            telemetry=telemetry,
        )
    )
    with structlog.testing.capture_logs() as logs:
        outcome = await test_batch(ref, range(3))
    assert sorted(m.data for m in outcome.successful) == [0, 1, 2]
    failures = [entry for entry in logs if entry["event"] == "pipeline.telemetry_failed"]
    assert failures
    assert failures[0]["telemetry_event"] == ("processor", "stop")
    assert "telemetry broke" in failures[0]["reason"]


async def test_test_message_returns_the_message_once_it_has_ended(system: ActorSystem) -> None:
    ref = await system.spawn(
        Pipeline("helpers", processors=Processors(lambda m: setattr(m, "data", m.data * 2)))
    )
    message = await test_message(ref, 21, metadata={"source": "test"})
    assert (message.status, message.data, message.metadata) == ("ok", 42, {"source": "test"})


class Source(Producer):
    """A source that emits numbered messages, then waits to be cancelled."""

    def __init__(self, total: int, ledger: Ledger) -> None:
        self.total = total
        self.ledger = ledger
        self.cancelled = asyncio.Event()

    async def produce(self, emit: Emit) -> None:
        try:
            for start in range(0, self.total, 10):
                await emit([Message(i, acknowledger=self.ledger) for i in range(start, start + 10)])
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise


async def test_an_external_producer_is_throttled_by_back_pressure_and_cancelled_on_drain(
    system: ActorSystem,
) -> None:
    ledger = Ledger()
    seen: list[Any] = []
    source = Source(200, ledger)
    ref = await system.spawn(
        Pipeline(
            "source",
            producer=source,
            processors=Processors(seen.append, concurrency=2),
            max_in_flight=15,
        )
    )
    await ledger.wait_for(200)
    assert statistics(ref).accepted == 200
    await ref.stop()
    assert source.cancelled.is_set()
    assert len(seen) == 200


async def test_push_many_accepts_more_than_max_in_flight_in_order(system: ActorSystem) -> None:
    seen: list[int] = []
    ref = await system.spawn(
        Pipeline(
            "many",
            processors=Processors(lambda m: seen.append(m.data), concurrency=1),
            max_in_flight=7,
        )
    )
    await push_many(ref, range(100))
    await ref.stop()
    assert seen == list(range(100))
