"""OTP's supervisor rules, one test each."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from actors import ActorExited, ActorRef, ActorSystem, Shutdown, StartFailed, describe
from supervisors import (
    ChildSpec,
    ChildSpecError,
    ChildStartError,
    Supervisor,
    count_children,
    delete_child,
    restart_child,
    start_child,
    terminate_child,
    which_children,
)
from tests.supervisors.conftest import FakeClock, Journal, Worker, worker

pytestmark = pytest.mark.anyio


async def child_ref(sup: ActorRef, child_id: object) -> ActorRef:
    for info in await which_children(sup):
        if info.id == child_id and info.ref is not None:
            return info.ref
    raise KeyError(child_id)


async def crash(sup: ActorRef, child_id: object) -> ActorRef:
    """Make the child crash inside a call; returns the reference it had."""
    ref = await child_ref(sup, child_id)
    with pytest.raises(ActorExited):
        await ref.call("crash")
    return ref


async def test_children_start_in_order_each_init_completing_before_the_next(
    system: ActorSystem, journal: Journal
) -> None:
    sup = await system.spawn(Supervisor([worker(n, journal) for n in "abc"]))
    assert journal.of("start") == ["a", "b", "c"]
    assert [info.id for info in await which_children(sup)] == ["c", "b", "a"]


async def test_a_failed_start_stops_the_started_children_in_reverse_and_fails_the_supervisor(
    system: ActorSystem, journal: Journal
) -> None:
    specs = [worker("a", journal), worker("b", journal), worker("c", journal, init="raise")]
    with pytest.raises(StartFailed) as info:
        await system.spawn(Supervisor(specs))
    error = info.value.reason
    assert isinstance(error, ChildStartError)
    assert error.child_id == "c"
    assert journal.of("terminate") == ["b", "a"]
    assert system.statistics().alive == 0


async def test_a_child_whose_init_hangs_past_its_timeout_fails_the_start_cleanly(
    system: ActorSystem, journal: Journal
) -> None:
    specs = [worker("a", journal), worker("slow", journal, init="hang", init_timeout=0.05)]
    with pytest.raises(StartFailed) as info:
        await system.spawn(Supervisor(specs))
    assert isinstance(info.value.reason, ChildStartError)
    assert isinstance(info.value.reason.reason, TimeoutError)
    assert journal.of("terminate") == ["a"]
    assert system.statistics().alive == 0


@pytest.mark.parametrize(
    ("make", "field", "rule", "message"),
    [
        (
            lambda j: [worker("a", j), worker("a", j)],
            "id",
            "duplicate_child_name",
            "duplicate child id",
        ),
        (
            lambda j: [ChildSpec("x", start=lambda: None, restart="sometimes")],  # type: ignore[arg-type, return-value]
            "restart",
            "invalid_restart_type",
            "restart must be",
        ),
        (
            lambda j: [ChildSpec("x", start=lambda: None, shutdown=-1)],  # type: ignore[arg-type, return-value]
            "shutdown",
            "invalid_shutdown",
            "shutdown must be",
        ),
        (
            lambda j: [ChildSpec("x", start="not callable")],  # type: ignore[arg-type]
            "start",
            "invalid_mfa",
            "start must be a callable",
        ),
        (
            lambda j: [ChildSpec("x", start=lambda: None, restart="transient", significant=True)],  # type: ignore[arg-type, return-value]
            "significant",
            "bad_combination",
            "auto_shutdown='never'",
        ),
        (
            lambda j: [ChildSpec("x", start=lambda: None, significant=True)],  # type: ignore[arg-type, return-value]
            "significant",
            "bad_combination",
            "not permanent",
        ),
    ],
)
def test_an_invalid_child_spec_is_refused_with_an_error_naming_its_field_and_otp_rule(
    journal: Journal,
    make: Callable[[Journal], list[ChildSpec]],
    field: str,
    rule: str,
    message: str,
) -> None:
    with pytest.raises(ChildSpecError, match=message) as info:
        Supervisor(make(journal))
    assert (info.value.child_id, info.value.field, info.value.rule) == (
        "a" if rule == "duplicate_child_name" else "x",
        field,
        rule,
    )
    assert isinstance(info.value, ValueError), "code catching the plain error still does"


async def test_one_for_one_restarts_only_the_crashed_child(
    system: ActorSystem, journal: Journal
) -> None:
    sup = await system.spawn(Supervisor([worker(n, journal) for n in "abc"]))
    journal.clear()
    b = await crash(sup, "b")
    await journal.wait_for(lambda: journal.of("start") == ["b"])
    assert journal.of("terminate") == ["b"]
    new_b = await child_ref(sup, "b")
    assert new_b != b
    assert await new_b.call("ping") == "b"


async def test_one_for_all_stops_the_others_newest_first_and_restarts_all_in_order(
    system: ActorSystem, journal: Journal
) -> None:
    sup = await system.spawn(
        Supervisor([worker(n, journal) for n in "abcd"], strategy="one_for_all")
    )
    journal.clear()
    await crash(sup, "b")
    await journal.wait_for(lambda: len(journal.of("start")) == 4)
    assert journal.of("terminate") == ["b", "d", "c", "a"]
    assert journal.of("start") == ["a", "b", "c", "d"]


async def test_rest_for_one_restarts_the_crashed_child_and_those_started_after_it_in_order(
    system: ActorSystem, journal: Journal
) -> None:
    sup = await system.spawn(
        Supervisor([worker(n, journal) for n in "abcd"], strategy="rest_for_one")
    )
    a = await child_ref(sup, "a")
    journal.clear()
    await crash(sup, "b")
    await journal.wait_for(lambda: len(journal.of("start")) == 3)
    assert journal.of("terminate") == ["b", "d", "c"]
    assert journal.of("start") == ["b", "c", "d"]
    assert await child_ref(sup, "a") == a


async def test_a_permanent_child_is_restarted_even_after_a_normal_exit(
    system: ActorSystem, journal: Journal
) -> None:
    sup = await system.spawn(Supervisor([worker("p", journal)]))
    p = await child_ref(sup, "p")
    journal.clear()
    await p.call(("exit", "normal"))
    await journal.wait_for(lambda: journal.of("start") == ["p"])


@pytest.mark.parametrize("reason", ["normal", "shutdown", Shutdown("done")])
async def test_a_transient_child_is_not_restarted_after_a_normal_or_shutdown_exit(
    system: ActorSystem, journal: Journal, reason: object
) -> None:
    sup = await system.spawn(Supervisor([worker("t", journal, restart="transient")]))
    t = await child_ref(sup, "t")
    await t.call(("exit", reason))
    await t.join()
    counts = await count_children(sup)
    assert (counts.specs, counts.active) == (1, 0)


async def test_a_transient_child_is_restarted_after_a_crash(
    system: ActorSystem, journal: Journal
) -> None:
    sup = await system.spawn(Supervisor([worker("t", journal, restart="transient")]))
    journal.clear()
    await crash(sup, "t")
    await journal.wait_for(lambda: journal.of("start") == ["t"])


async def test_a_temporary_child_is_never_restarted_not_even_when_a_sibling_crash_stops_it(
    system: ActorSystem, journal: Journal
) -> None:
    sup = await system.spawn(
        Supervisor(
            [worker("a", journal), worker("tmp", journal, restart="temporary")],
            strategy="one_for_all",
        )
    )
    journal.clear()
    await crash(sup, "a")
    await journal.wait_for(lambda: journal.of("start") == ["a"])
    assert journal.of("terminate") == ["a", "tmp"]
    assert [info.id for info in await which_children(sup)] == ["a"]


async def test_the_restart_that_exceeds_intensity_stops_the_children_and_exits_with_shutdown(
    system: ActorSystem, journal: Journal, clock: FakeClock
) -> None:
    sup = await system.spawn(
        Supervisor(
            [worker("a", journal), worker("b", journal)], max_restarts=3, max_seconds=5, clock=clock
        )
    )
    for attempt in range(3):
        b = await child_ref(sup, "b")
        with pytest.raises(ActorExited):
            await b.call("crash")
        await journal.wait_for(lambda: journal.of("start").count("b") == attempt + 2)  # noqa: B023 (awaited now)
    journal.clear()
    b = await crash(sup, "b")
    assert await sup.join(timeout=2) == "shutdown"
    assert journal.of("terminate") == ["b", "a"]
    assert journal.of("start") == []


async def test_restarts_older_than_max_seconds_fall_out_of_the_intensity_window(
    system: ActorSystem, journal: Journal, clock: FakeClock
) -> None:
    sup = await system.spawn(
        Supervisor([worker("a", journal)], max_restarts=2, max_seconds=5, clock=clock)
    )
    for attempt in range(6):
        a = await child_ref(sup, "a")
        with pytest.raises(ActorExited):
            await a.call("crash")
        await journal.wait_for(lambda: journal.of("start").count("a") == attempt + 2)  # noqa: B023 (awaited now)
        clock.advance(2.6)
    assert sup.alive


async def test_a_restart_exactly_max_seconds_old_still_counts(
    system: ActorSystem, journal: Journal, clock: FakeClock
) -> None:
    sup = await system.spawn(
        Supervisor([worker("a", journal)], max_restarts=1, max_seconds=5, clock=clock)
    )
    await crash(sup, "a")
    await journal.wait_for(lambda: journal.of("start").count("a") == 2)
    clock.advance(5)
    await crash(sup, "a")
    assert await sup.join(timeout=2) == "shutdown"


async def test_a_sub_supervisor_that_gives_up_is_restarted_by_its_permanent_parent(
    system: ActorSystem, journal: Journal
) -> None:
    inner = ChildSpec(
        "inner",
        start=lambda: Supervisor([worker("x", journal)], max_restarts=0),
        type="supervisor",
    )
    top = await system.spawn(Supervisor([inner]))
    first_inner = await child_ref(top, "inner")
    journal.clear()
    await crash(first_inner, "x")
    assert await first_inner.join(timeout=2) == "shutdown"
    await journal.wait_for(lambda: journal.of("start") == ["x"])
    assert await child_ref(top, "inner") != first_inner


async def test_a_transient_sub_supervisor_that_gives_up_is_not_restarted(
    system: ActorSystem, journal: Journal
) -> None:
    inner = ChildSpec(
        "inner",
        start=lambda: Supervisor([worker("x", journal)], max_restarts=0),
        type="supervisor",
        restart="transient",
    )
    top = await system.spawn(Supervisor([inner, worker("y", journal)]))
    inner_ref = await child_ref(top, "inner")
    await crash(inner_ref, "x")
    assert await inner_ref.join(timeout=2) == "shutdown"
    counts = await count_children(top)
    assert (counts.specs, counts.active) == (2, 1)


async def test_shutdown_stops_children_in_reverse_start_order(
    system: ActorSystem, journal: Journal
) -> None:
    sup = await system.spawn(Supervisor([worker(n, journal) for n in "abc"]))
    await sup.stop("shutdown")
    assert journal.of("terminate") == ["c", "b", "a"]
    assert system.statistics().alive == 0


async def test_a_child_that_ignores_shutdown_is_killed_after_its_timeout(
    system: ActorSystem, journal: Journal
) -> None:
    sup = await system.spawn(
        Supervisor([worker("stubborn", journal, terminate_hangs=True, shutdown=0.05)])
    )
    stubborn = await child_ref(sup, "stubborn")
    await terminate_child(sup, "stubborn")
    assert await stubborn.join() == "killed"
    assert journal.of("terminate") == ["stubborn"]


async def test_brutal_kill_stops_a_child_without_terminate(
    system: ActorSystem, journal: Journal
) -> None:
    sup = await system.spawn(Supervisor([worker("k", journal, shutdown="brutal_kill")]))
    k = await child_ref(sup, "k")
    await terminate_child(sup, "k")
    assert await k.join() == "killed"
    assert journal.of("terminate") == []


async def test_a_child_that_does_not_trap_exits_dies_with_shutdown_without_terminate(
    system: ActorSystem, journal: Journal
) -> None:
    sup = await system.spawn(Supervisor([worker("plain", journal, trap=False)]))
    plain = await child_ref(sup, "plain")
    await terminate_child(sup, "plain")
    assert await plain.join() == "shutdown"
    assert journal.of("terminate") == []


async def test_terminate_restart_and_delete_child_follow_the_child_state(
    system: ActorSystem, journal: Journal
) -> None:
    sup = await system.spawn(Supervisor([worker("a", journal)]))
    await terminate_child(sup, "a")
    assert (await count_children(sup)).active == 0
    ref = await restart_child(sup, "a")
    assert ref is not None
    assert await ref.call("ping") == "a"
    with pytest.raises(ValueError, match="running"):
        await restart_child(sup, "a")
    with pytest.raises(ValueError, match="running"):
        await delete_child(sup, "a")
    await terminate_child(sup, "a")
    await delete_child(sup, "a")
    assert await which_children(sup) == []
    with pytest.raises(KeyError):
        await terminate_child(sup, "a")


async def test_start_child_adds_a_child_and_refuses_a_duplicate_id(
    system: ActorSystem, journal: Journal
) -> None:
    sup = await system.spawn(Supervisor([worker("a", journal)]))
    ref = await start_child(sup, worker("b", journal))
    assert ref is not None
    assert await ref.call("ping") == "b"
    with pytest.raises(ValueError, match="already started"):
        await start_child(sup, worker("b", journal))
    with pytest.raises(ChildStartError):
        await start_child(sup, worker("bad", journal, init="raise"))
    counts = await count_children(sup)
    assert (counts.specs, counts.active, counts.workers) == (2, 2, 2)


async def test_a_child_whose_init_raises_ignore_keeps_its_spec_with_no_actor(
    system: ActorSystem, journal: Journal
) -> None:
    sup = await system.spawn(Supervisor([worker("i", journal, init="ignore")]))
    [info] = await which_children(sup)
    assert (info.id, info.ref) == ("i", None)


async def test_a_restart_whose_init_fails_is_retried_and_counts_toward_intensity(
    system: ActorSystem, journal: Journal, clock: FakeClock
) -> None:
    attempts = {"n": 0}

    def start() -> Worker:
        attempts["n"] += 1
        return Worker("flaky", journal, init="ok" if attempts["n"] in (1, 4) else "raise")

    sup = await system.spawn(
        Supervisor([ChildSpec("flaky", start=start)], max_restarts=3, clock=clock)
    )
    await crash(sup, "flaky")
    await journal.wait_for(lambda: journal.of("start").count("flaky") == 2)
    assert journal.of("init_failed") == ["flaky", "flaky"]
    assert sup.alive
    await crash(sup, "flaky")
    assert await sup.join(timeout=2) == "shutdown"


async def test_any_significant_stops_the_supervisor_when_a_significant_child_exits_on_its_own(
    system: ActorSystem, journal: Journal
) -> None:
    sup = await system.spawn(
        Supervisor(
            [worker("a", journal), worker("s", journal, restart="transient", significant=True)],
            auto_shutdown="any_significant",
        )
    )
    s = await child_ref(sup, "s")
    await s.call(("exit", "normal"))
    assert await sup.join(timeout=2) == "shutdown"
    assert "a" in journal.of("terminate")


async def test_all_significant_waits_for_the_last_significant_child(
    system: ActorSystem, journal: Journal
) -> None:
    sup = await system.spawn(
        Supervisor(
            [
                worker("s1", journal, restart="temporary", significant=True),
                worker("s2", journal, restart="temporary", significant=True),
            ],
            auto_shutdown="all_significant",
        )
    )
    s1 = await child_ref(sup, "s1")
    s2 = await child_ref(sup, "s2")
    await s1.call(("exit", "normal"))
    await s1.join()
    assert (await count_children(sup)).active == 1
    await s2.call(("exit", "normal"))
    assert await sup.join(timeout=2) == "shutdown"


async def test_terminate_child_never_triggers_auto_shutdown(
    system: ActorSystem, journal: Journal
) -> None:
    sup = await system.spawn(
        Supervisor(
            [worker("s", journal, restart="transient", significant=True)],
            auto_shutdown="any_significant",
        )
    )
    await terminate_child(sup, "s")
    assert sup.alive
    assert (await count_children(sup)).active == 0


async def test_a_significant_transient_child_that_crashes_is_restarted_not_shut_down(
    system: ActorSystem, journal: Journal
) -> None:
    sup = await system.spawn(
        Supervisor(
            [worker("s", journal, restart="transient", significant=True)],
            auto_shutdown="any_significant",
        )
    )
    journal.clear()
    await crash(sup, "s")
    await journal.wait_for(lambda: journal.of("start") == ["s"])
    assert sup.alive


async def test_which_children_reports_restart_counts(system: ActorSystem, journal: Journal) -> None:
    sup = await system.spawn(Supervisor([worker("a", journal)]))
    await crash(sup, "a")
    await journal.wait_for(lambda: journal.of("start").count("a") == 2)
    [info] = await which_children(sup)
    assert info.restarts == 1
    assert "1 restarts" in (describe(sup) or "")
    await asyncio.sleep(0)
