"""The Registry (unique and duplicate keys, pub/sub) and timers."""

from __future__ import annotations

from typing import Any

import pytest

from actors import Actor, ActorRef, ActorSystem, Caller, NameTaken, Registry, Timer
from tests.actors.conftest import Recorder

pytestmark = pytest.mark.anyio


async def test_duplicate_keys_dispatch_to_every_registered_actor(system: ActorSystem) -> None:
    topics = Registry(keys="duplicate")
    subscribers = [await system.spawn(Recorder()) for _ in range(3)]
    for ref in subscribers:
        topics.register("news", ref, value="v")

    def ring(entries: list[tuple[ActorRef, object]]) -> None:
        for ref, _ in entries:
            ref.send("hello")

    topics.dispatch("news", ring)
    for ref in subscribers:
        assert await ref.call(("wait_for", 1)) == ["hello"]
    assert topics.count("news") == 3


async def test_registry_entries_are_removed_when_their_actor_exits(system: ActorSystem) -> None:
    topics = Registry(keys="duplicate")
    a = await system.spawn(Recorder())
    b = await system.spawn(Recorder())
    topics.register("k", a)
    topics.register("k", b)
    topics.register("other", a)
    await a.stop()
    assert [ref for ref, _ in topics.lookup("k")] == [b]
    assert topics.lookup("other") == []
    assert topics.keys(b) == ["k"]


async def test_a_unique_registry_refuses_a_second_live_actor(system: ActorSystem) -> None:
    names = Registry(keys="unique")
    a = await system.spawn(Recorder())
    b = await system.spawn(Recorder())
    names.register("thread:1", a, value=1)
    with pytest.raises(NameTaken):
        names.register("thread:1", b)
    assert names.update_value("thread:1", a, lambda v: v + 1) == 2
    await a.stop()
    names.register("thread:1", b)
    assert names.lookup("thread:1") == [(b, None)]


async def test_registry_entries_lists_every_live_entry_in_registration_order(
    system: ActorSystem,
) -> None:
    names = Registry(keys="duplicate")
    a = await system.spawn(Recorder())
    b = await system.spawn(Recorder())
    names.register("x", a, value=1)
    names.register("y", b, value=2)
    names.register("x", b, value=3)
    assert names.entries() == [("x", a, 1), ("x", b, 3), ("y", b, 2)]
    await b.stop()
    assert names.entries() == [("x", a, 1)]


class Ticker(Actor):
    def __init__(self) -> None:
        self.timers: dict[str, Timer] = {}

    async def handle_call(self, message: Any, caller: Caller) -> Any:
        match message:
            case ("after", delay, tag, dest):
                self.timers[tag] = self.send_after(delay, tag, dest)
                return None
            case ("cancel", tag):
                return self.timers[tag].cancel()
        return await super().handle_call(message, caller)


async def test_send_after_delivers_the_message_to_handle_info(system: ActorSystem) -> None:
    ticker = await system.spawn(Ticker())
    sink = await system.spawn(Recorder())
    await ticker.call(("after", 0.01, "tick", sink))
    assert await sink.call(("wait_for", 1)) == ["tick"]


async def test_a_cancelled_timer_never_fires(system: ActorSystem) -> None:
    ticker = await system.spawn(Ticker())
    sink = await system.spawn(Recorder())
    await ticker.call(("after", 0.01, "cancelled", sink))
    assert await ticker.call(("cancel", "cancelled")) is True
    await ticker.call(("after", 0.02, "later", sink))
    assert await sink.call(("wait_for", 1)) == ["later"]
    assert await ticker.call(("cancel", "later")) is False


async def test_timers_are_cancelled_when_their_owner_exits(system: ActorSystem) -> None:
    ticker = await system.spawn(Ticker())
    sink = await system.spawn(Recorder())
    await ticker.call(("after", 0.01, "orphan", sink))
    actor = ticker._actor
    timer = actor.timers["orphan"]  # type: ignore[attr-defined]
    handle = timer._handle
    await ticker.stop()
    assert not timer.pending
    await ticker.join()
    assert handle.cancelled(), "the loop will not fire it (on asyncio's loop and on uvloop)"
    await sink.call(("after_check", 0)) if False else None
    assert await sink.call("infos") == []
