"""What every supervisor shares: child records, restart intensity, starting and stopping a child,
the errors of operations on a running supervisor, and the supervisor reports.

Reports (OTP's progress and supervisor reports) go through structlog under the logger
``supervisors``, decided as OTP decides them, so an alert on one means what it means in OTP:

- ``supervisor.child_started`` (info): a child started (at init, on restart, or by an operation).
- ``supervisor.child_terminated`` (error): a child exited on its own and the supervisor must act:
  a permanent child whatever the reason (``normal`` included: it will be restarted), a transient
  or temporary one only for an abnormal reason. A transient or temporary child that exits
  ``normal``, ``shutdown`` or ``Shutdown(...)`` is reported nowhere, as in OTP.
- ``supervisor.start_error`` (error): a child failed to start while the supervisor started it
  itself (its own init, a restart). A failure of `start_child` / `restart_child` is only
  returned to the caller (as `ChildStartError`), as OTP only returns ``{error, Reason}``.
- ``supervisor.shutdown_error`` (error): a child did not stop within its shutdown timeout and
  was killed.
- ``supervisor.gave_up`` (error): restart intensity exceeded (OTP's
  ``reached_max_restart_intensity``).

Beyond OTP: ``supervisor.child_ignored``, ``supervisor.restart_delayed`` (a back-off),
``supervisor.auto_shutdown`` (info).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from actors import (
    KILL,
    SHUTDOWN,
    Actor,
    ActorError,
    ActorRef,
    Ignore,
    StartFailed,
    Streak,
    Timer,
    get_logger,
    is_normal_exit,
)
from supervisors._spec import ChildSpec

__all__ = [
    "AlreadyPresent",
    "AlreadyStarted",
    "ChildInfo",
    "ChildNotFound",
    "ChildRestarting",
    "ChildRunning",
    "ChildStartError",
    "ChildStatus",
    "Counts",
    "Intensity",
    "SupervisorError",
]

log = get_logger("supervisors")

Clock = Callable[[], float]


class ChildStartError(ActorError):
    """A child failed to start (``{:failed_to_start_child, id, reason}``)."""

    def __init__(self, child_id: object, reason: BaseException) -> None:
        super().__init__(child_id, reason)
        self.child_id = child_id
        self.reason = reason

    def __str__(self) -> str:
        return f"child {self.child_id!r} failed to start: {self.reason!r}"


class SupervisorError(ActorError):
    """An operation on a running supervisor was refused: OTP's ``{error, Reason}``.

    `reason` is OTP's term (``"already_started"``, ``"already_present"``, ``"running"``,
    ``"restarting"``, ``"not_found"``) and `child_id` the child asked about. Each subclass is
    also the `ValueError` or `KeyError` these operations raised before they had types.
    """

    reason: str = ""

    def __init__(self, child_id: object, detail: str) -> None:
        super().__init__(child_id, detail)
        self.child_id = child_id
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.detail} ({self.reason})"


class AlreadyStarted(SupervisorError, ValueError):
    """`start_child` with the id of a running child: ``{error, {already_started, Pid}}``.
    `ref` is the running child, so "start it, or use the one already running" is one call."""

    reason = "already_started"

    def __init__(self, child_id: object, ref: ActorRef) -> None:
        super().__init__(child_id, f"child {child_id!r} is already started as {ref!r}")
        self.ref = ref


class AlreadyPresent(SupervisorError, ValueError):
    """`start_child` with the id of a child whose spec is kept but which is not running
    (terminated, or its init raised `Ignore`): ``{error, already_present}``. Use
    `restart_child` to start it, or `delete_child` first to replace its spec."""

    reason = "already_present"


class ChildRunning(SupervisorError, ValueError):
    """`restart_child` or `delete_child` on a running child: ``{error, running}``."""

    reason = "running"


class ChildRestarting(SupervisorError, ValueError):
    """The child is between an exit and its (delayed or retried) restart: ``{error,
    restarting}`` from `restart_child` and `delete_child`. `start_child` raises it too, where
    OTP answers ``{already_started, {restarting, OldPid}}``: there is no live ref to give."""

    reason = "restarting"


class ChildNotFound(SupervisorError, KeyError):
    """No child with this id (or ref, for a `DynamicSupervisor`): ``{error, not_found}``."""

    reason = "not_found"


ChildStatus = Literal["running", "restarting", "undefined"]
"""A child's state in `which_children`: OTP's ``Child`` column, where ``undefined`` means the
spec is kept but no actor runs (terminated, or its init raised `Ignore`)."""


@dataclass(frozen=True, slots=True)
class ChildInfo:
    """One row of `which_children`: `ref` is None unless `status` is ``"running"``."""

    id: object
    ref: ActorRef | None
    type: str
    restart: str
    restarts: int
    status: ChildStatus = "running"


@dataclass(frozen=True, slots=True)
class Counts:
    """`count_children`: specs, live children, and how many of the specs are of each type."""

    specs: int
    active: int
    supervisors: int
    workers: int


@dataclass(slots=True)
class Child:
    """A supervisor's record of one child spec and its current actor, if any."""

    spec: ChildSpec
    ref: ActorRef | None = None
    restarts: int = 0
    started_at: float = 0.0
    streak: Streak | None = None
    """The failing streak its `ChildSpec.backoff` delays restarts by (from the first one)."""
    pending: Timer | None = None
    token: int = 0
    restarting: bool = False
    """Exited and due to be restarted (set while a DynamicSupervisor's restart is pending)."""

    @property
    def status(self) -> ChildStatus:
        if self.ref is not None:
            return "running"
        return "restarting" if self.pending is not None or self.restarting else "undefined"

    def info(self) -> ChildInfo:
        spec = self.spec
        return ChildInfo(spec.id, self.ref, spec.type, spec.restart, self.restarts, self.status)

    def refuse_if_active(self) -> None:
        """Raise `ChildRunning` or `ChildRestarting` unless the child is stopped."""
        if self.ref is not None:
            raise ChildRunning(self.spec.id, f"child {self.spec.id!r} is running")
        if self.status == "restarting":
            raise ChildRestarting(self.spec.id, f"child {self.spec.id!r} is restarting")


