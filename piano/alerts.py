"""Alerts: the owner is told, on their surface, when something keeps going wrong — once per
incident, not once per event.

Four kinds of incident (`schemas.alerts.IncidentKind`), each opened by its first sign that
counts and closed when things are healthy again; both the opening and the closing are told:

- ``codex`` opens at `codex_failures` codex exits or failed turns within `codex_window` s, and
  closes at the next turn that completes or after `quiet` s without a failure;
- ``provider:NAME`` opens when a turn failed and the provider probe
  (`piano.codex.probe_provider`) got no good answer, and closes when the probe, asked again
  every `check_interval` s while it is open, is answered;
- ``disk`` opens when the state directory's filesystem has less than `disk_free_percent` free,
  and closes when it has more again (looked at every `check_interval` s);
- ``supervisor:NAME`` opens when a supervisor gave up (reached its restart intensity), and
  closes after `quiet` s without it giving up again.

Where the signs come from. The tree's reports are log events, as OTP's supervisor reports are,
so `SIGNS.observe` is a structlog processor (installed by `piano.daemon.configure_logging`,
ahead of the level filter) that turns the few events that matter into a `Sign`:
``supervisor.child_terminated`` of the ``codex`` child, ``codex.turn`` (failed or completed),
``codex.provider_probed`` and ``supervisor.gave_up``. Everything else passes untouched, at the
cost of one dictionary lookup. The disk is looked at by the `Alerts` actor itself.

Grouping (`Incidents`) is plain code with the clock passed in, unit-tested without a daemon.
Signs wait in `SignIntake`, a thread-safe queue (thread actors log from their own threads),
and the `Incidents` live in the daemon, not in the actor: a supervisor that gives up under
the top-level rest_for_one restarts every child after it, ``alerts`` included, and the
restarted actor still knows what is open and reads the signs that came meanwhile — so the
``gave up`` itself is told, and an open incident is not told twice.

Telling: each `Alert` is sent to the surfaces ``[alerts] to`` names (`Surface.alert`):
Telegram writes to the owner's chats (``[alerts] telegram_chats``, else every admin's private
chat) through its durable outbox, the terminal to every connected ``piano chat``, the web
surface to every client of its stream (`schemas.stream.Alerted`). Every alert
is also logged (``alerts.opened`` as a warning, ``alerts.closed`` as info), secrets redacted.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import time
from collections import deque
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from actors import Actor, ActorRef, redact
from piano.codex import CODEX, probe_provider
from piano.config import AlertsConfig, Config
from schemas.alerts import Alert, IncidentKind

__all__ = ["ALERTS", "SIGNS", "Alerts", "Incidents", "Sign", "SignIntake", "disk_free_percent"]

ALERTS = "alerts"
"""The name the `Alerts` actor registers under (and its child id)."""


@dataclass(frozen=True, slots=True)
class Sign:
    """One observation: something went wrong (`healthy` False) or is well (True) for the
    incident ``kind`` (``kind:subject`` when there is a subject); `detail` says what."""

    kind: IncidentKind
    detail: str
    subject: str = ""
    healthy: bool = False

    @property
    def incident(self) -> str:
        return f"{self.kind}:{self.subject}" if self.subject else self.kind


@dataclass(slots=True)
class _Open:
    kind: IncidentKind
    subject: str
    opened_at: float
    last_sign: float


@dataclass(slots=True)
class Incidents:
    """Signs grouped into incidents (see the module documentation); `now` is a Unix time."""

    config: AlertsConfig
    open: dict[str, _Open] = field(default_factory=dict)
    failures: deque[float] = field(default_factory=deque)
    """The times of codex's recent failures, within `codex_window`."""

    def observe(self, sign: Sign, now: float) -> Alert | None:
        """The alert `sign` causes: an incident opened or closed; None if it changes nothing."""
        key = sign.incident
        current = self.open.get(key)
        if sign.healthy:
            if sign.kind == "codex":
                self.failures.clear()
            if current is None or sign.kind == "supervisor":
                return None
            return self._close(key, current, now, _healed(sign, current, now))
        if current is not None:
            current.last_sign = now
            return None
        if sign.kind == "codex":
            self.failures.append(now)
            while self.failures and self.failures[0] < now - self.config.codex_window:
                self.failures.popleft()
            if len(self.failures) < self.config.codex_failures:
                return None
            text = (
                f"Codex keeps failing: {len(self.failures)} failures in the last "
                f"{self.config.codex_window:g} s (the latest: {sign.detail})."
            )
        else:
            text = _opened_text(sign, self.config)
        self.open[key] = _Open(sign.kind, sign.subject, now, now)
        return Alert(
            incident=key, kind=sign.kind, state="opened", text=redact(text), opened_at=now, at=now
        )

    def tick(self, now: float) -> list[Alert]:
        """Close the codex and supervisor incidents that have been quiet for `quiet` s."""
        quiet = self.config.quiet
        return [
            self._close(key, incident, now, _quiet_text(incident, quiet, now))
            for key, incident in list(self.open.items())
            if incident.kind in ("codex", "supervisor") and now - incident.last_sign >= quiet
        ]

    def open_providers(self) -> list[str]:
        """The providers with an open incident (re-asked every `check_interval`)."""
        return [i.subject for i in self.open.values() if i.kind == "provider"]

    def _close(self, key: str, incident: _Open, now: float, text: str) -> Alert:
        del self.open[key]
        if incident.kind == "codex":
            self.failures.clear()
        return Alert(
            incident=key,
            kind=incident.kind,
            state="closed",
            text=redact(text),
            opened_at=incident.opened_at,
            at=now,
        )


