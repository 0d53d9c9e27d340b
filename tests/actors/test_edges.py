"""The runtime keeps its word at the edges: ``kill`` stops a handler whoever sends it, and the
default callbacks answer unknown messages as documented (where Piano departs from GenServer)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from actors import KILLED, Actor, ActorSystem, UnknownMessage, get_state

pytestmark = pytest.mark.anyio


class SelfKiller(Actor):
    """Kills itself from inside an async handler, then awaits `gate`."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        self.gate: asyncio.Future[None] | None = None
        self.task: asyncio.Task[Any] | None = None
        self.after: list[str] = []

    async def handle_cast(self, message: Any) -> None:
        self.task = asyncio.current_task()
        self.gate = asyncio.get_running_loop().create_future()
        self.ref.exit(self.reason)
        try:
            await self.gate
        finally:
            self.after.append("finally")
        self.after.append("went on")


@pytest.mark.parametrize("reason", ["kill", "boom"])
async def test_an_async_handler_that_kills_its_own_actor_stops_at_its_next_await(
    system: ActorSystem, reason: str
) -> None:
    actor = SelfKiller(reason)
    ref = await system.spawn(actor)
    ref.cast("go")
    assert await ref.join(timeout=10) == (KILLED if reason == "kill" else reason)
    assert actor.task is not None
    assert actor.gate is not None
    if not actor.gate.done():
        actor.gate.set_result(None)
    done, _ = await asyncio.wait([actor.task], timeout=10)
    assert done, "the handler's task ended"
    assert actor.after == ["finally"], "the handler stopped at its await, cleanup ran"


class Quiet(Actor):
    def __init__(self) -> None:
        self.casts = 0

    async def handle_cast(self, message: Any) -> None:
        if message == "count":
            self.casts += 1
            return
        await super().handle_cast(message)


async def test_unknown_calls_fail_in_the_caller_and_unknown_casts_are_dropped_not_crashing(
    system: ActorSystem,
) -> None:
    """Piano departs from GenServer here on purpose (see `actors._actor`): the actor keeps
    running and its state, the caller learns of its mistake."""
    actor = Quiet()
    ref = await system.spawn(actor)
    with pytest.raises(UnknownMessage, match="no handle_call clause"):
        await ref.call("what?")
    ref.cast("what?")
    ref.cast("count")
    ref.send("stray")
    state = await get_state(ref)
    assert state["casts"] == 1, "the casts after the unknown ones were handled"
    assert ref.alive
