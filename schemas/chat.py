"""The terminal chat protocol between `piano chat` and the daemon (owner-only Unix socket).

Newline-delimited JSON, each frame tagged on ``"type"``. The client opens with `Hello` (which
conversation, which agent) and gets `Welcome` with the thread id; then it sends `Say`,
`Decide`, `Interrupt` and `Command` (a chat command for the daemon, `piano.commands`), and
receives that thread's events as `EventFrame`s, in order, plus `Accepted` for each message,
`CommandReply` for each command and `ChatError` for anything refused; every connection also
gets an `AlertFrame` when an incident is told to the owner (`piano.alerts`).
"""

from __future__ import annotations

from typing import TypeAlias

import msgspec

from schemas.alerts import Alert
from schemas.events import Decision, Outcome, ThreadEvent

__all__ = [
    "Accepted",
    "AlertFrame",
    "ChatError",
    "ClientFrame",
    "Command",
    "CommandReply",
    "Decide",
    "EventFrame",
    "Hello",
    "Interrupt",
    "Say",
    "ServerFrame",
    "Status",
    "Welcome",
]


class Hello(msgspec.Struct, frozen=True, tag="hello"):
    conversation: str = "default"
    agent: str | None = None
    user: str | None = None
    thread: str | None = None
    """Attach to this existing thread, whichever surface opened it (then `conversation` and
    `agent` are ignored)."""


class Say(msgspec.Struct, frozen=True, tag="say"):
    text: str


class Decide(msgspec.Struct, frozen=True, tag="decide"):
    approval_id: str
    decision: Decision


class Interrupt(msgspec.Struct, frozen=True, tag="interrupt"):
    pass


class Command(msgspec.Struct, frozen=True, tag="command"):
    """A chat command as typed (``/whoami``), run by the daemon (`piano.commands`)."""

    text: str


class Status(msgspec.Struct, frozen=True, tag="status"):
    """Ask for the conversation's state: answered by a `CommandReply` (thread, agent, model and
    effort, whether a turn runs, how to continue it elsewhere)."""


class Welcome(msgspec.Struct, frozen=True, tag="welcome"):
    thread_id: str
    agent: str
    resume: list[str] = []
    """How to continue this thread elsewhere (`piano.threads.resume_lines`)."""


class Accepted(msgspec.Struct, frozen=True, tag="accepted"):
    interaction_id: str
    outcome: Outcome


class EventFrame(msgspec.Struct, frozen=True, tag="event"):
    event: ThreadEvent


class CommandReply(msgspec.Struct, frozen=True, tag="reply"):
    """What a `Command` answered, to show as it is."""

    text: str


class ChatError(msgspec.Struct, frozen=True, tag="error"):
    message: str


class AlertFrame(msgspec.Struct, frozen=True, tag="alert"):
    """An incident told to the owner (`schemas.alerts.Alert`), sent to every connection."""

    alert: Alert


ClientFrame: TypeAlias = Hello | Say | Decide | Interrupt | Command | Status
ServerFrame: TypeAlias = Welcome | Accepted | EventFrame | CommandReply | ChatError | AlertFrame
