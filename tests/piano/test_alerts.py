"""Alerts group signs into incidents: the owner hears once when one opens and once when it
closes, never once per event (`piano.alerts`); the actor tells the surfaces ``[alerts] to``
names and keeps what is open across its own restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from actors import NOREPLY, Actor, ActorSystem, Caller
from piano.alerts import Alerts, Incidents, Sign, SignIntake
from piano.config import AlertsConfig, Config, DaemonConfig
from schemas.alerts import Alert

pytestmark = pytest.mark.anyio

CONFIG = AlertsConfig(codex_failures=3, codex_window=60, quiet=120)

CRASH = Sign("codex", "the codex process stopped (killed)")


def states(alerts: list[Alert | None]) -> list[tuple[str, str]]:
    return [(a.incident, a.state) for a in alerts if a is not None]


def test_codex_failures_below_the_threshold_open_nothing() -> None:
    incidents = Incidents(CONFIG)
    assert states([incidents.observe(CRASH, t) for t in (0, 1)]) == []
    assert incidents.open == {}


def test_codex_failing_again_and_again_opens_one_incident_not_one_per_failure() -> None:
    incidents = Incidents(CONFIG)
    told = [incidents.observe(CRASH, t) for t in range(10)]
    assert states(told) == [("codex", "opened")]
    opened = next(a for a in told if a is not None)
    assert "3 failures in the last 60 s" in opened.text
    assert "killed" in opened.text


def test_failures_spread_wider_than_the_window_never_open_an_incident() -> None:
    incidents = Incidents(CONFIG)
    assert states([incidents.observe(CRASH, t * 31.0) for t in range(10)]) == []


def test_a_completed_turn_closes_the_codex_incident_and_says_so_once() -> None:
    incidents = Incidents(CONFIG)
    for t in range(3):
        incidents.observe(CRASH, t)
    healed = Sign("codex", "a turn completed", healthy=True)
    told = [incidents.observe(healed, 100), incidents.observe(healed, 101)]
    assert states(told) == [("codex", "closed")]
    assert told[0] is not None
    assert told[0].opened_at == 2
    assert "working again" in told[0].text


def test_a_quiet_codex_incident_closes_at_the_first_tick_after_quiet_seconds() -> None:
    incidents = Incidents(CONFIG)
    for t in range(3):
        incidents.observe(CRASH, t)
    incidents.observe(CRASH, 50)  # still failing: the incident stays open, nothing told
    assert incidents.tick(169) == []
    assert states(list(incidents.tick(170))) == [("codex", "closed")]
    assert incidents.tick(500) == []


def test_after_an_incident_closed_a_new_one_needs_the_whole_threshold_again() -> None:
    incidents = Incidents(CONFIG)
    for t in range(3):
        incidents.observe(CRASH, t)
    incidents.tick(1000)
    assert states([incidents.observe(CRASH, 1001), incidents.observe(CRASH, 1002)]) == []
    assert states([incidents.observe(CRASH, 1003)]) == [("codex", "opened")]


def test_a_provider_is_an_incident_of_its_own_opened_and_closed_by_the_probe() -> None:
    incidents = Incidents(CONFIG)
    down = Sign("provider", "POST http://x/v1/responses: cannot connect", subject="fake")
    up = Sign("provider", "POST http://x/v1/responses: HTTP 200", subject="fake", healthy=True)
    other = Sign("provider", "HTTP 500: boom", subject="other")
    told = [incidents.observe(s, t) for t, s in enumerate([down, down, other, up, up])]
    assert states(told) == [
        ("provider:fake", "opened"),
        ("provider:other", "opened"),
        ("provider:fake", "closed"),
    ]
    assert incidents.open_providers() == ["other"]


def test_the_disk_opens_below_the_threshold_and_closes_when_there_is_room() -> None:
    incidents = Incidents(CONFIG)
    low = Sign("disk", "2.0% free")
    fine = Sign("disk", "40.0% free", healthy=True)
    told = [incidents.observe(s, t) for t, s in enumerate([fine, low, low, low, fine, fine])]
    assert states(told) == [("disk", "opened"), ("disk", "closed")]


def test_a_supervisor_that_gave_up_is_one_incident_closed_after_a_quiet_spell() -> None:
    incidents = Incidents(CONFIG)
    gave_up = Sign("supervisor", "more than 5 restarts in 30 s", subject="codex_supervisor")
    assert states([incidents.observe(gave_up, 0), incidents.observe(gave_up, 10)]) == [
        ("supervisor:codex_supervisor", "opened")
    ]
    assert incidents.tick(100) == []
    assert states(list(incidents.tick(130))) == [("supervisor:codex_supervisor", "closed")]


def test_the_log_events_that_are_signs_become_signs_and_the_rest_pass_untouched() -> None:
    intake = SignIntake()
    lines: list[dict[str, Any]] = [
        {"event": "supervisor.child_terminated", "child": "codex", "reason": "killed"},
        {"event": "supervisor.child_terminated", "child": "store", "reason": "boom"},
        {"event": "codex.turn", "status": "failed", "error": "provider down"},
        {"event": "codex.turn", "status": "completed", "error": None},
        {"event": "codex.turn", "status": "interrupted", "error": "the daemon stopped"},
        {"event": "codex.provider_probed", "provider": "fake", "ok": False, "answer": "no"},
        {
            "event": "supervisor.gave_up",
            "supervisor": "<ActorRef Supervisor#7 'codex_supervisor'>",
            "child": "'codex'",
            "max_restarts": 5,
            "max_seconds": 30,
        },
        {"event": "thread.started"},
    ]
    for line in lines:
        assert intake.observe(None, "info", dict(line)) == line
    signs = [sign for sign, _ in intake.drain()]
    assert [(s.incident, s.healthy) for s in signs] == [
        ("codex", False),
        ("codex", False),
        ("codex", True),
        ("provider:fake", False),
        ("supervisor:codex_supervisor", False),
    ]


class Owner(Actor):
    """A surface stand-in that keeps the alerts it is sent; ``("told", n)`` answers once it
    has `n` of them."""

    def __init__(self) -> None:
        self.alerts: list[Alert] = []
        self.waiting: list[tuple[int, Caller]] = []

    def handle_info(self, message: Any) -> Any:
        if isinstance(message, Alert):
            self.alerts.append(message)
            for n, caller in [w for w in self.waiting if w[0] <= len(self.alerts)]:
                self.waiting.remove((n, caller))
                caller.reply(list(self.alerts))
            return None
        return super().handle_info(message)

    def handle_call(self, message: Any, caller: Caller) -> Any:
        match message:
            case ("told", int(n)) if len(self.alerts) >= n:
                return list(self.alerts)
            case ("told", int(n)):
                self.waiting.append((n, caller))
                return NOREPLY
        return super().handle_call(message, caller)


async def test_the_actor_tells_each_owner_surface_and_a_restart_does_not_tell_twice(
    tmp_path: Path,
) -> None:
    config = Config(daemon=DaemonConfig(state_dir=str(tmp_path)), alerts=CONFIG)
    incidents = Incidents(CONFIG)
    intake = SignIntake()
    async with ActorSystem() as system:
        owner = await system.spawn(Owner(), name="owner")

        def alerts() -> Alerts:
            return Alerts(config, incidents, to=["owner", "absent"], intake=intake)

        first = await system.spawn(alerts())
        for _ in range(4):
            intake.put(CRASH)
        with anyio.fail_after(10):
            [opened] = await owner.call(("told", 1))
        assert (opened.incident, opened.state) == ("codex", "opened")
        await first.stop()
        intake.put(CRASH)  # while no actor runs: the incident is still open, nothing to tell
        second = await system.spawn(alerts())
        intake.put(Sign("codex", "a turn completed", healthy=True))
        with anyio.fail_after(10):
            told = await owner.call(("told", 2))
        assert [(a.incident, a.state) for a in told] == [("codex", "opened"), ("codex", "closed")]
        await second.stop()


async def test_the_actor_looks_at_the_disk_and_tells_when_it_fills_and_when_it_has_room(
    tmp_path: Path,
) -> None:
    settings = AlertsConfig(disk_free_percent=10, check_interval=0.01)
    config = Config(daemon=DaemonConfig(state_dir=str(tmp_path)), alerts=settings)
    readings = iter([50.0, 4.0, 3.0, 2.0, 30.0])

    def disk() -> float:
        return next(readings, 30.0)

    async with ActorSystem() as system:
        owner = await system.spawn(Owner(), name="owner")
        await system.spawn(Alerts(config, Incidents(settings), to=["owner"], disk=disk))
        with anyio.fail_after(10):
            told = await owner.call(("told", 2))
    assert [(a.incident, a.state) for a in told] == [("disk", "opened"), ("disk", "closed")]
    assert "4.0% free (alert below 10%)" in told[0].text