class Intensity:
    """At most `max_restarts` restarts within `max_seconds`, counted per supervisor.

    Each restart records the clock; restarts older than `max_seconds` fall out of the window
    (one exactly `max_seconds` old still counts, as in OTP). The clock is a float (seconds of
    `time.monotonic` by default), where OTP stamps restarts in whole seconds
    (``erlang:monotonic_time(second)``): OTP's window of 5 still holds a restart 5.9 s old,
    Piano's does not, and a fractional `max_seconds` is meaningful here. The restart that would
    make the count exceed `max_restarts` is refused: the supervisor gives up.
    """

    def __init__(self, max_restarts: int, max_seconds: float, clock: Clock) -> None:
        if not isinstance(max_restarts, int) or max_restarts < 0:
            raise ValueError(f"max_restarts must be an integer >= 0, got {max_restarts!r}")
        if not isinstance(max_seconds, int | float) or not max_seconds > 0:
            raise ValueError(f"max_seconds must be a positive number, got {max_seconds!r}")
        self.max_restarts = max_restarts
        self.max_seconds = max_seconds
        self._clock = clock
        self._stamps: deque[float] = deque()

    def add(self) -> bool:
        """Record a restart. False if it exceeds the intensity (the supervisor must give up)."""
        now = self._clock()
        stamps = self._stamps
        stamps.append(now)
        threshold = now - self.max_seconds
        while stamps and stamps[0] < threshold:
            stamps.popleft()
        return len(stamps) <= self.max_restarts

    @property
    def recent(self) -> int:
        return len(self._stamps)


def should_restart(spec: ChildSpec, reason: object) -> bool:
    if spec.restart == "permanent":
        return True
    if spec.restart == "transient":
        return not is_normal_exit(reason)
    return False


async def start_child(
    sup: Actor, child: Child, clock: Clock, *, report: bool = True
) -> ActorRef | None:
    """Spawn the child linked to `sup`. None if its init raised `Ignore`. A failure is logged as
    ``supervisor.start_error`` only with `report` (the supervisor's own starts and restarts)."""
    spec = child.spec
    init_timeout = spec.init_timeout if spec.init_timeout != "default" else None
    try:
        ref = await sup.spawn_link(spec.start(), name=spec.name, init_timeout=init_timeout)
    except Ignore:
        child.ref = None
        log.info("supervisor.child_ignored", supervisor=sup.ref, child=spec.id)
        return None
    except Exception as exc:
        reason = exc.reason if isinstance(exc, StartFailed) else exc
        if report:
            log.error("supervisor.start_error", supervisor=sup.ref, child=spec.id, reason=reason)
        raise ChildStartError(spec.id, reason) from exc
    child.ref = ref
    child.started_at = clock()
    if child.streak is not None:
        child.streak.started()
    log.info("supervisor.child_started", supervisor=sup.ref, child=spec.id, ref=ref)
    return ref


async def stop_child(sup: Actor, child: Child) -> None:
    """Stop a child as its shutdown policy says; the supervisor waits (OTP does too)."""
    if child.pending is not None:
        child.pending.cancel()
        child.pending = None
    ref, child.ref = child.ref, None
    if ref is None or not ref.alive:
        return
    sup.unlink(ref)
    policy = child.spec.shutdown
    if policy == "brutal_kill":
        ref.exit(KILL)
        await ref.join()
        return
    ref.exit(SHUTDOWN)
    try:
        await ref.join(None if policy == "infinity" else policy)  # type: ignore[arg-type]
    except TimeoutError:
        ref.exit(KILL)
        reason = await ref.join()
        log.error(
            "supervisor.shutdown_error",
            supervisor=sup.ref,
            child=child.spec.id,
            reason=reason,
            shutdown=policy,
        )


def report_exit(sup: Actor, child: Child, reason: object) -> None:
    """The supervisor report for a child's exit, decided by its restart type as OTP's
    ``do_restart`` does (see the module documentation)."""
    if child.spec.restart != "permanent" and is_normal_exit(reason):
        return
    log.error("supervisor.child_terminated", supervisor=sup.ref, child=child.spec.id, reason=reason)


def monotonic() -> float:
    return time.monotonic()
