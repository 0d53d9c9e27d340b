"""TaskSupervisor: one-off supervised tasks whose result can be awaited.

```python
tasks = await system.spawn(TaskSupervisor(), name="tasks")
handle = await start_task(tasks, fetch_page, url)        # runs as a temporary child
page = await handle.result(timeout=10)                   # or ActorExited with the crash
```

Like Elixir's `Task.Supervisor`: each task is a temporary child (never restarted) with a 5 s
shutdown. With ``link=True`` (inside an actor) the task is linked to the calling actor, as
`Task.Supervisor.async` does: if the task crashes the caller gets the exit signal, and if the
caller exits abnormally the task is stopped. Without a link the caller just awaits the outcome.
A task that crashes logs a crash report like any actor.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from actors import NORMAL, Actor, ActorExited, ActorRef, current_actor
from supervisors._dynamic import DynamicSupervisor
from supervisors._ops import start_child
from supervisors._spec import ChildSpec

__all__ = ["TaskHandle", "TaskSupervisor", "start_task"]

T = TypeVar("T")
_task_ids = itertools.count(1)


class TaskSupervisor(DynamicSupervisor):
    """A DynamicSupervisor for one-off tasks (see `start_task`)."""

    def describe(self) -> str:
        return f"tasks, {len(self.children)} running"


class TaskHandle(Generic[T]):
    """The outcome of a supervised task."""

    def __init__(self, ref: ActorRef, outcome: asyncio.Future[T]) -> None:
        self.ref = ref
        self._outcome = outcome

    async def result(self, timeout: float | None = None) -> T:
        """The task's return value; `ActorExited` if it crashed or was stopped first."""
        async with asyncio.timeout(timeout):
            return await asyncio.shield(self._outcome)


class _Task(Actor, Generic[T]):
    def __init__(
        self,
        fn: Callable[..., Awaitable[T]],
        args: tuple[Any, ...],
        outcome: asyncio.Future[T],
        owner: ActorRef | None,
    ) -> None:
        self.fn = fn
        self.args = args
        self.outcome = outcome
        self.owner = owner

    async def init(self) -> None:
        if self.owner is not None:
            self.link(self.owner)
        self.ref.cast("run")

    async def handle_cast(self, message: Any) -> None:
        try:
            value = await self.fn(*self.args)
        except Exception as exc:
            if not self.outcome.done():
                self.outcome.set_exception(ActorExited(self.ref, exc))
            raise
        if not self.outcome.done():
            self.outcome.set_result(value)
        self.stop(NORMAL)

    async def terminate(self, reason: object) -> None:
        if not self.outcome.done():
            self.outcome.set_exception(ActorExited(self.ref, reason))


async def start_task(
    supervisor: ActorRef,
    fn: Callable[..., Awaitable[T]],
    *args: Any,
    link: bool = False,
    shutdown: float = 5.0,
) -> TaskHandle[T]:
    """Run ``await fn(*args)`` as a temporary child of `supervisor`."""
    owner = None
    if link:
        caller = current_actor()
        if caller is None:
            raise RuntimeError("link=True needs to be called from inside an actor")
        owner = caller.ref
    outcome: asyncio.Future[T] = asyncio.get_running_loop().create_future()
    spec = ChildSpec(
        ("task", next(_task_ids)),
        start=lambda: _Task(fn, args, outcome, owner),
        restart="temporary",
        shutdown=shutdown,
    )
    ref = await start_child(supervisor, spec)
    assert ref is not None
    ref_actor = ref._actor

    def exited(_: object) -> None:
        if not outcome.done():
            outcome.set_exception(ActorExited(ref, ref_actor._exit_reason))

    asyncio.ensure_future(ref.join()).add_done_callback(exited)
    return TaskHandle(ref, outcome)
