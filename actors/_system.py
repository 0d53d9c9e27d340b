"""The actor system: spawning, the name registry, the process table, and orderly shutdown.

```python
async with ActorSystem() as system:
    ref = await system.spawn(Counter(), name="counter")
    assert system.whereis("counter") == ref
# leaving the block stops every actor: no task, timer or thread is left behind
```

A system lives on one event loop; every operation must run on that loop's thread (from other
threads use `run_in_thread`). Several systems may share a loop.

Shutdown stops the actors spawned directly on the system (the roots) newest first, as a supervisor
stops its children: one that traps exits runs `terminate("shutdown")`, one that does not exits at
once. Actors still alive after that (spawned without a link) get the same signal, and whatever
remains when `timeout` runs out is killed.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass
from types import CoroutineType
from typing import Any

from actors._actor import Actor, _current
from actors._reasons import KILL, NORMAL, SHUTDOWN, ActorExited, Ignore, NameTaken, StartFailed
from actors._ref import STOP, ActorRef, Deadlines, check_timeout

__all__ = ["LINGER", "ActorSystem", "SystemStatistics"]

LINGER = 0.5
"""Seconds an idle actor's task may wait for the next message before it is let go."""


@dataclass(frozen=True, slots=True)
class SystemStatistics:
    alive: int
    spawned: int
    exited: int
    names: int


