"""`Backoff`: how long to wait before trying again, the one back-off of Piano.

Supervisors delay the restarts of a failing child with it (`ChildSpec.backoff`), pipeline
stages their retries (`actors.pipeline.Retry`), and the application its reconnects and
resends (Codex's client, Telegram's polling and sending, OpenAI agents' model requests).

```python
backoff = Backoff(initial=0.5, cap=30.0)
backoff.delay(3, rng)            # a wait in [0, min(30, 0.5 * 2**2)]: full jitter

streak = backoff.streak()        # one thing trying again and again
while not await attempt():
    await asyncio.sleep(streak.failed())
streak.succeeded()               # the next failure waits about `initial` again
```

Guarantees:
- the n-th attempt of a failing streak waits at most its ceiling,
  ``min(cap, initial * factor**(n-1))``, and never more than `cap`;
- with ``jitter=1`` (the default: *full jitter*) the wait is uniform over
  ``[0, ceiling]``, so that many things failing together (every restarted client, every
  poller after an outage) do not try again in lock-step; with ``jitter=j`` it is uniform
  over ``[(1-j) * ceiling, ceiling]``; ``jitter=0`` waits exactly the ceiling;
- the same `random.Random` seed gives the same waits;
- a `Streak` starts over at attempt 1 after `Streak.succeeded`, or, for a thing that is
  started and fails later (a supervised child), after it ran for `reset_after` seconds.

A bad option raises `ValueError` naming it.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Backoff", "Streak"]


def _positive(name: str, value: object) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or not value > 0:
        raise ValueError(f"Backoff.{name} must be a positive number, got {value!r}")
    if math.isinf(value):
        raise ValueError(f"Backoff.{name} must be a positive number, got {value!r}")


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential back-off with jitter, a cap and a reset; see the module documentation."""

    initial: float = 0.1
    factor: float = 2.0
    cap: float = 30.0
    jitter: float = 1.0
    reset_after: float = 60.0

    def __post_init__(self) -> None:
        for name in ("initial", "cap", "reset_after"):
            _positive(name, getattr(self, name))
        if type(self.factor) not in (int, float) or not self.factor >= 1:
            raise ValueError(f"Backoff.factor must be a number >= 1, got {self.factor!r}")
        if type(self.jitter) not in (int, float) or not 0 <= self.jitter <= 1:
            raise ValueError(f"Backoff.jitter must be in [0, 1], got {self.jitter!r}")

    def ceiling(self, attempt: int) -> float:
        """The longest wait before attempt number `attempt` (1-based) of a failing streak."""
        if attempt < 1:
            raise ValueError(f"Backoff attempts count from 1, got {attempt!r}")
        try:
            grown = self.initial * self.factor ** (attempt - 1)
        except OverflowError:
            return float(self.cap)
        return float(min(self.cap, grown))

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before attempt number `attempt` (1-based) of a failing streak;
        `rng` (default: the module's) draws the jitter."""
        ceiling = self.ceiling(attempt)
        if self.jitter == 0:
            return ceiling
        low = ceiling * (1.0 - self.jitter)
        return (rng or random).uniform(low, ceiling)

    def streak(
        self, rng: random.Random | None = None, clock: Callable[[], float] = time.monotonic
    ) -> Streak:
        """A new failing streak under this back-off (see `Streak`)."""
        return Streak(self, rng, clock)


class Streak:
    """One thing trying again: the waits of its consecutive failures, and their reset.

    Not thread-safe; one owner (an actor, a loop) uses it.
    """

    __slots__ = ("_clock", "_rng", "_started", "backoff", "failures")

    def __init__(
        self,
        backoff: Backoff,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.backoff = backoff
        self.failures = 0
        self._rng = rng
        self._clock = clock
        self._started: float | None = None

    def started(self) -> None:
        """The thing (re)started now: if it then runs for `reset_after` seconds before it
        fails, its next failure starts a new streak."""
        self._started = self._clock()

    def failed(self) -> float:
        """Count a failure; the seconds to wait before the next attempt."""
        if self._started is not None and self._clock() - self._started >= self.backoff.reset_after:
            self.failures = 0
        self._started = None
        self.failures += 1
        return self.backoff.delay(self.failures, self._rng)

    def succeeded(self) -> None:
        """The attempt worked: the next failure waits as the first did."""
        self.failures = 0
        self._started = None
