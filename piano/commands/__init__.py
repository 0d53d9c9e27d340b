"""Chat commands: each declared once, offered by every surface.

A chat command is what a user types as ``/name argument`` in any chat — `piano chat` in the
terminal, Telegram, the web chat — to ask the *daemon*, not the agent, for something: who am I
to Piano (``/whoami``), and each feature's own (schedules, models and effort, usage, projects,
the Codex account). Each is one `Command` entry in `COMMANDS`: its name, a usage line, a summary
for the help lists, whether only the daemon's owner may run it, and the function that runs it,
named as ``"module:function"`` and imported on first use, so this package imports no feature and
every feature may import it. A new command is one entry here plus its function::

    async def whoami(invocation: Invocation, argument: str) -> str: ...

A surface hands what the user typed to `Commands.run` together with who typed it and in which
conversation (an `Invocation`). It answers None when the text is not a registered command — the
surface then does what it did before: a message for the agent, or one of the surface's own local
commands (the terminal's ``/quit``, Telegram's ``/new``) — and otherwise the reply to show in that
chat. Every surface also lists `COMMANDS` in its help.

Guarantees:

- **One behaviour everywhere**: one parse (``/name`` then the rest, stripped), one function, the
  same reply text on every surface (plain text; surfaces may render it).
- **Owner-only commands are refused to others** before their function runs
  (``/restartcodex``): the terminal's owner is the daemon's user (its socket is owner-only),
  Telegram's are the ``admin`` role, the web's are holders of a full web token.
- **Bad input is one sentence, never a crash**: a function raises `CommandError` with a sentence
  the user can act on; any other exception is logged as ``command.failed`` (the command, the
  exception's type and where it was raised — never the argument nor the exception's message, which
  may quote it: a prompt, a login code) and the user reads one line. A failing
  command never stops the surface that ran it.
"""

from __future__ import annotations

import importlib
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, cast

import structlog

if TYPE_CHECKING:
    from actors import ActorSystem
    from piano.agents import ThreadKey
    from piano.config import Config

__all__ = [
    "COMMANDS",
    "NAMES",
    "Command",
    "CommandError",
    "Commands",
    "Invocation",
    "help_lines",
    "parse",
]

log = structlog.get_logger(__name__)


class CommandError(Exception):
    """Bad input to a command: its message is the one sentence the user reads."""


@dataclass(frozen=True, slots=True)
class Invocation:
    """Who typed a command, where, and what the daemon offers to run it."""

    system: ActorSystem
    config: Config
    key: ThreadKey
    """The conversation the command was typed in."""
    thread_id: str | None
    """Its Piano thread, when the surface knows it."""
    user: str | None
    """Who typed it, as the surface names users (a Telegram user id, the web token's name)."""
    owner: bool
    """Whether they are the daemon's owner (see the module documentation)."""


Run = Callable[[Invocation, str], Awaitable[str]]


@dataclass(frozen=True, slots=True)
class Command:
    """One chat command (see the module documentation)."""

    name: str
    """Without the slash, lower case."""
    usage: str
    summary: str
    run: str
    """The function, as ``"module:function"``; imported on first use."""
    owner_only: bool = False

    def function(self) -> Run:
        module, _, attribute = self.run.partition(":")
        return cast(Run, getattr(importlib.import_module(module), attribute))


COMMANDS: Final[tuple[Command, ...]] = (
    Command(
        "whoami",
        "/whoami",
        "who you are to Piano: user, role, surface, conversation and thread",
        "piano.commands._whoami:whoami",
    ),
    Command(
        "model",
        "/model [NAME|default]",
        "list the models the agent's provider offers, or switch this conversation's model",
        "piano.models:model",
    ),
    Command(
        "effort",
        "/effort [LEVEL|default]",
        "show or set this conversation's reasoning effort (e.g. low, medium, high)",
        "piano.models:effort",
    ),
    Command(
        "usage",
        "/usage",
        "your turns, tokens and cost today and in all, and your daily limits",
        "piano.usage:usage",
    ),
    Command(
        "project",
        "/project [NAME|none]",
        "list the projects, or work in one (none: the agent's own workspace)",
        "piano.projects:project",
    ),
    Command(
        "branch",
        "/branch NAME",
        "work in a git worktree of your own, on branch NAME of the project",
        "piano.projects:branch",
    ),
    Command(
        "codexlogin",
        "/codexlogin [ADDRESS]",
        "sign Codex in with ChatGPT: a link, then the address it led to",
        "piano.account:codexlogin",
        owner_only=True,
    ),
    Command(
        "codexaccount",
        "/codexaccount",
        "Codex's account and its rate limits",
        "piano.account:codexaccount",
        owner_only=True,
    ),
    Command(
        "codexlogout",
        "/codexlogout",
        "sign Codex out of its ChatGPT account",
        "piano.account:codexlogout",
        owner_only=True,
    ),
    Command(
        "restartcodex",
        "/restartcodex",
        "restart the codex process (running turns end as interrupted)",
        "piano.account:restartcodex",
        owner_only=True,
    ),
    Command(
        "schedule",
        "/schedule every 30m PROMPT | /schedule cron 0 8 * * 1-5 PROMPT",
        "run PROMPT on a timetable; its answers come to this chat",
        "piano.schedules._commands:schedule",
    ),
    Command(
        "schedules",
        "/schedules",
        "the schedules of this chat: id, timing, next run",
        "piano.schedules._commands:schedules",
    ),
    Command(
        "unschedule",
        "/unschedule ID",
        "cancel a schedule",
        "piano.schedules._commands:unschedule",
    ),
)
"""Every chat command, in the order the help lists show them."""

NAMES: Final[frozenset[str]] = frozenset(command.name for command in COMMANDS)
_BY_NAME: Final[dict[str, Command]] = {command.name: command for command in COMMANDS}


def parse(text: str) -> tuple[Command, str] | None:
    """The command ``text`` invokes and its argument, or None if it invokes none.

    ``/Name@bot argument`` (Telegram's form in groups) is the command ``name``.
    """
    stripped = text.strip()
    if not stripped.startswith("/"):
        return None
    head, _, argument = stripped.partition(" ")
    name = head[1:].split("@", 1)[0].lower()
    command = _BY_NAME.get(name)
    return None if command is None else (command, argument.strip())


def help_lines() -> list[str]:
    """One line per command: its usage and summary."""
    return [f"{command.usage} — {command.summary}" for command in COMMANDS]


class Commands:
    """Runs chat commands for the surfaces of one daemon (see the module documentation)."""

    def __init__(self, config: Config) -> None:
        self.config = config

    async def run(
        self,
        text: str,
        *,
        system: ActorSystem,
        key: ThreadKey,
        thread_id: str | None,
        user: str | None,
        owner: bool,
    ) -> str | None:
        """The reply to ``text``, or None when it is not a registered command."""
        parsed = parse(text)
        if parsed is None:
            return None
        command, argument = parsed
        if command.owner_only and not owner:
            return f"/{command.name} is for the daemon's owner only."
        invocation = Invocation(system, self.config, key, thread_id, user, owner)
        try:
            return await command.function()(invocation, argument)
        except CommandError as exc:
            return str(exc)
        except Exception as exc:
            # Not the message: it may quote the argument. Where it failed is enough to start.
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            log.error(
                "command.failed",
                command=command.name,
                error=exc.__class__.__name__,
                at=f"{frame.filename}:{frame.lineno}",
            )
            name = exc.__class__.__name__
            return f"/{command.name} failed ({name}); the daemon's log has the details."
