"""Operations on a running supervisor answer OTP's distinct outcomes, as typed errors carrying
them, and the supervisor's reports are decided by the restart type as OTP decides them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from structlog.testing import capture_logs

from actors import ActorSystem
from supervisors import (
    AlreadyPresent,
    AlreadyStarted,
    Backoff,
    ChildNotFound,
    ChildRestarting,
    ChildRunning,
    ChildSpec,
    ChildStartError,
    DynamicSupervisor,
    Supervisor,
    SupervisorError,
    delete_child,
    restart_child,
    start_child,
    terminate_child,
    which_children,
)
from tests.supervisors.conftest import Journal, worker

pytestmark = pytest.mark.anyio

SLOW = Backoff(initial=60, cap=60, jitter=0)
"""A back-off long enough that a crashed child stays `restarting` for the whole test."""


async def test_start_child_with_the_id_of_a_running_child_answers_already_started_with_its_ref(
    system: ActorSystem, journal: Journal
) -> None:
    sup = await system.spawn(Supervisor([worker("n1", journal)]))
    (row,) = await which_children(sup)
    with pytest.raises(AlreadyStarted) as info:
        await start_child(sup, worker("n1", journal))
    assert info.value.reason == "already_started"
    assert info.value.ref == row.ref, "start it, or use the one already running"
    assert await info.value.ref.call("ping") == "n1"
    assert isinstance(info.value, ValueError)
    assert journal.of("start") == ["n1"], "nothing else was started"


async def test_start_child_with_the_id_of_a_stopped_child_answers_already_present(
    system: ActorSystem, journal: Journal
) -> None:
    sup = await system.spawn(Supervisor([worker("n1", journal)]))
    await terminate_child(sup, "n1")
    with pytest.raises(AlreadyPresent) as info:
        await start_child(sup, worker("n1", journal))
    assert (info.value.reason, info.value.child_id) == ("already_present", "n1")
    assert (await which_children(sup))[0].status == "undefined"


async def test_restart_and_delete_of_a_running_child_answer_running(
    system: ActorSystem, journal: Journal
) -> None:
    sup = await system.spawn(Supervisor([worker("n1", journal)]))
    for operation in (restart_child, delete_child):
        with pytest.raises(ChildRunning) as info:
            await operation(sup, "n1")
        assert info.value.reason == "running"


async def test_a_child_waiting_for_its_restart_shows_restarting_and_operations_answer_so(
    system: ActorSystem, journal: Journal
) -> None:
    sup = await system.spawn(Supervisor([worker("n1", journal, backoff=SLOW)]))
    (row,) = await which_children(sup)
    assert (row.status, row.ref is not None) == ("running", True)
    assert row.ref is not None
    with pytest.raises(Exception, match="crashed"):
        await row.ref.call("crash")
    await row.ref.join(timeout=10)

    (row,) = await which_children(sup)
    assert (row.status, row.ref) == ("restarting", None)
    for operation in (restart_child, delete_child):
        with pytest.raises(ChildRestarting) as info:
            await operation(sup, "n1")
        assert info.value.reason == "restarting"
    with pytest.raises(ChildRestarting):
        await start_child(sup, worker("n1", journal))


async def test_operations_on_an_unknown_child_answer_not_found(
    system: ActorSystem, journal: Journal
) -> None:
    sup = await system.spawn(Supervisor([]))
    for operation in (terminate_child, restart_child, delete_child):
        with pytest.raises(ChildNotFound) as info:
            await operation(sup, "ghost")
        assert (info.value.reason, info.value.child_id) == ("not_found", "ghost")
        assert isinstance(info.value, KeyError)
        assert isinstance(info.value, SupervisorError)
    dynamic = await system.spawn(DynamicSupervisor())
    with pytest.raises(ChildNotFound):
        await terminate_child(dynamic, sup)


async def test_a_dynamic_supervisor_lists_a_child_waiting_for_its_restart_as_restarting(
    system: ActorSystem, journal: Journal
) -> None:
    sup = await system.spawn(DynamicSupervisor())
    ref = await start_child(sup, worker("d", journal, backoff=SLOW))
    assert ref is not None
    with pytest.raises(Exception, match="crashed"):
        await ref.call("crash")
    await ref.join(timeout=10)
    (row,) = await which_children(sup)
    assert (row.id, row.status, row.ref) == ("d", "restarting", None)


def _events(logs: Sequence[Mapping[str, Any]], event: str) -> list[Mapping[str, Any]]:
    return [entry for entry in logs if entry["event"] == event]


@pytest.mark.parametrize("restart", ["transient", "temporary"])
async def test_a_transient_or_temporary_child_exiting_normally_is_not_reported(
    system: ActorSystem, journal: Journal, restart: str
) -> None:
    sup = await system.spawn(
        Supervisor([worker("quiet", journal, restart=restart), worker("loud", journal)])
    )
    rows = {row.id: row.ref for row in await which_children(sup)}
    with capture_logs() as logs:
        for child, reason in (("quiet", "normal"), ("loud", "normal")):
            ref = rows[child]
            assert ref is not None
            await ref.call(("exit", reason))
            await ref.join(timeout=10)
        await journal.wait_for(lambda: journal.of("start").count("loud") == 2, timeout=10)
    reported = [entry["child"] for entry in _events(logs, "supervisor.child_terminated")]
    assert reported == ["loud"], "only the permanent child's exit calls for action"
    assert all(e["log_level"] == "error" for e in _events(logs, "supervisor.child_terminated"))


async def test_a_failed_manual_start_is_returned_not_reported_but_a_failed_restart_is(
    system: ActorSystem, journal: Journal
) -> None:
    sup = await system.spawn(Supervisor([], max_restarts=10))
    with capture_logs() as logs, pytest.raises(ChildStartError):
        await start_child(sup, worker("bad", journal, init="raise"))
    assert _events(logs, "supervisor.start_error") == []

    flaky = Flaky()
    with capture_logs() as logs:
        ref = await start_child(sup, flaky.spec(journal))
        assert ref is not None
        flaky.fail_next = True
        await ref.call(("exit", "boom"))
        await journal.wait_for(lambda: journal.of("start").count("flaky") == 2, timeout=10)
    assert [e["child"] for e in _events(logs, "supervisor.start_error")] == ["flaky"]


class Flaky:
    """A child spec whose next start can be made to fail once."""

    def __init__(self) -> None:
        self.fail_next = False

    def spec(self, journal: Journal) -> Any:
        def start() -> Any:
            mode = "ok"
            if self.fail_next:
                self.fail_next = False
                mode = "raise"
            return worker("flaky", journal, init=mode).start()

        return ChildSpec("flaky", start=start)


async def test_which_children_statuses_follow_the_child(
    system: ActorSystem, journal: Journal
) -> None:
    sup = await system.spawn(
        Supervisor([worker("a", journal), worker("i", journal, init="ignore")])
    )
    statuses = {row.id: row.status for row in await which_children(sup)}
    assert statuses == {"a": "running", "i": "undefined"}
    await terminate_child(sup, "a")
    assert {row.id: row.status for row in await which_children(sup)}["a"] == "undefined"