class ActorSystem:
    """A set of actors on one event loop. Use it with ``async with``."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._actors: dict[int, Actor] = {}
        self._names: dict[str, Actor] = {}
        self._ids = itertools.count(1)
        self._spawned = 0
        self._exited = 0
        self._closing = False
        self._deadlines: dict[float, Deadlines] = {}
        self._exit_deadlines: dict[float, Deadlines] = {}
        self._lingerers: list[Actor] = []
        self._sweep: asyncio.TimerHandle | None = None
        self._background: set[asyncio.Future[Any]] = set()
        """Work that outlives an actor's exit (a thread actor's thread finishing its last call);
        shutdown waits for it until its deadline. Each future removes itself when done."""

    async def __aenter__(self) -> ActorSystem:
        self._loop = asyncio.get_running_loop()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.shutdown()

    async def spawn(
        self, actor: Actor, *, name: str | None = None, init_timeout: float | None = None
    ) -> ActorRef:
        """Start `actor` with no parent and return its reference once its `init` has completed.

        Raises `StartFailed` if `init` raises or exceeds `init_timeout` seconds, `NameTaken` if
        `name` is registered to a live actor, `Ignore` if `init` raised it.
        """
        return await self._start(actor, name, None, None, init_timeout)

    async def _start(
        self,
        actor: Actor,
        name: str | None,
        parent: Actor | None,
        link_to: Actor | None,
        init_timeout: float | None,
    ) -> ActorRef:
        if self._loop is None:
            raise RuntimeError("the actor system is not running: use `async with ActorSystem()`")
        if self._closing:
            raise RuntimeError("the actor system is shutting down")
        if not isinstance(actor, Actor):
            raise TypeError(f"spawn takes an Actor instance, got {actor!r}")
        check_timeout(init_timeout)
        if name is not None:
            self._check_name(name)
        actor._bind(self, next(self._ids), name, parent)
        ref = actor._ref
        if name is not None:
            self._names[name] = actor
        self._actors[ref.id] = actor
        self._spawned += 1
        if link_to is not None:
            link_to.link(ref)
        if type(actor).init is not Actor.init:
            token = _current.set(actor)
            try:
                result = actor.init()
                if type(result) is CoroutineType:
                    if init_timeout is None:
                        await result
                    else:
                        async with asyncio.timeout(init_timeout):
                            await result
            except Ignore:
                self._abort(actor, link_to, NORMAL)
                raise
            except asyncio.CancelledError:
                self._abort(actor, link_to, SHUTDOWN)
                raise
            except Exception as exc:
                self._abort(actor, link_to, exc)
                raise StartFailed(type(actor).__name__, exc) from exc
            finally:
                _current.reset(token)
            if actor._exit_reason is not None:
                reason = ActorExited(ref, actor._exit_reason)
                raise StartFailed(type(actor).__name__, reason)
        actor._busy = False
        if actor._mailbox or actor._stop_request is not None:
            actor._schedule()
        return ref

    def _lingering(self, actor: Actor) -> None:
        """Remember an idle actor whose task waits for its next message; see `_release_idle`."""
        if actor._lingering:
            return
        actor._lingering = True
        self._lingerers.append(actor)
        if self._sweep is None:
            assert self._loop is not None
            self._sweep = self._loop.call_later(LINGER, self._release_idle)

    def _release_idle(self) -> None:
        """Let the tasks of actors that stayed idle end, so an idle actor holds no task."""
        self._sweep = None
        lingerers, self._lingerers = self._lingerers, []
        for actor in lingerers:
            actor._lingering = False
            wakeup = actor._wakeup
            if wakeup is not None:
                actor._wakeup = None
                wakeup.set_result(False)

    def _deadline_queue(self, timeout: float, *, exits: bool = False) -> Deadlines:
        """The shared deadline queue of calls (or of waits for an exit) with this timeout."""
        assert self._loop is not None
        if exits:
            deadlines = self._exit_deadlines[timeout] = Deadlines(
                self._loop, timeout, "{ref!r} did not exit within {timeout}s"
            )
        else:
            deadlines = self._deadlines[timeout] = Deadlines(self._loop, timeout)
        return deadlines

    def _abort(self, actor: Actor, link_to: Actor | None, reason: object) -> None:
        if link_to is not None:
            link_to.unlink(actor._ref)
        actor._die(reason)

    def _check_name(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"an actor name must be a non-empty string, got {name!r}")
        holder = self._names.get(name)
        if holder is not None and holder._exit_reason is None:
            raise NameTaken(f"{name!r} is registered to {holder._ref!r}")

    def _forget(self, actor: Actor) -> None:
        self._actors.pop(actor._ref.id, None)
        name = actor._name
        if name is not None and self._names.get(name) is actor:
            del self._names[name]
        self._exited += 1

    def register(self, name: str, ref: ActorRef) -> None:
        """Give a live actor a unique name (``Process.register``); removed when it exits."""
        actor = ref._actor
        if actor._system is not self:
            raise ValueError(f"{ref!r} belongs to another actor system")
        if actor._exit_reason is not None:
            raise ActorExited(ref, actor._exit_reason)
        if actor._name is not None:
            raise NameTaken(f"{ref!r} is already registered as {actor._name!r}")
        self._check_name(name)
        actor._name = name
        actor._log = None
        self._names[name] = actor

    def unregister(self, name: str) -> None:
        """Remove a name; unknown names raise `KeyError`."""
        actor = self._names.pop(name)
        actor._name = None
        actor._log = None

    def whereis(self, name: str) -> ActorRef | None:
        """The live actor registered under `name`, or None."""
        actor = self._names.get(name)
        return actor._ref if actor is not None and actor._exit_reason is None else None

    def processes(self) -> list[ActorRef]:
        """Every live actor, oldest first."""
        return [actor._ref for actor in self._actors.values()]

    def statistics(self) -> SystemStatistics:
        return SystemStatistics(
            alive=len(self._actors),
            spawned=self._spawned,
            exited=self._exited,
            names=len(self._names),
        )

    async def shutdown(self, timeout: float = 5.0) -> None:
        """Stop every actor (see the module documentation). Idempotent."""
        check_timeout(timeout)
        if self._loop is None:
            return
        self._closing = True
        deadline = self._loop.time() + timeout
        roots = [actor for actor in reversed(self._actors.values()) if actor._parent is None]
        await self._stop_all(roots, deadline)
        await self._stop_all(list(reversed(self._actors.values())), deadline)
        leftovers = list(self._actors.values())
        tasks = [actor._task for actor in leftovers if actor._task is not None]
        for actor in leftovers:
            actor._signal(None, KILL)
        if tasks:
            await asyncio.wait(tasks, timeout=max(0.1, deadline - self._loop.time()))
        if self._background:
            await asyncio.wait(self._background, timeout=max(0.1, deadline - self._loop.time()))
        for deadlines in (*self._deadlines.values(), *self._exit_deadlines.values()):
            deadlines.close()
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        self._lingerers.clear()

    async def _stop_all(self, actors: list[Actor], deadline: float) -> None:
        assert self._loop is not None
        waiting = []
        for actor in actors:
            if actor._exit_reason is not None:
                continue
            if actor.trap_exits:
                actor._deliver_system(STOP, SHUTDOWN, None)
            else:
                actor._signal(None, SHUTDOWN)
            if actor._exit_reason is None:
                waiting.append(asyncio.ensure_future(actor._ref.join()))
        if waiting:
            remaining = max(0.0, deadline - self._loop.time())
            _, pending = await asyncio.wait(waiting, timeout=remaining)
            for fut in pending:
                fut.cancel()