def _lasted(incident: _Open, now: float) -> str:
    seconds = round(now - incident.opened_at)
    return f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"


def _opened_text(sign: Sign, config: AlertsConfig) -> str:
    match sign.kind:
        case "provider":
            return f"The model provider {sign.subject} is down: {sign.detail}."
        case "disk":
            return f"The disk of Piano's state directory is nearly full: {sign.detail}."
        case _:
            return (
                f"The supervisor {sign.subject} gave up ({sign.detail}); "
                "its parent restarted it with everything that depends on it."
            )


def _healed(sign: Sign, incident: _Open, now: float) -> str:
    lasted = _lasted(incident, now)
    match sign.kind:
        case "codex":
            return f"Codex is working again: {sign.detail} (the incident lasted {lasted})."
        case "provider":
            return (
                f"The model provider {sign.subject} answers again: {sign.detail} "
                f"(it was down for {lasted})."
            )
        case _:
            return f"The disk of Piano's state directory has room again: {sign.detail}."


def _quiet_text(incident: _Open, quiet: float, now: float) -> str:
    lasted = _lasted(incident, now)
    if incident.kind == "codex":
        return f"Codex is working again: no failure for {quiet:g} s (the incident lasted {lasted})."
    return (
        f"The supervisor {incident.subject} has not given up again for {quiet:g} s "
        f"(the incident lasted {lasted})."
    )


_SUPERVISOR_NAME = re.compile(r"'([^']+)'")


def _name_of(ref: object) -> str:
    """A supervisor's registered name from its reference's repr, else the repr."""
    text = str(ref)
    match = _SUPERVISOR_NAME.search(text)
    return match.group(1) if match else text


def _sign_of(event: str, entry: MutableMapping[str, Any]) -> Sign | None:
    """The sign a log event is, if it is one (see the module documentation)."""
    match event:
        case "supervisor.child_terminated" if str(entry.get("child")) == CODEX:
            return Sign("codex", f"the codex process stopped ({entry.get('reason')})")
        case "codex.turn" if entry.get("status") == "failed":
            return Sign("codex", f"a turn failed: {entry.get('error')}")
        case "codex.turn" if entry.get("status") == "completed":
            return Sign("codex", "a turn completed", healthy=True)
        case "codex.provider_probed":
            return Sign(
                "provider",
                str(entry.get("answer")),
                subject=str(entry.get("provider")),
                healthy=bool(entry.get("ok")),
            )
        case "supervisor.gave_up":
            return Sign(
                "supervisor",
                f"more than {entry.get('max_restarts')} restarts in "
                f"{entry.get('max_seconds')} s, the last of {entry.get('child')}",
                subject=_name_of(entry.get("supervisor")),
            )
    return None


_SIGN_EVENTS = frozenset(
    {"supervisor.child_terminated", "codex.turn", "codex.provider_probed", "supervisor.gave_up"}
)


