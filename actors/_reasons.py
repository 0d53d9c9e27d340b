"""Exit reasons, the messages the runtime delivers to `handle_info`, and the runtime's errors.

Exit reasons are OTP's: any object can be a reason, and a few have a fixed meaning.

| reason               | meaning                              | linked actors | transient restart |
|----------------------|--------------------------------------|---------------|-------------------|
| ``"normal"``         | the actor finished its work          | not affected  | no                |
| ``"shutdown"``       | asked to stop by its supervisor      | exit likewise | no                |
| ``Shutdown(detail)`` | ``"shutdown"`` with an explanation   | exit likewise | no                |
| ``"killed"``         | it was sent the untrappable "kill"   | exit likewise | yes               |
| an exception         | it crashed                           | exit likewise | yes               |

Sending the exit signal ``"kill"`` ends an actor even if it traps exits; it then exits with reason
``"killed"``, which (unlike ``"kill"``) linked actors can trap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from actors._ref import ActorRef, MonitorRef

__all__ = [
    "KILL",
    "KILLED",
    "NOPROC",
    "NORMAL",
    "SHUTDOWN",
    "ActorError",
    "ActorExited",
    "ActorTimeout",
    "Down",
    "Exit",
    "Ignore",
    "MailboxFull",
    "NameTaken",
    "Shutdown",
    "StartFailed",
    "UnknownMessage",
    "is_normal_exit",
]

NORMAL: Final = "normal"
SHUTDOWN: Final = "shutdown"
KILL: Final = "kill"
KILLED: Final = "killed"
NOPROC: Final = "noproc"


@dataclass(frozen=True, slots=True)
class Shutdown:
    """The exit reason ``{:shutdown, detail}``: a clean stop that carries an explanation."""

    detail: object


def is_normal_exit(reason: object) -> bool:
    """True for the reasons a transient child is not restarted for and no crash is logged for."""
    return (type(reason) is str and reason in (NORMAL, SHUTDOWN)) or type(reason) is Shutdown


@dataclass(frozen=True, slots=True)
class Down:
    """Delivered to `handle_info` when a monitored actor exits (``{:DOWN, ref, ...}``)."""

    monitor: MonitorRef
    actor: ActorRef
    reason: object


@dataclass(frozen=True, slots=True)
class Exit:
    """An exit signal from a linked actor, delivered to `handle_info` while trapping exits.

    `sender` is None when the signal came from outside any actor.
    """

    sender: ActorRef | None
    reason: object


class ActorError(Exception):
    """Base class of the runtime's errors."""


class ActorExited(ActorError):
    """The actor was not alive, or exited before it replied. `reason` is its exit reason."""

    def __init__(self, actor: ActorRef, reason: object) -> None:
        super().__init__(actor, reason)
        self.actor = actor
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.actor!r} exited with reason {self.reason!r}"


class ActorTimeout(ActorError, TimeoutError):
    """A call or a stop did not complete in time. A late reply is dropped, never delivered."""


class Ignore(Exception):
    """Raise from `init` to decline to start without an error (OTP's ``:ignore``).

    `spawn` re-raises it to the spawner; a supervisor keeps the child spec with no actor running.
    """


class MailboxFull(ActorError):
    """The actor's bounded mailbox is full; the message was refused and not enqueued."""


class NameTaken(ActorError):
    """The name is already registered to a live actor."""


class StartFailed(ActorError):
    """An actor's `init` raised or timed out; the actor never ran. The cause is `reason`."""

    def __init__(self, actor_class: str, reason: BaseException) -> None:
        super().__init__(actor_class, reason)
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.args[0]} failed to start: {self.reason!r}"


class UnknownMessage(ActorError):
    """Raised in the caller when the actor has no clause for a call (the actor keeps running)."""
