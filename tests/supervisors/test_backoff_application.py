"""Restart back-off (beyond OTP) and its interplay with intensity; the Application."""

from __future__ import annotations

import asyncio
import os
import random
import signal

import pytest

from actors import ActorExited, ActorSystem
from supervisors import Application, Backoff, Supervisor, count_children, which_children
from tests.supervisors.conftest import FakeClock, Journal, worker

pytestmark = pytest.mark.anyio


def test_backoff_grows_exponentially_within_its_jitter_and_stops_at_the_cap() -> None:
    backoff = Backoff(initial=0.1, factor=2, cap=1.0, jitter=0.2)
    rng = random.Random(1)
    for attempt, base in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (9, 1.0)]:
        delay = backoff.delay(attempt, rng)
        assert base * 0.8 <= delay <= base * 1.2


@pytest.mark.parametrize(
    "options", [{"initial": 0}, {"factor": 0.5}, {"jitter": 1.5}, {"cap": float("inf")}]
)
def test_an_invalid_backoff_is_refused(options: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="Backoff"):
        Backoff(**options)


async def test_a_child_with_backoff_is_restarted_only_after_its_delay(
    system: ActorSystem, journal: Journal
) -> None:
    backoff = Backoff(initial=0.05, jitter=0)
    sup = await system.spawn(Supervisor([worker("b", journal, backoff=backoff)]))
    [info] = await which_children(sup)
    assert info.ref is not None
    journal.clear()
    loop = asyncio.get_running_loop()
    crashed_at = loop.time()
    with pytest.raises(ActorExited):
        await info.ref.call("crash")
    assert (await count_children(sup)).active == 0
    await journal.wait_for(lambda: journal.of("start") == ["b"])
    assert loop.time() - crashed_at >= 0.05


async def test_backoff_restarts_still_count_toward_intensity_when_decided(
    system: ActorSystem, journal: Journal, clock: FakeClock
) -> None:
    backoff = Backoff(initial=0.01, jitter=0)
    sup = await system.spawn(
        Supervisor([worker("b", journal, backoff=backoff)], max_restarts=1, clock=clock)
    )
    [info] = await which_children(sup)
    assert info.ref is not None
    with pytest.raises(ActorExited):
        await info.ref.call("crash")
    await journal.wait_for(lambda: journal.of("start").count("b") == 2)
    [info] = await which_children(sup)
    assert info.ref is not None
    with pytest.raises(ActorExited):
        await info.ref.call("crash")
    assert await sup.join(timeout=2) == "shutdown"


async def test_a_child_slower_than_the_intensity_rate_is_retried_forever_at_its_backoff(
    system: ActorSystem, journal: Journal, clock: FakeClock
) -> None:
    backoff = Backoff(initial=0.01, factor=1, jitter=0)
    sup = await system.spawn(
        Supervisor(
            [worker("b", journal, backoff=backoff)], max_restarts=1, max_seconds=5, clock=clock
        )
    )
    for attempt in range(5):
        [info] = await which_children(sup)
        assert info.ref is not None
        with pytest.raises(ActorExited):
            await info.ref.call("crash")
        await journal.wait_for(lambda: journal.of("start").count("b") == attempt + 2)  # noqa: B023 (awaited now)
        clock.advance(6)
    assert sup.alive


async def run_app(app: Application) -> tuple[asyncio.Task[int], ActorSystem]:
    started = asyncio.Event()
    systems: list[ActorSystem] = []

    async def ready(system: ActorSystem, top: object) -> None:
        systems.append(system)
        started.set()

    task = asyncio.create_task(app.run(ready=ready))
    async with asyncio.timeout(5):
        await started.wait()
    return task, systems[0]


async def test_an_application_shuts_down_in_reverse_order_on_sigterm_and_exits_zero(
    journal: Journal,
) -> None:
    app = Application([worker(n, journal) for n in "abc"])
    task, system = await run_app(app)
    assert journal.of("start") == ["a", "b", "c"]
    os.kill(os.getpid(), signal.SIGTERM)
    assert await asyncio.wait_for(task, 5) == 0
    assert journal.of("terminate") == ["c", "b", "a"]
    assert system.statistics().alive == 0


async def test_an_application_whose_tree_gives_up_exits_non_zero(journal: Journal) -> None:
    app = Application([worker("a", journal)], max_restarts=0)
    task, system = await run_app(app)
    [ref] = [r for r in system.processes() if r.name is None]
    with pytest.raises(ActorExited):
        await ref.call("crash")
    assert await asyncio.wait_for(task, 5) == 1


async def test_an_application_whose_start_fails_exits_non_zero(journal: Journal) -> None:
    app = Application([worker("a", journal), worker("b", journal, init="raise")])
    assert await asyncio.wait_for(app.run(), 5) == 1
    assert journal.of("terminate") == ["a"]
