"""Operations on a running supervisor, as in Elixir's `Supervisor` module.

Each is a call to the supervisor, so it is serialised with the supervisor's handling of exits
and restarts. OTP's ``{error, Reason}`` answers come back as exceptions carrying the reason
(`supervisors.SupervisorError` and its subclasses): `AlreadyStarted` (with the running child's
`ref`), `AlreadyPresent`, `ChildRunning`, `ChildRestarting`, `ChildNotFound`; `ChildStartError`
when a start fails; `ChildSpecError` for a spec that breaks a rule. See `docs/supervision.md`
for which operation answers what.
"""

from __future__ import annotations

from actors import ActorRef
from supervisors._children import ChildInfo, Counts
from supervisors._spec import ChildSpec

__all__ = [
    "count_children",
    "delete_child",
    "restart_child",
    "start_child",
    "terminate_child",
    "which_children",
]

TIMEOUT = 30.0
"""Supervisor operations may wait for children to start or stop, so they get a long timeout."""


async def start_child(supervisor: ActorRef, spec: ChildSpec) -> ActorRef | None:
    """Add and start a child. Returns its reference, or None if its init raised `Ignore`.

    Raises `AlreadyStarted` (``.ref`` is the running child), `AlreadyPresent` or
    `ChildRestarting` if a child with this id exists, `ChildStartError` if the start fails.
    """
    result: ActorRef | None = await supervisor.call(("start_child", spec), timeout=TIMEOUT)
    return result


async def terminate_child(supervisor: ActorRef, child: object) -> None:
    """Stop a child by id (by reference for a DynamicSupervisor). Its spec stays unless it is
    temporary, so `restart_child` can start it again."""
    await supervisor.call(("terminate_child", child), timeout=TIMEOUT)


async def restart_child(supervisor: ActorRef, child_id: object) -> ActorRef | None:
    """Start again a child that was terminated with `terminate_child`."""
    result: ActorRef | None = await supervisor.call(("restart_child", child_id), timeout=TIMEOUT)
    return result


async def delete_child(supervisor: ActorRef, child_id: object) -> None:
    """Remove the spec of a child that is not running."""
    await supervisor.call(("delete_child", child_id), timeout=TIMEOUT)


async def which_children(supervisor: ActorRef) -> list[ChildInfo]:
    """Every child, newest first (as OTP lists them)."""
    result: list[ChildInfo] = await supervisor.call("which_children", timeout=TIMEOUT)
    return result


async def count_children(supervisor: ActorRef) -> Counts:
    result: Counts = await supervisor.call("count_children", timeout=TIMEOUT)
    return result
