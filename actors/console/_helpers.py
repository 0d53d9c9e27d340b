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

import collections
import dataclasses
import pydoc
import sys
import types
from collections.abc import Callable, Mapping
from typing import Any

from actors._actor import _KIND_NAMES, Actor, _short
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
    "mailbox",
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

    def __init__(
        self,
        system: ActorSystem,
        extras: Mapping[str, Any] | None = None,
        output: Callable[[str], None] | None = None,
    ) -> None:
        self.system = system
        self.extras = dict(extras or {})
        """The application's own names in the session (`ConsoleServer`'s `namespace`): `help()`
        lists the callables among them with the first line of their documentation."""
        self.output = output
        """Where this session's asynchronous output goes (what `trace` prints)."""
        self._traced: dict[ActorRef, Callable[[str], object]] = {}

    def close(self) -> None:
        """The session ends: stop the traces it started (they print to it)."""
        for ref, sink in self._traced.items():
            if ref._actor._tracing is sink:
                _trace(ref, False)
        self._traced.clear()

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

    def ps(self, messages: bool = False, memory: bool = False) -> None:
        """Print a table of the live actors: id, name, class, status, mailbox, handled.

        NAME is the registered name, else the keys the actor holds in registries (a
        conversation actor shows its conversation, ``terminal:default:default``).
        ``messages=True`` lists each non-empty mailbox's first messages under its row;
        ``memory=True`` adds MEMORY, the approximate size of each actor's own state
        (its attributes, followed through containers; shared objects counted once per actor).
        """
        header = ["ID", "NAME", "CLASS", "STATUS", "MAILBOX", "HANDLED"]
        if memory:
            header.append("MEMORY")
        rows: list[tuple[str, ...]] = [tuple(header)]
        queued: dict[int, list[str]] = {}
        for ref in sorted(self.system.processes(), key=lambda r: r.id):
            facts = _info(ref)
            row = [
                str(ref.id),
                facts.name or _registered_as(ref) or "-",
                facts.actor_class,
                facts.status,
                str(facts.mailbox_length),
                str(facts.messages_handled),
            ]
            if memory:
                row.append(_human(_state_size(ref._actor)))
            rows.append(tuple(row))
            if messages and facts.mailbox_length:
                queued[len(rows) - 1] = _queued(ref, 5)
        widths = [max(len(row[col]) for row in rows) for col in range(len(rows[0]))]
        right = {0, 4, 5, 6}
        for index, shown in enumerate(rows):
            cells = [
                cell.rjust(width) if col in right else cell.ljust(width)
                for col, (cell, width) in enumerate(zip(shown, widths, strict=True))
            ]
            print("  ".join(cells).rstrip())
            for line in queued.get(index, ()):
                print(f"      · {line}")
        print(f"{len(rows) - 1} actors")

    def mailbox(self, x: ActorRef | str | int, limit: int = 20) -> None:
        """Print the messages waiting in the actor's mailbox (oldest first, up to `limit`)."""
        ref = self.resolve(x)
        lines = _queued(ref, limit)
        for line in lines:
            print(line)
        print(f"{_info(ref).mailbox_length} waiting")

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
        """Print every message in and reply out here, in this console, as they happen."""
        ref = self.resolve(x)
        output = self.output
        if not on or output is None:
            _trace(ref, on)
            self._traced.pop(ref, None)
            where = "logged by the system" if on else "off"
            print(f"tracing {ref!r}: {where}")
            return

        def sink(line: str) -> None:
            output(line + "\n")

        self._traced[ref] = sink
        _trace(ref, True, sink=sink)
        print(f"tracing {ref!r}: on, printed here (trace({ref.id}, False) stops it)")

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
    "ps": "(messages=False, memory=False)",
    "mailbox": "(x, limit=20)",
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


def _key_label(key: object) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, tuple):
        return ":".join(map(str, key))
    if dataclasses.is_dataclass(key) and not isinstance(key, type):
        return ":".join(str(getattr(key, f.name)) for f in dataclasses.fields(key))
    return repr(key)


def _registered_as(ref: ActorRef) -> str | None:
    """The keys the actor holds in registries, shortest first (a name for `ps`)."""
    keys = [_key_label(key) for _, key in ref._actor._registrations or ()]
    if not keys:
        return None
    keys.sort(key=lambda k: (not any(c == ":" for c in k), len(k)))
    shown = " ".join(keys[:2]) + (" …" if len(keys) > 2 else "")
    return shown if len(shown) <= 60 else shown[:59] + "…"


def _queued(ref: ActorRef, limit: int) -> list[str]:
    mailbox = list(ref._actor._mailbox or ())
    return [
        f"{_KIND_NAMES.get(kind, kind)} {_short(payload, 160)}"
        for kind, payload, _ in mailbox[:limit]
    ] + ([f"… {len(mailbox) - limit} more"] if len(mailbox) > limit else [])


_SKIP = (type, types.ModuleType, types.FunctionType, types.MethodType, ActorRef, ActorSystem)


def _state_size(actor: Actor, budget: int = 100_000) -> int:
    """Approximate bytes of the actor's own state: its attributes (not the runtime's slots),
    followed through containers and objects, each object counted once, at most `budget`
    objects (an estimate, like ``:erlang.process_info(pid, :memory)``, not an exact count)."""
    seen: set[int] = set()
    stack: list[object] = [getattr(actor, "__dict__", {})]
    total = 0
    while stack and len(seen) < budget:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, (*_SKIP, Actor)):
            continue
        seen.add(id(obj))
        try:
            total += sys.getsizeof(obj)
        except TypeError:
            continue
        if isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, list | tuple | set | frozenset | collections.deque):
            stack.extend(obj)
        elif isinstance(obj, str | bytes | bytearray | int | float):
            continue
        else:
            attributes = getattr(obj, "__dict__", None)
            if isinstance(attributes, dict):
                stack.append(attributes)
            for slot in getattr(type(obj), "__slots__", ()):
                if isinstance(slot, str) and hasattr(obj, slot):
                    stack.append(getattr(obj, slot))
    return total


def _human(size: int) -> str:
    for unit in ("B", "KiB", "MiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024  # type: ignore[assignment]
    return f"{size:.1f} GiB"


def _label(ref: ActorRef, parent: ActorRef | None) -> str:
    facts = _info(ref)
    name = f" {facts.name!r}" if facts.name else ""
    linked = " linked" if parent is not None and parent in facts.links else ""
    label = f"{facts.actor_class}#{ref.id}{name} [{facts.status}{linked}]"
    description = _describe(ref)
    return f"{label} — {description}" if description else label
