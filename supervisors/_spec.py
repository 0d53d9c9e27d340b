"""Child specifications: what a supervisor needs to know to start, restart and stop a child.

| field          | values                                       | default                          |
|----------------|----------------------------------------------|----------------------------------|
| `id`           | any hashable, unique within the supervisor   | required                         |
| `start`        | a callable returning a fresh, unspawned Actor| required                         |
| `restart`      | "permanent", "transient", "temporary"        | "permanent"                      |
| `shutdown`     | seconds, "brutal_kill" or "infinity"         | 5.0 for workers, "infinity" for  |
|                |                                              | supervisors                      |
| `type`         | "worker" or "supervisor"                     | "worker"                         |
| `significant`  | bool (transient/temporary only)              | False                            |
| `init_timeout` | seconds the child's `init` may take, or None | 5.0 for workers, None for        |
|                |                                              | supervisors                      |
| `name`         | a name to register the child under           | None                             |
| `backoff`      | a `Backoff` delaying restarts (beyond OTP)   | None: restart at once            |

- permanent: always restarted. transient: restarted unless it exits with ``"normal"``,
  ``"shutdown"`` or ``Shutdown(detail)``. temporary: never restarted, not even when a sibling's
  crash takes it down under one_for_all or rest_for_one; its spec is dropped when it exits.
- shutdown: the supervisor sends the exit signal ``"shutdown"`` (a child that traps exits runs
  `terminate`), waits up to that many seconds, then kills it. "brutal_kill" kills at once;
  "infinity" waits forever (meant for child supervisors, which stop their own children).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from actors import Actor

__all__ = ["Backoff", "ChildSpec", "Restart", "ShutdownPolicy"]

Restart = Literal["permanent", "transient", "temporary"]
ShutdownPolicy = float | Literal["brutal_kill", "infinity"]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay restarts of a child that keeps failing: exponential, with jitter and a cap.

    The n-th consecutive restart waits ``min(cap, initial * factor**(n-1))`` seconds, spread by
    ±`jitter` (a fraction). A child that stayed up for `reset_after` seconds starts again at
    `initial`. See `docs/supervision.md` for how this interacts with restart intensity.
    """

    initial: float = 0.1
    factor: float = 2.0
    cap: float = 30.0
    jitter: float = 0.2
    reset_after: float = 60.0

    def __post_init__(self) -> None:
        for name in ("initial", "cap", "reset_after"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not value > 0 or math.isinf(value):
                raise ValueError(f"Backoff.{name} must be a positive number, got {value!r}")
        if not self.factor >= 1:
            raise ValueError(f"Backoff.factor must be >= 1, got {self.factor!r}")
        if not 0 <= self.jitter < 1:
            raise ValueError(f"Backoff.jitter must be in [0, 1), got {self.jitter!r}")

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait before restart number `attempt` (1-based) of a failing streak."""
        base = min(self.cap, self.initial * self.factor ** (attempt - 1))
        spread = base * self.jitter
        return max(0.0, base + rng.uniform(-spread, spread))


@dataclass(frozen=True, slots=True)
class ChildSpec:
    """How to start, restart and stop one child. See the module documentation.

    `shutdown` and `init_timeout` left at "default" are resolved by `type` when the spec is made.
    """

    id: object
    start: Callable[[], Actor]
    restart: Restart = "permanent"
    shutdown: ShutdownPolicy | Literal["default"] = "default"
    type: Literal["worker", "supervisor"] = "worker"
    significant: bool = False
    init_timeout: float | Literal["default"] | None = "default"
    name: str | None = None
    backoff: Backoff | None = None

    def __post_init__(self) -> None:
        where = f"child spec {self.id!r}"
        try:
            hash(self.id)
        except TypeError:
            raise ValueError(f"{where}: id must be hashable") from None
        if not callable(self.start):
            raise ValueError(f"{where}: start must be a callable returning an Actor")
        if self.restart not in ("permanent", "transient", "temporary"):
            raise ValueError(
                f"{where}: restart must be permanent, transient or temporary, got {self.restart!r}"
            )
        if self.type not in ("worker", "supervisor"):
            raise ValueError(f"{where}: type must be worker or supervisor, got {self.type!r}")
        if self.significant and self.restart == "permanent":
            raise ValueError(f"{where}: a significant child must be transient or temporary")
        supervisor = self.type == "supervisor"
        if self.shutdown == "default":
            object.__setattr__(self, "shutdown", "infinity" if supervisor else 5.0)
        elif self.shutdown not in ("brutal_kill", "infinity") and not _seconds(self.shutdown):
            raise ValueError(
                f"{where}: shutdown must be a positive number of seconds, "
                f'"brutal_kill" or "infinity", got {self.shutdown!r}'
            )
        if self.init_timeout == "default":
            object.__setattr__(self, "init_timeout", None if supervisor else 5.0)
        elif self.init_timeout is not None and not _seconds(self.init_timeout):
            raise ValueError(
                f"{where}: init_timeout must be a positive number of seconds or None, "
                f"got {self.init_timeout!r}"
            )


def _seconds(value: object) -> bool:
    return type(value) in (int, float) and value > 0 and not math.isinf(value)  # type: ignore[operator, arg-type]
