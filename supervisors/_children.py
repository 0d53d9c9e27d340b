"""What every supervisor shares: child records, restart intensity, starting and stopping a child.

Reports (OTP's progress, supervisor and crash reports) go through structlog under the logger
``supervisors`` with these events: ``supervisor.child_started``, ``supervisor.child_terminated``,
``supervisor.start_error``, ``supervisor.shutdown_error`` and ``supervisor.gave_up``.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from actors import (
    KILL,
    SHUTDOWN,
    Actor,
    ActorError,
    ActorRef,
    Ignore,
    StartFailed,
    Timer,
    is_normal_exit,
)
from supervisors._spec import ChildSpec

__all__ = ["ChildInfo", "ChildStartError", "Counts", "Intensity"]

log = structlog.get_logger("supervisors")

Clock = Callable[[], float]


class ChildStartError(ActorError):
    """A child failed to start (``{:failed_to_start_child, id, reason}``)."""

    def __init__(self, child_id: object, reason: BaseException) -> None:
        super().__init__(child_id, reason)
        self.child_id = child_id
        self.reason = reason

    def __str__(self) -> str:
        return f"child {self.child_id!r} failed to start: {self.reason!r}"


@dataclass(frozen=True, slots=True)
class ChildInfo:
    """One row of `which_children`."""

    id: object
    ref: ActorRef | None
    type: str
    restart: str
    restarts: int


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
    failures: int = 0
    pending: Timer | None = None
    token: int = 0

    def info(self) -> ChildInfo:
        return ChildInfo(self.spec.id, self.ref, self.spec.type, self.spec.restart, self.restarts)


class Intensity:
    """At most `max_restarts` restarts within `max_seconds`, counted per supervisor.

    Each restart records the clock; restarts older than `max_seconds` fall out of the window
    (one exactly `max_seconds` old still counts, as in OTP). The restart that would make the
    count exceed `max_restarts` is refused: the supervisor gives up.
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


async def start_child(sup: Actor, child: Child, clock: Clock) -> ActorRef | None:
    """Spawn the child linked to `sup`. None if its init raised `Ignore`."""
    spec = child.spec
    init_timeout = spec.init_timeout if spec.init_timeout != "default" else None
    try:
        ref = await sup.spawn_link(spec.start(), name=spec.name, init_timeout=init_timeout)
    except Ignore:
        child.ref = None
        log.info("supervisor.child_ignored", supervisor=sup.ref, child=spec.id)
        return None
    except StartFailed as exc:
        log.error("supervisor.start_error", supervisor=sup.ref, child=spec.id, reason=exc.reason)
        raise ChildStartError(spec.id, exc.reason) from exc
    except Exception as exc:
        log.error("supervisor.start_error", supervisor=sup.ref, child=spec.id, reason=exc)
        raise ChildStartError(spec.id, exc) from exc
    child.ref = ref
    child.started_at = clock()
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
    """The supervisor report for a child's exit (values are rendered only if logged)."""
    report = log.info if is_normal_exit(reason) else log.error
    report("supervisor.child_terminated", supervisor=sup.ref, child=child.spec.id, reason=reason)


def monotonic() -> float:
    return time.monotonic()
