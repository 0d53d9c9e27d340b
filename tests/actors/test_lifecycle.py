"""The gen_server lifecycle: init before spawn returns, call/cast/info, stop and terminate."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest

from actors import (
    NOREPLY,
    NORMAL,
    Actor,
    ActorExited,
    ActorSystem,
    ActorTimeout,
    Caller,
    Ignore,
    MailboxFull,
    NameTaken,
    StartFailed,
    UnknownMessage,
)

pytestmark = pytest.mark.anyio


class Counter(Actor):
    def __init__(self, start: int = 0) -> None:
        self.count = start
        self.ready = False

    async def init(self) -> None:
        await asyncio.sleep(0)
        self.ready = True

    async def handle_call(self, message: Any, caller: Caller) -> Any:
        match message:
            case "get":
                return self.count
            case "ready":
                return self.ready
            case "slow_get":
                await asyncio.sleep(0.001)
                return self.count
        return await super().handle_call(message, caller)

    def handle_cast(self, message: Any) -> None:
        match message:
            case ("add", n):
                self.count += n
            case _:
                super_cast = Actor.handle_cast(self, message)
                super_cast.close()

    def handle_info(self, message: Any) -> None:
        self.count += 1000


async def test_init_completes_before_spawn_returns(system: ActorSystem) -> None:
    ref = await system.spawn(Counter())
    assert await ref.call("ready") is True


async def test_calls_casts_and_sends_are_handled_in_the_order_they_were_sent(
    system: ActorSystem,
) -> None:
    ref = await system.spawn(Counter(1))
    ref.cast(("add", 2))
    ref.send("tick")
    assert await ref.call("get") == 1003
    ref.cast(("add", 1))
    assert await ref.call("slow_get") == 1004


async def test_an_init_that_raises_fails_the_spawn_and_the_actor_never_runs(
    system: ActorSystem,
) -> None:
    class Broken(Actor):
        async def init(self) -> None:
            raise RuntimeError("no database")

    with pytest.raises(StartFailed) as info:
        await system.spawn(Broken(), name="broken")
    assert isinstance(info.value.reason, RuntimeError)
    assert system.whereis("broken") is None
    assert system.statistics().alive == 0


async def test_an_init_that_hangs_past_its_timeout_fails_the_spawn(system: ActorSystem) -> None:
    class Hangs(Actor):
        async def init(self) -> None:
            await asyncio.Event().wait()

    with pytest.raises(StartFailed) as info:
        await system.spawn(Hangs(), init_timeout=0.05)
    assert isinstance(info.value.reason, TimeoutError)


async def test_an_init_that_raises_ignore_declines_to_start(system: ActorSystem) -> None:
    class Declines(Actor):
        async def init(self) -> None:
            raise Ignore

    with pytest.raises(Ignore):
        await system.spawn(Declines())
    assert system.statistics().alive == 0


async def test_a_call_to_a_dead_actor_raises_with_its_exit_reason(system: ActorSystem) -> None:
    ref = await system.spawn(Counter())
    await ref.stop("normal")
    with pytest.raises(ActorExited) as info:
        await ref.call("get")
    assert info.value.reason == NORMAL


async def test_a_call_to_an_actor_that_crashes_mid_call_raises_with_the_crash(
    system: ActorSystem,
) -> None:
    class Fails(Actor):
        async def handle_call(self, message: Any, caller: Caller) -> Any:
            await asyncio.sleep(0)
            raise KeyError(message)

    ref = await system.spawn(Fails())
    with pytest.raises(ActorExited) as info:
        await ref.call("x")
    assert isinstance(info.value.reason, KeyError)
    assert not ref.alive


async def test_pending_calls_fail_with_the_exit_reason_when_the_actor_dies(
    system: ActorSystem,
) -> None:
    release = asyncio.Event()

    class Blocks(Actor):
        async def handle_call(self, message: Any, caller: Caller) -> Any:
            await release.wait()
            return message

    ref = await system.spawn(Blocks())
    first = ref.call(1)
    second = ref.call(2)
    await asyncio.sleep(0)
    ref.exit("kill")
    for pending in (first, second):
        with pytest.raises(ActorExited) as info:
            await pending
        assert info.value.reason == "killed"


async def test_a_call_times_out_and_its_late_reply_is_dropped(system: ActorSystem) -> None:
    release = asyncio.Event()

    class Late(Actor):
        async def handle_call(self, message: Any, caller: Caller) -> Any:
            if message == "late":
                await release.wait()
                return "too late"
            return "on time"

    ref = await system.spawn(Late())
    with pytest.raises(ActorTimeout):
        await ref.call("late", timeout=0.02)
    release.set()
    assert await ref.call("next") == "on time"
    assert ref.alive


@pytest.mark.parametrize("bad", [0, -1, math.nan, math.inf, "5", [1]])
async def test_a_bad_timeout_value_is_refused_with_a_clear_error(
    system: ActorSystem, bad: Any
) -> None:
    ref = await system.spawn(Counter())
    with pytest.raises(ValueError, match="timeout must be a positive"):
        ref.call("get", timeout=bad)
    assert await ref.call("get") == 0


async def test_an_unknown_call_is_refused_in_the_caller_and_the_actor_keeps_running(
    system: ActorSystem,
) -> None:
    ref = await system.spawn(Counter())
    with pytest.raises(UnknownMessage, match="no handle_call clause"):
        await ref.call("what?")
    ref.cast("what?")
    assert await ref.call("get") == 0


async def test_noreply_lets_the_actor_reply_later(system: ActorSystem) -> None:
    class Deferred(Actor):
        def __init__(self) -> None:
            self.waiting: list[Caller] = []

        def handle_call(self, message: Any, caller: Caller) -> Any:
            if message == "wait":
                self.waiting.append(caller)
                return NOREPLY
            for waiter in self.waiting:
                waiter.reply(message)
            return "released"

    ref = await system.spawn(Deferred())
    waiter = ref.call("wait")
    assert await ref.call("go") == "released"
    assert await waiter == "go"


async def test_stop_runs_terminate_with_the_reason_after_queued_messages(
    system: ActorSystem,
) -> None:
    seen: list[object] = []

    class Stoppable(Actor):
        def handle_cast(self, message: Any) -> None:
            seen.append(message)

        async def terminate(self, reason: object) -> None:
            await asyncio.sleep(0)
            seen.append(("terminate", reason))

    ref = await system.spawn(Stoppable())
    ref.cast("queued")
    await ref.stop("done")
    assert seen == ["queued", ("terminate", "done")]
    assert await ref.join() == "done"


async def test_stop_times_out_if_terminate_does_not_finish(system: ActorSystem) -> None:
    class Stuck(Actor):
        async def terminate(self, reason: object) -> None:
            await asyncio.Event().wait()

    ref = await system.spawn(Stuck())
    with pytest.raises(ActorTimeout):
        await ref.stop(timeout=0.02)
    ref.exit("kill")
    assert await ref.join() == "killed"


async def test_a_bounded_mailbox_refuses_messages_past_its_limit(system: ActorSystem) -> None:
    release = asyncio.Event()

    class Bounded(Actor):
        mailbox_limit = 2

        async def handle_cast(self, message: Any) -> None:
            await release.wait()

    ref = await system.spawn(Bounded())
    ref.cast(1)
    await asyncio.sleep(0)
    ref.cast(2)
    ref.cast(3)
    with pytest.raises(MailboxFull):
        ref.cast(4)
    ref.exit("shutdown")
    assert await ref.join() == "shutdown"


async def test_a_name_is_unique_while_its_actor_lives_and_freed_when_it_exits(
    system: ActorSystem,
) -> None:
    ref = await system.spawn(Counter(), name="counter")
    assert system.whereis("counter") == ref
    with pytest.raises(NameTaken):
        await system.spawn(Counter(), name="counter")
    await ref.stop()
    assert system.whereis("counter") is None
    again = await system.spawn(Counter(), name="counter")
    assert system.whereis("counter") == again


async def test_an_actor_instance_can_only_be_spawned_once(system: ActorSystem) -> None:
    counter = Counter()
    await system.spawn(counter)
    with pytest.raises(RuntimeError, match="already spawned"):
        await system.spawn(counter)


async def test_shutdown_stops_every_actor_and_leaves_no_task_behind() -> None:
    terminated: list[str] = []

    class Trapping(Actor):
        async def init(self) -> None:
            self.trap_exits = True

        async def terminate(self, reason: object) -> None:
            await asyncio.sleep(0)
            terminated.append(str(reason))

    class Busy(Actor):
        async def handle_cast(self, message: Any) -> None:
            await asyncio.Event().wait()

    before = asyncio.all_tasks()
    async with ActorSystem() as system:
        await system.spawn(Trapping())
        busy = await system.spawn(Busy())
        busy.cast("block")
        await asyncio.sleep(0)
        await system.spawn(Counter())
    assert terminated == ["shutdown"]
    assert system.statistics().alive == 0
    assert asyncio.all_tasks() == before


async def test_callbacks_may_be_plain_functions(system: ActorSystem) -> None:
    seen: list[object] = []

    class Plain(Actor):
        def init(self) -> None:
            seen.append("init")

        def handle_call(self, message: Any, caller: Caller) -> Any:
            return message * 2

        def terminate(self, reason: object) -> None:
            seen.append(("terminate", reason))

    ref = await system.spawn(Plain())
    assert await ref.call(21) == 42
    await ref.stop("done")
    assert seen == ["init", ("terminate", "done")]


async def test_a_deferred_call_fails_with_the_exit_reason_when_the_actor_exits(
    system: ActorSystem,
) -> None:
    class Defers(Actor):
        def handle_call(self, message: Any, caller: Caller) -> Any:
            if message == "wait":
                self.kept = caller
                return NOREPLY
            raise ValueError("crash while a caller waits")

    ref = await system.spawn(Defers())
    pending = ref.call("wait", timeout=None)
    with pytest.raises(ActorExited):
        await ref.call("crash")
    with pytest.raises(ActorExited) as info:
        await asyncio.wait_for(pending, 1)
    assert isinstance(info.value.reason, ValueError)


async def test_a_crashed_call_fails_only_after_terminate_has_run(system: ActorSystem) -> None:
    order: list[str] = []

    class Slow(Actor):
        def handle_call(self, message: Any, caller: Caller) -> Any:
            raise RuntimeError("crash")

        async def terminate(self, reason: object) -> None:
            await asyncio.sleep(0)
            order.append("terminate")

    ref = await system.spawn(Slow())
    with pytest.raises(ActorExited):
        await ref.call("x")
    order.append("caller saw the exit")
    assert order == ["terminate", "caller saw the exit"]
    assert not ref.alive