class SignIntake:
    """Where signs wait for the `Alerts` actor: filled from any thread (`observe`, `put`),
    drained by the actor, which `attach`es itself to be woken."""

    def __init__(self) -> None:
        self.signs: deque[tuple[Sign, float]] = deque(maxlen=10_000)
        self._target: tuple[asyncio.AbstractEventLoop, ActorRef] | None = None

    def attach(self, ref: ActorRef) -> None:
        """Wake `ref` (with ``"signs"``) whenever a sign arrives; now too if some wait."""
        self._target = (asyncio.get_running_loop(), ref)
        if self.signs:
            ref.send("signs")

    def detach(self, ref: ActorRef) -> None:
        if self._target is not None and self._target[1] == ref:
            self._target = None

    def put(self, sign: Sign, now: float | None = None) -> None:
        self.signs.append((sign, time.time() if now is None else now))
        target = self._target
        if target is not None:
            loop, ref = target
            try:
                loop.call_soon_threadsafe(ref.send, "signs")
            except RuntimeError:  # the loop is closed: the daemon is stopping
                self._target = None

    def drain(self) -> list[tuple[Sign, float]]:
        drained: list[tuple[Sign, float]] = []
        while self.signs:
            drained.append(self.signs.popleft())
        return drained

    def observe(
        self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        """structlog processor: take the signs out of the log (see the module); passes all on."""
        event = event_dict.get("event")
        if event in _SIGN_EVENTS and (sign := _sign_of(str(event), event_dict)) is not None:
            self.put(sign)
        return event_dict


SIGNS = SignIntake()
"""The daemon's sign intake (`piano.daemon.configure_logging` installs `SIGNS.observe`)."""


def disk_free_percent(path: Path) -> float:
    """The free space of `path`'s filesystem, in percent of its size."""
    usage = shutil.disk_usage(path)
    return 100.0 * usage.free / usage.total if usage.total else 100.0


class Alerts(Actor):
    """Turns signs into incidents and tells the owner; see the module documentation.

    `incidents` and `intake` belong to the daemon and outlive a restart of this actor; `to` is
    the registered names of the surfaces to tell; `disk` measures the state directory's free
    space (percent) and `probe` asks a provider again (True when it answers)."""

    def __init__(
        self,
        config: Config,
        incidents: Incidents,
        *,
        to: list[str],
        intake: SignIntake = SIGNS,
        disk: Callable[[], float] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.settings = config.alerts
        self.incidents = incidents
        self.to = to
        self.intake = intake
        state = config.state_path(".")
        self.disk = disk or (lambda: disk_free_percent(state))
        self.clock = clock
        self.told = 0

    def describe(self) -> str:
        open_ = ", ".join(sorted(self.incidents.open)) or "none"
        return f"alerts to {', '.join(self.to) or 'nobody'}; open incidents: {open_}"

    def statistics(self) -> dict[str, Any]:
        return {"open": sorted(self.incidents.open), "told": self.told}

    async def init(self) -> None:
        self.trap_exits = True
        self.intake.attach(self.ref)
        self.send_after(self.settings.check_interval, "check")

    async def terminate(self, reason: object) -> None:
        self.intake.detach(self.ref)

    async def handle_info(self, message: Any) -> None:
        match message:
            case "signs":
                for sign, at in self.intake.drain():
                    self._tell(self.incidents.observe(sign, at))
            case "check":
                await self._check()
                self.send_after(self.settings.check_interval, "check")
            case _:
                await super().handle_info(message)

    async def _check(self) -> None:
        now = self.clock()
        for alert in self.incidents.tick(now):
            self._tell(alert)
        try:
            free = self.disk()
        except OSError as exc:
            self.log.warning("alerts.disk_unknown", error=str(exc))
        else:
            detail = f"{free:.1f}% free (alert below {self.settings.disk_free_percent:g}%)"
            healthy = free >= self.settings.disk_free_percent
            self._tell(self.incidents.observe(Sign("disk", detail, healthy=healthy), now))
        for name in self.incidents.open_providers():
            provider = self.config.providers.get(name)
            if provider is None:
                continue
            model = next((a.model for a in self.config.agents.values() if a.provider == name), None)
            answer = await probe_provider(provider, model, timeout=self.config.codex.probe_timeout)
            sign = Sign("provider", answer.detail, subject=name, healthy=answer.ok)
            self._tell(self.incidents.observe(sign, self.clock()))

    def _tell(self, alert: Alert | None) -> None:
        if alert is None:
            return
        self.told += 1
        (self.log.warning if alert.state == "opened" else self.log.info)(
            f"alerts.{alert.state}", incident=alert.incident, text=alert.text
        )
        for name in self.to:
            surface = self.system.whereis(name)
            if surface is not None:
                surface.send(alert)
