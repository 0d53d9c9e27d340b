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
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from actors import Backoff

if TYPE_CHECKING:
    from actors import Actor

__all__ = ["Backoff", "ChildSpec", "ChildSpecError", "Restart", "ShutdownPolicy"]

Restart = Literal["permanent", "transient", "temporary"]
ShutdownPolicy = float | Literal["brutal_kill", "infinity"]


class ChildSpecError(ValueError):
    """A child spec (or a supervisor's list of them) breaks a rule: OTP's ``check_childspec``
    errors, as data.

    `field` names the offending field; `rule` is OTP's error term where OTP has one
    (``invalid_restart_type``, ``invalid_shutdown``, ``invalid_child_type``, ``invalid_mfa``
    for `start`, ``invalid_significant``, ``bad_combination``, ``duplicate_child_name``) and
    Piano's own otherwise (``invalid_id``, ``invalid_init_timeout``); `value` is what was given.
    A ``bad_combination`` names the first field of the pair in `field` and the whole pair in
    the message. It is a `ValueError`, so code written for the plain error still catches it.
    """

    def __init__(self, child_id: object, field: str, rule: str, value: object, why: str) -> None:
        super().__init__(f"child spec {child_id!r}: {why} ({rule})")
        self.child_id = child_id
        self.field = field
        self.rule = rule
        self.value = value


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
        def refuse(field: str, rule: str, why: str) -> ChildSpecError:
            return ChildSpecError(self.id, field, rule, getattr(self, field), why)

        try:
            hash(self.id)
        except TypeError:
            raise refuse("id", "invalid_id", "id must be hashable") from None
        if not callable(self.start):
            raise refuse("start", "invalid_mfa", "start must be a callable returning an Actor")
        if self.restart not in ("permanent", "transient", "temporary"):
            raise refuse(
                "restart",
                "invalid_restart_type",
                f"restart must be permanent, transient or temporary, got {self.restart!r}",
            )
        if self.type not in ("worker", "supervisor"):
            raise refuse(
                "type",
                "invalid_child_type",
                f"type must be worker or supervisor, got {self.type!r}",
            )
        if not isinstance(self.significant, bool):
            raise refuse(
                "significant",
                "invalid_significant",
                f"significant must be True or False, got {self.significant!r}",
            )
        if self.significant and self.restart == "permanent":
            raise refuse(
                "significant",
                "bad_combination",
                "a significant child must be transient or temporary, not permanent",
            )
        supervisor = self.type == "supervisor"
        if self.shutdown == "default":
            object.__setattr__(self, "shutdown", "infinity" if supervisor else 5.0)
        elif self.shutdown not in ("brutal_kill", "infinity") and not _seconds(self.shutdown):
            raise refuse(
                "shutdown",
                "invalid_shutdown",
                "shutdown must be a positive number of seconds, "
                f'"brutal_kill" or "infinity", got {self.shutdown!r}',
            )
        if self.init_timeout == "default":
            object.__setattr__(self, "init_timeout", None if supervisor else 5.0)
        elif self.init_timeout is not None and not _seconds(self.init_timeout):
            raise refuse(
                "init_timeout",
                "invalid_init_timeout",
                "init_timeout must be a positive number of seconds or None, "
                f"got {self.init_timeout!r}",
            )


def _seconds(value: object) -> bool:
    return type(value) in (int, float) and value > 0 and not math.isinf(value)  # type: ignore[operator, arg-type]
