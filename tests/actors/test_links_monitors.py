"""Links, monitors and exit signals, with OTP's rules."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from actors import (
    KILLED,
    NOPROC,
    ActorExited,
    ActorSystem,
    Down,
    Exit,
    Shutdown,
    is_normal_exit,
)
from tests.actors.conftest import Crasher, Recorder

pytestmark = pytest.mark.anyio


async def test_links_are_bidirectional_and_an_abnormal_exit_takes_the_other_down(
    system: ActorSystem,
) -> None:
    a = await system.spawn(Crasher())
    b = await system.spawn(Crasher())
    await a.call(("link", b))
    with pytest.raises(ActorExited):
        await b.call(("crash", ValueError("b failed")))
    reason = await a.join(timeout=1)
    assert isinstance(reason, ValueError)
    assert str(reason) == "b failed"


async def test_a_normal_exit_does_not_take_linked_actors_down(system: ActorSystem) -> None:
    a = await system.spawn(Crasher())
    b = await system.spawn(Crasher())
    await a.call(("link", b))
    await b.call(("stop", "normal"))
    assert await b.join(timeout=1) == "normal"
    assert await a.call("ping") == "pong"


async def test_a_shutdown_exit_takes_linked_actors_down_with_the_same_reason(
    system: ActorSystem,
) -> None:
    a = await system.spawn(Crasher())
    b = await system.spawn(Crasher())
    await a.call(("link", b))
    await b.call(("stop", Shutdown("maintenance")))
    assert await a.join(timeout=1) == Shutdown("maintenance")
    assert is_normal_exit(Shutdown("maintenance"))


async def test_trapping_exits_turns_signals_into_exit_messages(system: ActorSystem) -> None:
    watcher = await system.spawn(Recorder(trap_exits=True))
    other = await system.spawn(Crasher())
    await watcher.call(("link", other))
    with pytest.raises(ActorExited):
        await other.call(("crash", RuntimeError("x")))
    [message] = await watcher.call(("wait_for", 1))
    assert isinstance(message, Exit)
    assert message.sender == other
    assert isinstance(message.reason, RuntimeError)
    assert watcher.alive


async def test_a_trapping_actor_also_sees_normal_exits_of_linked_actors(
    system: ActorSystem,
) -> None:
    watcher = await system.spawn(Recorder(trap_exits=True))
    other = await system.spawn(Crasher())
    await watcher.call(("link", other))
    await other.stop()
    assert await watcher.call(("wait_for", 1)) == [Exit(other, "normal")]


async def test_kill_cannot_be_trapped_and_linked_actors_see_killed(system: ActorSystem) -> None:
    watcher = await system.spawn(Recorder(trap_exits=True))
    victim = await system.spawn(Crasher(trap_exits=True))
    await watcher.call(("link", victim))
    victim.exit("kill")
    assert await victim.join(timeout=1) == KILLED
    assert await watcher.call(("wait_for", 1)) == [Exit(victim, KILLED)]


async def test_an_exit_signal_ends_a_non_trapping_actor_without_terminate(
    system: ActorSystem,
) -> None:
    crasher = Crasher()
    ref = await system.spawn(crasher)
    ref.exit("shutdown")
    assert await ref.join(timeout=1) == "shutdown"
    assert crasher.terminated_with == []


async def test_a_normal_exit_signal_is_ignored_unless_trapping(system: ActorSystem) -> None:
    ref = await system.spawn(Crasher())
    ref.exit("normal")
    assert await ref.call("ping") == "pong"
    trapping = await system.spawn(Recorder(trap_exits=True))
    trapping.exit("normal")
    assert await trapping.call(("wait_for", 1)) == [Exit(None, "normal")]


async def test_an_exit_from_the_parent_makes_a_trapping_child_terminate(
    system: ActorSystem,
) -> None:
    parent = await system.spawn(Recorder(trap_exits=True))
    child_actor = Crasher(trap_exits=True)
    child = await parent.call(("spawn_link", child_actor))
    await parent.call(("exit", child, "shutdown"))
    assert await child.join(timeout=1) == "shutdown"
    assert child_actor.terminated_with == ["shutdown"]


async def test_a_monitor_delivers_down_with_the_reason(system: ActorSystem) -> None:
    watcher = await system.spawn(Recorder())
    target = await system.spawn(Crasher())
    mref = await watcher.call(("monitor", target))
    await target.call(("stop", "done"))
    assert await watcher.call(("wait_for", 1)) == [Down(mref, target, "done")]


async def test_monitoring_a_dead_actor_delivers_down_noproc_at_once(system: ActorSystem) -> None:
    watcher = await system.spawn(Recorder())
    target = await system.spawn(Crasher())
    await target.stop()
    mref = await watcher.call(("monitor", target))
    assert await watcher.call(("wait_for", 1)) == [Down(mref, target, NOPROC)]


async def test_monitors_stack_and_each_gets_its_own_down(system: ActorSystem) -> None:
    watcher = await system.spawn(Recorder())
    target = await system.spawn(Crasher())
    first = await watcher.call(("monitor", target))
    second = await watcher.call(("monitor", target))
    target.exit("kill")
    downs = await watcher.call(("wait_for", 2))
    assert {d.monitor for d in downs} == {first, second}
    assert watcher.alive


async def test_demonitor_with_flush_removes_a_down_already_queued(system: ActorSystem) -> None:
    gate = asyncio.Event()

    class Slow(Recorder):
        async def handle_cast(self, message: object) -> None:
            await gate.wait()

    watcher = await system.spawn(Slow())
    target = await system.spawn(Crasher())
    mref = await watcher.call(("monitor", target))
    watcher.cast("block")
    target.exit("kill")
    await target.join()
    # the Down is queued behind the blocked cast; demonitor before it is handled
    watcher_actor = watcher._actor
    watcher_actor.demonitor(mref, flush=True)
    gate.set()
    watcher.send("marker")
    assert await watcher.call(("wait_for", 1)) == ["marker"]


async def test_linking_to_a_dead_actor_fails_with_noproc(system: ActorSystem) -> None:
    linker = await system.spawn(Crasher())
    dead = await system.spawn(Crasher())
    await dead.stop()
    with pytest.raises(ActorExited) as info:
        await linker.call(("link", dead))
    assert isinstance(info.value.reason, ActorExited)
    assert info.value.reason.reason == NOPROC


async def test_an_exit_cascades_through_a_chain_of_links(system: ActorSystem) -> None:
    refs = [await system.spawn(Crasher()) for _ in range(5)]
    for left, right in itertools.pairwise(refs):
        await left.call(("link", right))
    refs[-1].exit(RuntimeError("boom"))
    for ref in refs:
        reason = await ref.join(timeout=1)
        assert isinstance(reason, RuntimeError)
