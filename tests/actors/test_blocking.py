"""Driving actors from synchronous code: run_in_thread and BlockingRef."""

from __future__ import annotations

import threading
from typing import Any, ClassVar

import pytest

from actors import (
    NOREPLY,
    Actor,
    ActorExited,
    ActorSystem,
    ActorTimeout,
    BlockingRef,
    Caller,
    MailboxFull,
    ThreadActor,
    UnknownMessage,
    resume,
    run_in_thread,
    suspend,
)
from tests.actors.conftest import Recorder


class Counter(Actor):
    def __init__(self) -> None:
        self.count = 0
        self.terminated: list[object] = []

    def handle_call(self, message: Any, caller: Caller) -> Any:
        match message:
            case "get":
                return self.count
            case "never":
                return NOREPLY
            case "crash":
                raise ValueError("counter crashed")
        return Actor.handle_call(self, message, caller)

    def handle_cast(self, message: Any) -> None:
        self.count += message

    def handle_info(self, message: Any) -> None:
        self.count += 1000 * message

    async def terminate(self, reason: object) -> None:
        self.terminated.append(reason)


class Tiny(Counter):
    mailbox_limit: ClassVar[int | None] = 1


class Sleeper(ThreadActor):
    """Does blocking work on its thread."""

    def handle_call(self, message: Any, caller: Caller) -> Any:
        event = threading.Event()
        event.wait(message)
        return threading.current_thread().name


def test_blocking_calls_casts_and_sends_reach_an_actor_in_order_and_return_replies() -> None:
    with run_in_thread() as actors:
        counter = actors.spawn(Counter(), name="counter")
        counter.cast(1)
        counter.send(2)
        counter.cast(3)
        assert counter.call("get", timeout=5.0) == 2004
        assert actors.whereis("counter") == counter
        assert counter.name == "counter"
        assert counter.alive
        assert actors.processes() == [counter]
        assert actors.statistics().alive == 1
        assert actors.run(lambda: counter.ref.alive) is True


def test_failures_in_the_actor_are_raised_in_the_synchronous_caller() -> None:
    with run_in_thread() as actors:
        counter = actors.spawn(Counter())
        with pytest.raises(UnknownMessage):
            counter.call("what?")
        with pytest.raises(ActorTimeout):
            counter.call("never", timeout=0.05)
        with pytest.raises(ActorExited) as exited:
            counter.call("crash")
        assert isinstance(exited.value.reason, ValueError)
        assert isinstance(counter.join(timeout=5.0), ValueError)
        with pytest.raises(ActorExited):
            counter.call("get")
        tiny = actors.spawn(Tiny())
        actors.run(suspend, tiny.ref)
        tiny.cast(1)
        with pytest.raises(MailboxFull):
            tiny.cast(2)
        actors.run(resume, tiny.ref)
        assert tiny.call("get") == 1


def test_stop_returns_after_terminate_and_exit_signals_are_delivered() -> None:
    with run_in_thread() as actors:
        counter = Counter()
        ref = actors.spawn(counter)
        ref.stop("normal")
        assert not ref.alive
        assert counter.terminated == ["normal"]
        watcher = actors.spawn(Recorder(trap_exits=True))
        victim = actors.spawn(Counter())
        watcher.call(("link", victim.ref))
        victim.exit("shutdown")
        assert victim.join(timeout=5.0) == "shutdown"
        assert watcher.call(("wait_for", 1))[0].reason == "shutdown"


def test_leaving_run_in_thread_stops_every_actor_and_leaves_no_thread_behind() -> None:
    before = set(threading.enumerate())
    with run_in_thread() as actors:
        counter = actors.spawn(Counter())
        sleeper = actors.spawn(Sleeper())
        assert sleeper.call(0.01).startswith("actor:Sleeper")
        assert len(set(threading.enumerate()) - before) == 2
    assert not counter.alive
    assert not sleeper.alive
    assert set(threading.enumerate()) <= before


def test_an_error_in_the_block_still_shuts_the_system_down() -> None:
    before = set(threading.enumerate())
    sleepers: list[BlockingRef] = []

    def fail_inside() -> None:
        with run_in_thread() as actors:
            sleepers.append(actors.spawn(Sleeper()))
            raise LookupError("the caller failed")

    with pytest.raises(LookupError):
        fail_inside()
    assert not sleepers[0].alive
    assert set(threading.enumerate()) <= before


def test_the_system_is_unusable_once_the_block_is_left() -> None:
    with run_in_thread() as actors:
        counter = actors.spawn(Counter())
    with pytest.raises(RuntimeError, match="closed"):
        counter.call("get")


@pytest.mark.anyio
async def test_a_blocking_operation_on_the_event_loops_thread_is_refused() -> None:
    async with ActorSystem() as system:
        ref = await system.spawn(Counter())
        with pytest.raises(RuntimeError, match="deadlock"):
            BlockingRef(ref).call("get")
        assert ref.alive
