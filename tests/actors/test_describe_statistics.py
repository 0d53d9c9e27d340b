"""`describe()` and `statistics()` are declared on `Actor` and read through `actors.describe`
and `actors.statistics`, the one way the console and the dashboard read them: supervisors and
pipeline stages report their own, and a reader never fails because of what it reads."""

from __future__ import annotations

from typing import Any

import pytest

from actors import (
    DESCRIPTION_LIMIT,
    Actor,
    ActorExited,
    ActorSystem,
    describe,
    statistics,
)
from actors.console._helpers import Helpers
from actors.pipeline import (
    Emit,
    Message,
    Pipeline,
    PipelineStatistics,
    Processors,
    Producer,
    StageStatistics,
    push_many,
)
from supervisors import Supervisor, SupervisorStatistics, which_children
from tests.supervisors.conftest import Journal, worker

pytestmark = pytest.mark.anyio


class Plain(Actor):
    pass


class Talkative(Actor):
    def __init__(self, text: str) -> None:
        self.text = text

    def describe(self) -> str:
        return self.text

    def statistics(self) -> dict[str, int]:
        return {"said": len(self.text)}


class Broken(Actor):
    def describe(self) -> str:
        raise RuntimeError("no words")

    def statistics(self) -> object:
        raise RuntimeError("no numbers")


async def test_an_actor_says_nothing_unless_it_declares_describe_or_statistics(
    system: ActorSystem,
) -> None:
    ref = await system.spawn(Plain())

    assert describe(ref) is None
    assert statistics(ref) is None


async def test_describe_gives_the_first_line_cut_to_the_limit(system: ActorSystem) -> None:
    short = await system.spawn(Talkative("  busy with 3 jobs\nsecond line  "))
    long = await system.spawn(Talkative("x" * 500))
    blank = await system.spawn(Talkative("   "))

    assert describe(short) == "busy with 3 jobs"
    cut = describe(long)
    assert cut is not None
    assert len(cut) == DESCRIPTION_LIMIT
    assert cut.endswith("…")
    assert describe(long, limit=20) == "x" * 19 + "…"
    assert describe(blank) is None


async def test_a_reader_survives_a_describe_or_statistics_that_raises(
    system: ActorSystem,
) -> None:
    ref = await system.spawn(Broken())

    assert describe(ref) == "<describe() failed: RuntimeError('no words')>"
    assert statistics(ref) is None
    assert ref.alive


async def test_statistics_of_a_kind_are_returned_only_when_they_are_of_that_kind(
    system: ActorSystem,
) -> None:
    ref = await system.spawn(Talkative("hello"))

    assert statistics(ref) == {"said": 5}
    assert statistics(ref, dict) == {"said": 5}
    assert statistics(ref, PipelineStatistics) is None


async def test_a_supervisors_statistics_count_its_children_and_their_restarts(
    system: ActorSystem,
) -> None:
    journal = Journal()
    sup = await system.spawn(
        Supervisor([worker("a", journal), worker("b", journal)], max_restarts=5, max_seconds=10)
    )
    a = next(row.ref for row in await which_children(sup) if row.id == "a")
    assert a is not None
    with pytest.raises(ActorExited):
        await a.call("crash")
    await journal.wait_for(lambda: journal.of("start").count("a") == 2)
    stats = statistics(sup, SupervisorStatistics)

    assert stats == SupervisorStatistics(
        children=2, running=2, restarts=1, max_restarts=5, max_seconds=10
    )
    assert "1 restarts" in (describe(sup) or "")


class Counting(Producer):
    def __init__(self) -> None:
        self.emitted = 0

    async def produce(self, emit: Emit) -> None:
        for n in range(3):
            await emit([n])
            self.emitted += 1

    def statistics(self) -> dict[str, int]:
        return {"emitted": self.emitted}


async def test_a_pipeline_and_each_stage_report_statistics_through_the_same_function(
    system: ActorSystem,
) -> None:
    handled: list[Any] = []

    def handle(message: Message) -> None:
        handled.append(message.data)

    ref = await system.spawn(Pipeline("seen", processors=Processors(handle, concurrency=2)))
    await push_many(ref, range(10))
    await ref.stop(timeout=10)
    pipeline = statistics(ref, PipelineStatistics)

    assert pipeline is not None
    assert pipeline.acked == 10
    processors = [s for s in pipeline.stages if s.stage == "processor"]
    assert sum(s.handled for s in processors) == 10


async def test_a_processor_stage_reports_the_same_numbers_as_its_pipeline(
    system: ActorSystem,
) -> None:
    ref = await system.spawn(
        Pipeline("stages", processors=Processors(lambda m: None, concurrency=1))
    )
    await push_many(ref, range(4))
    stage = system.whereis("stages.processor_0")
    assert stage is not None
    pipeline = statistics(ref, PipelineStatistics)
    own = statistics(stage, StageStatistics)

    assert pipeline is not None
    assert own is not None
    assert own == pipeline.stages[0]
    assert f"{own.handled} handled" in (describe(stage) or "")


async def test_a_producer_stage_reports_its_producers_statistics(system: ActorSystem) -> None:
    producer = Counting()
    ref = await system.spawn(
        Pipeline("produced", producer=producer, processors=Processors(lambda m: None))
    )
    stage = system.whereis("produced.producer")
    assert stage is not None

    assert statistics(stage) == {"emitted": producer.emitted}
    await ref.stop(timeout=10)


async def test_the_consoles_stats_helper_reads_actors_statistics(
    system: ActorSystem, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = await system.spawn(Talkative("hello"), name="talker")
    helpers = Helpers(system)

    assert helpers.stats("talker") == {"said": 5}
    helpers.tree()
    assert f"Talkative#{ref.id} 'talker' [" in capsys.readouterr().out
