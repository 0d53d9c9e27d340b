"""The part of a supervisor that does not depend on its strategy: restart intensity, back-off,
giving up, and stopping children on exit."""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass

from actors import SHUTDOWN, Actor, Streak
from supervisors._children import Child, Clock, Intensity, log

__all__ = ["RestartDue", "SupervisorBase", "SupervisorStatistics"]


@dataclass(frozen=True, slots=True)
class SupervisorStatistics:
    """A supervisor's counters (`Actor.statistics`, read with `actors.statistics(ref)`):
    its children (specs, or live children of a dynamic supervisor), how many run now, the
    restarts it made of them all, and its restart intensity."""

    children: int
    running: int
    restarts: int
    max_restarts: int
    max_seconds: float


@dataclass(frozen=True, slots=True, eq=False)
class RestartDue:
    """The supervisor's message to itself: a delayed or retried restart is due."""

    child: Child
    token: int


class SupervisorBase(Actor):
    """Intensity, back-off and give-up shared by every kind of supervisor."""

    def __init__(self, max_restarts: int, max_seconds: float, clock: Clock, seed: int | None):
        self.intensity = Intensity(max_restarts, max_seconds, clock)
        self._clock = clock
        self._rng = random.Random(seed)
        self._tokens = 0

    async def terminate(self, reason: object) -> None:
        await self._stop_all()

    async def _stop_all(self) -> None:
        raise NotImplementedError

    async def _apply_strategy(self, child: Child) -> None:
        raise NotImplementedError

    def records(self) -> Iterable[Child]:
        """Every child record the supervisor keeps (running, restarting or stopped)."""
        raise NotImplementedError

    def statistics(self) -> object | None:
        """`supervisor_statistics()`; a subclass that is more than a supervisor (a pipeline)
        reports its own kind of statistics instead."""
        return self.supervisor_statistics()

    def supervisor_statistics(self) -> SupervisorStatistics:
        """The counters of this supervisor as a supervisor."""
        children = list(self.records())
        return SupervisorStatistics(
            children=len(children),
            running=sum(1 for child in children if child.ref is not None),
            restarts=sum(child.restarts for child in children),
            max_restarts=self.intensity.max_restarts,
            max_seconds=self.intensity.max_seconds,
        )

    def _describe_intensity(self) -> str:
        stats = self.supervisor_statistics()
        return f"intensity {stats.max_restarts}/{stats.max_seconds:g}s, {stats.restarts} restarts"

    async def _give_up(self) -> None:
        await self._stop_all()
        self.stop(SHUTDOWN)

    def counts_toward_intensity(self, child_id: object) -> bool:
        """Whether restarting child `child_id` counts toward the restart intensity: always, as
        in OTP. A subclass may exempt restarts it knows cannot loop without progress (a pipeline
        stage group does while its pipeline drains, since its own supervisor is then stopping
        and cannot restart it)."""
        return True

    async def _restart(self, child: Child, *, retry: bool = False) -> None:
        """Count a restart against intensity, then restart now, after a back-off, or (for a
        retry after a failed start) through the mailbox, as OTP's ``try_again_restart``."""
        if self.counts_toward_intensity(child.spec.id) and not self.intensity.add():
            log.error(
                "supervisor.gave_up",
                supervisor=repr(self.ref),
                child=repr(child.spec.id),
                max_restarts=self.intensity.max_restarts,
                max_seconds=self.intensity.max_seconds,
            )
            await self._give_up()
            return
        child.restarts += 1
        backoff = child.spec.backoff
        delay = 0.0
        if backoff is not None:
            if child.streak is None or child.streak.backoff is not backoff:
                child.streak = Streak(backoff, self._rng, self._clock)
            delay = child.streak.failed()
            log.info(
                "supervisor.restart_delayed",
                supervisor=repr(self.ref),
                child=repr(child.spec.id),
                delay=round(delay, 3),
            )
        elif not retry:
            await self._apply_strategy(child)
            return
        self._tokens += 1
        child.token = self._tokens
        child.pending = self.send_after(delay, RestartDue(child, self._tokens))
