"""The helpers every console session starts with (``help()`` lists them).

Wherever a helper takes an actor `x`, it accepts an `ActorRef`, a registered name or an integer
actor id. Helpers that wait for the actor are coroutines; the console awaits a coroutine that an
expression statement evaluates to, so ``call("counter", "get")`` prints the reply (write
``n = await call("counter", "get")`` inside assignments and functions).

`tree()` draws the actors by parent, each with the one line its `Actor.describe` gives (read
through `actors.describe`); ``stats(x)`` prints its `Actor.statistics` snapshot (through
`actors.statistics`).
"""

from __future__ import annotations

import pydoc
from collections.abc import Callable, Mapping
from typing import Any

from actors._introspection import ActorInfo
from actors._introspection import describe as _describe
from actors._introspection import get_state as _get_state
from actors._introspection import info as _info
from actors._introspection import replace_state as _replace_state
from actors._introspection import resume as _resume
from actors._introspection import statistics as _statistics
from actors._introspection import suspend as _suspend
from actors._introspection import trace as _trace
from actors._reasons import KILL, NORMAL
from actors._ref import DEFAULT_CALL_TIMEOUT, ActorRef
from actors._system import ActorSystem

__all__ = ["HELPER_NAMES", "Helpers"]

HELPER_NAMES = (
    "ps",
    "tree",
    "info",
    "stats",
    "state",
    "replace_state",
    "trace",
    "call",
    "cast",
    "send",
    "stop",
    "kill",
    "suspend",
    "resume",
    "whereis",
    "help",
)


