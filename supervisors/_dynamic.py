"""DynamicSupervisor: children started on demand, one_for_one, stopped concurrently.

```python
threads = await system.spawn(DynamicSupervisor(max_children=1000), name="threads")
ref = await start_child(threads, ChildSpec("thread", start=lambda: ThreadActor(key)))
await terminate_child(threads, ref)          # by reference: ids need not be unique here
```

As Elixir's: it starts with no children, `start_child` raises `MaxChildren` past
`max_children`, a child is restarted according to its own `restart`, and restart intensity
(3 in 5 s by default; `max_seconds` on a float clock, where OTP counts whole seconds) applies to
the supervisor as a whole. On shutdown every child is sent the
shutdown signal at once and waited for concurrently, each up to its own shutdown timeout.
"""

from __future__ import annotations

import asyncio
from typing import Any

from actors import NOREPLY, ActorError, ActorRef, Caller, Exit
from supervisors._base import RestartDue, SupervisorBase
from supervisors._children import (
    Child,
    ChildNotFound,
    ChildStartError,
    Clock,
    Counts,
    monotonic,
    report_exit,
    should_restart,
    start_child,
    stop_child,
)
from supervisors._spec import ChildSpec

__all__ = ["DynamicSupervisor", "MaxChildren"]


class MaxChildren(ActorError):
    """`start_child` on a DynamicSupervisor that already has `max_children` children."""


class DynamicSupervisor(SupervisorBase):
    """Supervise any number of children started at run time; see the module documentation."""

    def __init__(
        self,
        *,
        max_children: int | None = None,
        max_restarts: int = 3,
        max_seconds: float = 5.0,
        clock: Clock = monotonic,
        seed: int | None = None,
    ) -> None:
        if max_children is not None and (not isinstance(max_children, int) or max_children < 1):
            raise ValueError(
                f"max_children must be a positive integer or None, got {max_children!r}"
            )
        super().__init__(max_restarts, max_seconds, clock, seed)
        self.max_children = max_children
        self.children: dict[ActorRef, Child] = {}
        self.restarting: list[Child] = []

    def describe(self) -> str:
        return f"dynamic, {len(self.children)} children, {self._describe_intensity()}"

    def records(self) -> list[Child]:
        return [*self.children.values(), *self.restarting]

    async def init(self) -> None:
        self.trap_exits = True

    async def _stop_all(self) -> None:
        for child in self.restarting:
            if child.pending is not None:
                child.pending.cancel()
        self.restarting.clear()
        children, self.children = list(self.children.values()), {}
        await asyncio.gather(*(stop_child(self, child) for child in children))

    async def handle_call(self, message: Any, caller: Caller) -> Any:
        try:
            match message:
                case ("start_child", ChildSpec() as spec):
                    return await self._start_new(spec)
                case ("terminate_child", ActorRef() as ref):
                    child = self.children.pop(ref, None)
                    if child is None:
                        raise ChildNotFound(ref, f"{ref!r} is not a child of this supervisor")
                    await stop_child(self, child)
                    return None
                case "which_children":
                    rows = self.records()
                    return [child.info() for child in reversed(rows)]
                case "count_children":
                    specs = [c.spec for c in self.records()]
                    return Counts(
                        specs=len(specs),
                        active=len(self.children),
                        supervisors=sum(1 for s in specs if s.type == "supervisor"),
                        workers=sum(1 for s in specs if s.type == "worker"),
                    )
        except (ChildNotFound, ChildStartError, MaxChildren) as exc:
            caller.fail(exc)
            return NOREPLY
        return await super().handle_call(message, caller)

    async def _start_new(self, spec: ChildSpec) -> ActorRef | None:
        if self.max_children is not None and len(self.children) >= self.max_children:
            raise MaxChildren(f"this supervisor already has {self.max_children} children")
        child = Child(spec)
        ref = await start_child(self, child, self._clock, report=False)
        if ref is not None:
            self.children[ref] = child
        return ref

    async def handle_info(self, message: Any) -> None:
        match message:
            case Exit(sender, reason) if sender in self.children:
                child = self.children.pop(sender)
                child.ref = None
                report_exit(self, child, reason)
                if should_restart(child.spec, reason):
                    child.restarting = True
                    self.restarting.append(child)
                    await self._restart(child)
            case RestartDue(child, token) if child.token == token and child in self.restarting:
                child.pending = None
                await self._apply_strategy(child)
            case Exit():
                pass
            case _:
                await super().handle_info(message)

    async def _apply_strategy(self, child: Child) -> None:
        try:
            ref = await start_child(self, child, self._clock)
        except ChildStartError:
            await self._restart(child, retry=True)
            return
        self.restarting.remove(child)
        child.restarting = False
        if ref is not None:
            self.children[ref] = child
