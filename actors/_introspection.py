"""Introspection, the equivalents of Erlang's `:sys` and `Process.info`.

- `info(ref)` is a snapshot taken at once, without involving the actor (``Process.info``).
- `get_state`, `replace_state`, `suspend` and `resume` go through the actor's mailbox as system
  messages, like `:sys`: they run between two callbacks, so they never see a half-updated state,
  and they work only while the actor is responsive. A suspended actor handles nothing but
  system messages until it is resumed.
- `describe(ref)` and `statistics(ref)` read what the actor says of itself (`Actor.describe`,
  `Actor.statistics`), at once and without involving its mailbox; every reader (the console,
  the dashboard) goes through them.
- `trace(ref)` logs every message in and every reply out through structlog
  (``actor.trace.in`` / ``actor.trace.out``), like ``:sys.trace``.

State is the actor's attributes (its ``__dict__``); runtime fields are not part of it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, overload

from actors._actor import Actor
from actors._logging import get_logger
from actors._reasons import ActorExited, ActorTimeout
from actors._ref import DEFAULT_CALL_TIMEOUT, SYSTEM, ActorRef, check_timeout

__all__ = [
    "DESCRIPTION_LIMIT",
    "ActorInfo",
    "describe",
    "get_state",
    "info",
    "replace_state",
    "resume",
    "statistics",
    "suspend",
    "trace",
]

log = get_logger(__name__)

DESCRIPTION_LIMIT = 200
"""The longest description `describe` returns (a longer one is cut, ending with "…")."""

T = TypeVar("T")

Status = Literal["running", "waiting", "suspended", "exiting", "exited"]


@dataclass(frozen=True, slots=True)
class ActorInfo:
    """What `info` reports about one actor."""

    ref: ActorRef
    name: str | None
    actor_class: str
    status: Status
    mailbox_length: int
    messages_handled: int
    links: tuple[ActorRef, ...]
    monitors: tuple[ActorRef, ...]
    monitored_by: tuple[ActorRef, ...]
    parent: ActorRef | None
    trap_exits: bool
    tracing: bool
    exit_reason: object


def _status(actor: Actor) -> Status:
    if actor._exit_reason is not None:
        return "exited"
    if actor._exiting:
        return "exiting"
    if actor._suspended:
        return "suspended"
    if actor._inflight is not None or (actor._busy and actor._mailbox):
        return "running"
    return "waiting"


def info(ref: ActorRef) -> ActorInfo:
    """A snapshot of the actor's runtime facts (works on exited actors too)."""
    actor = ref._actor
    return ActorInfo(
        ref=ref,
        name=actor._name,
        actor_class=type(actor).__qualname__,
        status=_status(actor),
        mailbox_length=len(actor._mailbox or ()),
        messages_handled=actor._handled,
        links=tuple(actor._links or ()),
        monitors=tuple(m.target for m in actor._monitors or ()),
        monitored_by=tuple(w._ref for w in (actor._watchers or {}).values()),
        parent=actor._parent._ref if actor._parent is not None else None,
        trap_exits=actor.trap_exits,
        tracing=bool(actor._tracing),
        exit_reason=actor._exit_reason,
    )


def describe(ref: ActorRef, limit: int = DESCRIPTION_LIMIT) -> str | None:
    """The first line of the actor's `Actor.describe`, at most `limit` characters, or None
    when it has nothing to say. A describe() that raises is shown as
    ``<describe() failed: ...>``: an observer never fails because of what it observes."""
    try:
        text = ref._actor.describe()
    except Exception as exc:
        text = f"<describe() failed: {exc!r}>"
    if text is None:
        return None
    stripped = str(text).strip()
    line = stripped.splitlines()[0] if stripped else ""
    if len(line) > limit:
        line = line[: limit - 1] + "…"
    return line or None


@overload
def statistics(ref: ActorRef) -> object | None: ...


@overload
def statistics(ref: ActorRef, kind: type[T]) -> T | None: ...


def statistics(ref: ActorRef, kind: type[Any] | None = None) -> Any:
    """The actor's `Actor.statistics` snapshot; with `kind`, only a snapshot of that type
    (None otherwise: another kind of actor). None when it keeps none or when reading them
    raised (the error is logged)."""
    try:
        snapshot = ref._actor.statistics()
    except Exception:
        log.exception("actor.statistics_failed", actor=repr(ref))
        return None
    if kind is not None and not isinstance(snapshot, kind):
        return None
    return snapshot


async def _system_op(ref: ActorRef, op: Callable[[Actor], Any], timeout: float | None) -> Any:
    actor = ref._actor
    if actor._exit_reason is not None:
        raise ActorExited(ref, actor._exit_reason)
    check_timeout(timeout)
    fut: asyncio.Future[Any] = actor._loop.create_future()
    actor._deliver_system(SYSTEM, op, fut)
    try:
        async with asyncio.timeout(timeout):
            return await fut
    except TimeoutError:
        raise ActorTimeout(f"{ref!r} did not answer a system message within {timeout}s") from None


async def get_state(ref: ActorRef, timeout: float | None = DEFAULT_CALL_TIMEOUT) -> dict[str, Any]:
    """A shallow copy of the actor's state, passed through its `format_status`."""
    state: dict[str, Any] = await _system_op(ref, lambda actor: actor._status_state(), timeout)
    return state


async def replace_state(
    ref: ActorRef,
    update: Callable[[dict[str, Any]], dict[str, Any]],
    timeout: float | None = DEFAULT_CALL_TIMEOUT,
) -> dict[str, Any]:
    """Replace the state with ``update(old_state)`` and return the new state.

    If `update` raises, the state is left as it was and the error is raised here.
    """

    def op(actor: Actor) -> dict[str, Any]:
        new = update(dict(vars(actor)))
        if not isinstance(new, dict):
            raise TypeError(f"replace_state's function must return a dict, got {new!r}")
        vars(actor).clear()
        vars(actor).update(new)
        return dict(new)

    state: dict[str, Any] = await _system_op(ref, op, timeout)
    return state


async def suspend(ref: ActorRef, timeout: float | None = DEFAULT_CALL_TIMEOUT) -> None:
    """Stop handling ordinary messages (they stay queued) until `resume`."""

    def op(actor: Actor) -> None:
        actor._suspended = True
        actor._attend()

    await _system_op(ref, op, timeout)


async def resume(ref: ActorRef, timeout: float | None = DEFAULT_CALL_TIMEOUT) -> None:
    """Handle ordinary messages again, starting with those queued while suspended."""

    def op(actor: Actor) -> None:
        actor._suspended = False
        actor._attend()

    await _system_op(ref, op, timeout)


def trace(ref: ActorRef, enabled: bool = True, sink: Callable[[str], object] | None = None) -> None:
    """Switch tracing of every message in and reply out for this actor: logged
    (``actor.trace.in`` / ``actor.trace.out``), or with `sink`, each as one line passed to it
    (the console passes its own output, as Erlang's ``dbg`` prints in the shell that asked).
    A sink that raises ends the tracing."""
    ref._actor._tracing = (sink or True) if enabled else False
    ref._actor._attend()