class Helpers:
    """The helper functions of one console session, bound to an actor system."""

    def __init__(self, system: ActorSystem, extras: Mapping[str, Any] | None = None) -> None:
        self.system = system
        self.extras = dict(extras or {})
        """The application's own names in the session (`ConsoleServer`'s `namespace`): `help()`
        lists the callables among them with the first line of their documentation."""

    def namespace(self) -> dict[str, Callable[..., Any]]:
        """The helpers by name, ready to be put in a session namespace."""
        helpers: dict[str, Callable[..., Any]] = {
            name: getattr(self, name) for name in HELPER_NAMES
        }
        return helpers

    def resolve(self, x: ActorRef | str | int) -> ActorRef:
        """The live actor `x` designates: a reference, a registered name or an actor id."""
        if isinstance(x, ActorRef):
            return x
        if isinstance(x, str):
            ref = self.system.whereis(x)
            if ref is None:
                raise LookupError(f"no actor is registered as {x!r}")
            return ref
        if isinstance(x, int) and not isinstance(x, bool):
            for ref in self.system.processes():
                if ref.id == x:
                    return ref
            raise LookupError(f"no live actor has the id {x}")
        raise TypeError(f"expected an ActorRef, a registered name or an actor id, got {x!r}")

    def ps(self) -> None:
        """Print a table of the live actors: id, name, class, status, mailbox, handled."""
        rows = [("ID", "NAME", "CLASS", "STATUS", "MAILBOX", "HANDLED")]
        for ref in sorted(self.system.processes(), key=lambda r: r.id):
            facts = _info(ref)
            rows.append(
                (
                    str(ref.id),
                    facts.name or "-",
                    facts.actor_class,
                    facts.status,
                    str(facts.mailbox_length),
                    str(facts.messages_handled),
                )
            )
        widths = [max(len(row[col]) for row in rows) for col in range(len(rows[0]))]
        right = {0, 4, 5}
        for row in rows:
            cells = [
                cell.rjust(width) if col in right else cell.ljust(width)
                for col, (cell, width) in enumerate(zip(row, widths, strict=True))
            ]
            print("  ".join(cells).rstrip())
        print(f"{len(rows) - 1} actors")

    def tree(self) -> None:
        """Draw the actors by parent, with each actor's `describe()` if it has one."""
        refs = sorted(self.system.processes(), key=lambda r: r.id)
        alive = set(refs)
        children: dict[ActorRef | None, list[ActorRef]] = {}
        for ref in refs:
            parent = _info(ref).parent
            children.setdefault(parent if parent in alive else None, []).append(ref)
        stats = self.system.statistics()
        print(f"ActorSystem ({stats.alive} alive, {stats.spawned} spawned, {stats.exited} exited)")
        self._draw(children, None, "")

    def _draw(
        self, children: dict[ActorRef | None, list[ActorRef]], parent: ActorRef | None, indent: str
    ) -> None:
        kids = children.get(parent, [])
        for index, ref in enumerate(kids):
            last = index == len(kids) - 1
            print(f"{indent}{'└── ' if last else '├── '}{_label(ref, parent)}")
            self._draw(children, ref, indent + ("    " if last else "│   "))

    def info(self, x: ActorRef | str | int) -> ActorInfo:
        """A snapshot of the actor's runtime facts (`actors.info`)."""
        return _info(self.resolve(x))

    def stats(self, x: ActorRef | str | int) -> object | None:
        """The actor's statistics snapshot, or None if it keeps none (`actors.statistics`)."""
        return _statistics(self.resolve(x))

    async def state(self, x: ActorRef | str | int) -> dict[str, Any]:
        """The actor's state, read between two of its callbacks (`actors.get_state`)."""
        return await _get_state(self.resolve(x))

    async def replace_state(
        self, x: ActorRef | str | int, fn: Callable[[dict[str, Any]], dict[str, Any]]
    ) -> dict[str, Any]:
        """Replace the actor's state with ``fn(old_state)``; returns the new state."""
        return await _replace_state(self.resolve(x), fn)

    def trace(self, x: ActorRef | str | int, on: bool = True) -> None:
        """Log every message in and reply out (``actor.trace.in`` / ``actor.trace.out``)."""
        ref = self.resolve(x)
        _trace(ref, on)
        print(f"tracing {ref!r}: {'on' if on else 'off'} (logged by the system)")

    async def call(
        self, x: ActorRef | str | int, message: Any, timeout: float | None = DEFAULT_CALL_TIMEOUT
    ) -> Any:
        """Call the actor and return its reply."""
        return await self.resolve(x).call(message, timeout)

    def cast(self, x: ActorRef | str | int, message: Any) -> None:
        """Cast `message` to the actor (its ``handle_cast``)."""
        self.resolve(x).cast(message)

    def send(self, x: ActorRef | str | int, message: Any) -> None:
        """Send a plain message to the actor (its ``handle_info``)."""
        self.resolve(x).send(message)

    async def stop(
        self,
        x: ActorRef | str | int,
        reason: object = NORMAL,
        timeout: float | None = DEFAULT_CALL_TIMEOUT,
    ) -> object:
        """Stop the actor after its queued messages, running its ``terminate``; returns reason."""
        ref = self.resolve(x)
        await ref.stop(reason, timeout)
        return _info(ref).exit_reason

    def kill(self, x: ActorRef | str | int) -> object:
        """Kill the actor at once (untrappable exit signal); returns its exit reason."""
        ref = self.resolve(x)
        ref.exit(KILL)
        return _info(ref).exit_reason

    async def suspend(self, x: ActorRef | str | int) -> None:
        """Stop the actor handling messages (they stay queued) until `resume`."""
        await _suspend(self.resolve(x))

    async def resume(self, x: ActorRef | str | int) -> None:
        """Let a suspended actor handle its messages again."""
        await _resume(self.resolve(x))

    def whereis(self, name: str) -> ActorRef | None:
        """The live actor registered as `name`, or None."""
        return self.system.whereis(name)

    def help(self, obj: object = None) -> None:
        """List the helpers; ``help(obj)`` prints the documentation of `obj`."""
        if obj is not None:
            print(pydoc.plain(pydoc.render_doc(obj)))
            return
        print("Console helpers (x = an ActorRef, a registered name or an actor id):")
        for name in HELPER_NAMES:
            doc = (getattr(self, name).__doc__ or "").strip().splitlines()[0]
            print(f"  {name + _SIGNATURES[name]:<34} {doc}")
        extras = {name: value for name, value in self.extras.items() if callable(value)}
        if extras:
            print("From the application:")
            for name, value in sorted(extras.items()):
                doc = (getattr(value, "__doc__", None) or "").strip().splitlines()
                print(f"  {name:<34} {doc[0] if doc else ''}")
        print("Also here: system (the ActorSystem), actors, asyncio, sys.")
        print("Top-level await works; a coroutine statement is awaited for you.")
        print("Ctrl-C interrupts the running statement; Ctrl-D or exit() quits.")


_SIGNATURES = {
    "ps": "()",
    "tree": "()",
    "info": "(x)",
    "stats": "(x)",
    "state": "(x)",
    "replace_state": "(x, fn)",
    "trace": "(x, on=True)",
    "call": "(x, msg, timeout=5)",
    "cast": "(x, msg)",
    "send": "(x, msg)",
    "stop": "(x, reason='normal')",
    "kill": "(x)",
    "suspend": "(x)",
    "resume": "(x)",
    "whereis": "(name)",
    "help": "(obj=None)",
}


def _label(ref: ActorRef, parent: ActorRef | None) -> str:
    facts = _info(ref)
    name = f" {facts.name!r}" if facts.name else ""
    linked = " linked" if parent is not None and parent in facts.links else ""
    label = f"{facts.actor_class}#{ref.id}{name} [{facts.status}{linked}]"
    description = _describe(ref)
    return f"{label} — {description}" if description else label
