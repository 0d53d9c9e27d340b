"""Thread actors: synchronous callbacks on a thread of their own, with the runtime's semantics."""

from __future__ import annotations

import threading
from typing import Any

import pykka
import pytest

from actors import (
    KILLED,
    NOREPLY,
    ActorExited,
    ActorRef,
    ActorSystem,
    BlockingRef,
    Caller,
    Down,
    Exit,
    Ignore,
    PykkaActorProxy,
    PykkaActorStopped,
    StartFailed,
    ThreadActor,
    UnknownMessage,
    get_state,
    info,
    replace_state,
    resume,
    suspend,
)
from tests.actors.conftest import Crasher, Recorder

pytestmark = pytest.mark.anyio


def runtime_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(("actor:", "pykka-watch:"))]


def actor_thread(ref: ActorRef) -> threading.Thread:
    """The thread a started thread actor's callbacks run on."""
    actor = ref._actor
    assert isinstance(actor, ThreadActor)
    assert actor.thread is not None
    return actor.thread


class Worker(ThreadActor):
    """Records where and in which order its callbacks run."""

    def __init__(self, fail_init: BaseException | None = None, trap: bool = False) -> None:
        self.fail_init = fail_init
        self.trap = trap
        self.threads: list[int] = []
        self.casts: list[object] = []
        self.infos: list[object] = []
        self.waiting: list[Caller] = []
        self.terminated: list[object] = []

    def init(self) -> None:
        self.threads.append(threading.get_ident())
        self.trap_exits = self.trap
        if self.fail_init is not None:
            raise self.fail_init

    def handle_call(self, message: Any, caller: Caller) -> Any:
        self.threads.append(threading.get_ident())
        match message:
            case "casts":
                return list(self.casts)
            case "threads":
                return list(self.threads)
            case ("crash", error):
                raise error
            case "wait_for_info":
                self.waiting.append(caller)
                return NOREPLY
            case ("call", ref, msg):
                return BlockingRef(ref).call(msg)
            case "call_myself":
                try:
                    return BlockingRef(self.ref).call("casts")
                except RuntimeError as exc:
                    return str(exc)
            case ("link", ref):
                self.link(ref)
                return None
            case ("monitor", ref):
                return self.monitor(ref)
            case ("send_after", delay, msg):
                self.send_after(delay, msg)
                return None
            case ("stop", reason):
                self.stop(reason)
                return "stopping"
        return super().handle_call(message, caller)

    def handle_cast(self, message: Any) -> None:
        self.threads.append(threading.get_ident())
        self.casts.append(message)

    def handle_info(self, message: Any) -> None:
        self.infos.append(message)
        for caller in self.waiting:
            caller.reply(message)
        self.waiting.clear()

    def terminate(self, reason: object) -> None:
        self.terminated.append((reason, threading.current_thread().name))


async def test_a_thread_actors_callbacks_run_on_one_thread_of_its_own_and_in_mailbox_order(
    system: ActorSystem,
) -> None:
    ref = await system.spawn(Worker())
    for n in range(50):
        ref.cast(n)
    assert await ref.call("casts") == list(range(50))
    threads = await ref.call("threads")
    assert len(set(threads)) == 1
    assert threads[0] != threading.get_ident()
    assert actor_thread(ref) is not None
    assert actor_thread(ref).name == f"actor:Worker#{ref.id}"
    with pytest.raises(UnknownMessage):
        await ref.call("no such message")
    assert ref.alive


class LoudWorker(Worker):
    def handle_cast(self, message: Any) -> None:
        super().handle_cast(("loud", message))


async def test_a_subclass_calls_its_parents_callbacks_with_super_on_the_thread(
    system: ActorSystem,
) -> None:
    ref = await system.spawn(LoudWorker())
    ref.cast("hi")
    assert await ref.call("casts") == [("loud", "hi")]
    assert len(set(await ref.call("threads"))) == 1


async def test_init_fails_spawn_with_StartFailed_and_its_thread_ends(system: ActorSystem) -> None:
    worker = Worker(fail_init=ValueError("no driver"))
    with pytest.raises(StartFailed) as failed:
        await system.spawn(worker)
    assert isinstance(failed.value.reason, ValueError)
    assert worker.threads
    assert worker.threads[0] != threading.get_ident()
    assert worker.thread is not None
    worker.thread.join(5)
    assert not worker.thread.is_alive()
    with pytest.raises(Ignore):
        await system.spawn(Worker(fail_init=Ignore()))
    assert system.statistics().alive == 0


class SlowStart(ThreadActor):
    def __init__(self, gate: threading.Event) -> None:
        self.gate = gate

    def init(self) -> None:
        self.gate.wait(10)


async def test_an_init_past_its_timeout_fails_spawn_and_the_thread_ends_once_init_returns(
    system: ActorSystem,
) -> None:
    gate = threading.Event()
    actor = SlowStart(gate)
    with pytest.raises(StartFailed) as failed:
        await system.spawn(actor, init_timeout=0.05)
    assert isinstance(failed.value.reason, TimeoutError)
    assert not actor.ref.alive
    assert actor.thread is not None
    assert actor.thread.is_alive()
    gate.set()
    actor.thread.join(5)
    assert not actor.thread.is_alive()


class BadCleanup(ThreadActor):
    def terminate(self, reason: object) -> None:
        raise OSError("the browser would not quit")


async def test_a_terminate_that_raises_on_the_thread_becomes_the_exit_reason(
    system: ActorSystem,
) -> None:
    ref = await system.spawn(BadCleanup())
    await ref.stop()
    reason = await ref.join()
    assert isinstance(reason, OSError)
    assert actor_thread(ref) is not None
    actor_thread(ref).join(5)
    assert not actor_thread(ref).is_alive()


async def test_a_crash_on_the_thread_runs_terminate_there_and_takes_links_down_with_the_reason(
    system: ActorSystem,
) -> None:
    watcher = await system.spawn(Recorder(trap_exits=True))
    bystander = await system.spawn(Crasher())
    worker = Worker()
    ref = await system.spawn(worker)
    await watcher.call(("link", ref))
    await bystander.call(("link", ref))
    mref = await watcher.call(("monitor", ref))
    error = RuntimeError("selenium lost the browser")
    with pytest.raises(ActorExited) as exited:
        await ref.call(("crash", error))
    assert exited.value.reason is error
    assert await ref.join(5) is error
    infos = await watcher.call(("wait_for", 2))
    assert Exit(ref, error) in infos
    assert Down(mref, ref, error) in infos
    assert await bystander.join(5) is error
    assert worker.terminated == [(error, f"actor:Worker#{ref.id}")]


async def test_stop_runs_terminate_on_the_thread_and_returns_once_the_thread_has_ended(
    system: ActorSystem,
) -> None:
    worker = Worker()
    ref = await system.spawn(worker)
    assert await ref.call(("stop", "normal")) == "stopping"
    assert await ref.join(5) == "normal"
    ref2 = await system.spawn(Worker())
    await ref2.stop("normal")
    assert actor_thread(ref2) is not None
    assert not actor_thread(ref2).is_alive()
    assert worker.terminated == [("normal", f"actor:Worker#{ref.id}")]


class Blocker(ThreadActor):
    """Blocks its thread on a gate, as a slow blocking library call would."""

    def __init__(self, gate: threading.Event, observer: ActorRef, record: list[object]) -> None:
        self.gate = gate
        self.observer = observer
        self.record = record

    def handle_cast(self, message: Any) -> None:
        if message == "block":
            BlockingRef(self.observer).send("entered")
            self.gate.wait(10)
        self.record.append(message)

    def terminate(self, reason: object) -> None:
        self.record.append(("terminate", reason))


async def test_a_kill_reports_the_actor_dead_at_once_and_its_thread_ends_after_its_current_call(
    system: ActorSystem,
) -> None:
    gate = threading.Event()
    observer = await system.spawn(Recorder(trap_exits=True))
    record: list[object] = []
    ref = await system.spawn(Blocker(gate, observer, record))
    mref = await observer.call(("monitor", ref))
    ref.cast("block")
    ref.cast("after")
    assert await observer.call(("wait_for", 1)) == ["entered"]
    ref.exit("kill")
    assert not ref.alive
    assert await ref.join(5) == KILLED
    assert (await observer.call(("wait_for", 2)))[1] == Down(mref, ref, KILLED)
    thread = actor_thread(ref)
    assert thread is not None
    assert thread.is_alive()
    gate.set()
    thread.join(5)
    assert not thread.is_alive()
    assert record == ["block"]


async def test_from_its_thread_an_actor_calls_links_monitors_starts_timers_and_replies_later(
    system: ActorSystem,
) -> None:
    other = await system.spawn(Crasher())
    ref = await system.spawn(Worker())
    assert await ref.call(("call", other, "ping")) == "pong"
    assert "cannot call itself" in await ref.call("call_myself")
    pending = ref.call("wait_for_info")
    await ref.call(("send_after", 0.01, "tick"))
    assert await pending == "tick"
    mref = await ref.call(("monitor", other))
    await ref.call(("link", other))
    assert ref in info(other).links
    assert ref in info(other).monitored_by
    pending = ref.call("wait_for_info")
    await other.stop("normal")
    assert await pending == Down(mref, other, "normal")
    assert ref.alive


async def test_introspection_sees_a_thread_actors_state_between_callbacks(
    system: ActorSystem,
) -> None:
    ref = await system.spawn(Worker())
    ref.cast("one")
    state = await get_state(ref)
    assert state["casts"] == ["one"]
    await replace_state(ref, lambda old: {**old, "casts": ["replaced"]})
    assert await ref.call("casts") == ["replaced"]
    await suspend(ref)
    ref.cast("queued")
    assert info(ref).status == "suspended"
    assert info(ref).mailbox_length == 1
    await resume(ref)
    assert await ref.call("casts") == ["replaced", "queued"]


async def test_leaving_the_system_ends_every_thread_actors_thread() -> None:
    before = set(runtime_threads())
    async with ActorSystem() as system:
        workers = [Worker(), Worker(), Worker(trap=True)]
        for worker in workers:
            await system.spawn(worker)
        assert len(set(runtime_threads()) - before) == 3
    assert set(runtime_threads()) <= before
    assert all(w.thread is not None and not w.thread.is_alive() for w in workers)
    assert workers[2].terminated == [("shutdown", f"actor:Worker#{workers[2].ref.id}")]
    assert workers[0].terminated == []


async def test_an_async_callback_is_refused_when_the_class_is_created() -> None:
    with pytest.raises(TypeError, match="must be a plain method"):

        class Wrong(ThreadActor):
            async def handle_cast(self, message: Any) -> None:
                pass


async def test_a_thread_stopped_behind_the_runtimes_back_exits_the_actor(
    system: ActorSystem,
) -> None:
    observer = await system.spawn(Recorder(trap_exits=True))
    ref = await system.spawn(Worker())
    mref = await observer.call(("monitor", ref))
    pykka.ActorRegistry.stop_all()
    (down,) = await observer.call(("wait_for", 1))
    assert down.monitor is mref
    assert isinstance(down.reason, PykkaActorStopped)
    assert not ref.alive


class Player(pykka.ThreadingActor):
    """A plain pykka actor, as an application would have started it."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[object] = []
        self.thread: threading.Thread | None = None
        self.stopped = threading.Event()

    def on_start(self) -> None:
        self.thread = threading.current_thread()

    def on_stop(self) -> None:
        self.stopped.set()

    def on_receive(self, message: Any) -> Any:
        match message:
            case "seen":
                return list(self.seen)
            case "fail":
                raise KeyError("no such track")
            case "quit":
                self.stop()
            case "crash":
                raise RuntimeError("decoder crashed")
        self.seen.append(message)
        return None


def start_player() -> tuple[pykka.ActorRef[Player], Player]:
    pykka_ref = Player.start()
    player = pykka_ref._actor_weakref()
    assert player is not None
    return pykka_ref, player


async def test_an_adopted_pykka_actor_answers_calls_as_asks_and_gets_casts_and_sends_in_order(
    system: ActorSystem,
) -> None:
    pykka_ref, _ = start_player()
    ref = await system.spawn(PykkaActorProxy(pykka_ref), name="player")
    ref.cast("a")
    ref.send("b")
    ref.cast("c")
    assert await ref.call("seen") == ["a", "b", "c"]
    with pytest.raises(KeyError):
        await ref.call("fail")
    assert ref.alive
    assert pykka_ref.is_alive()
    assert system.whereis("player") == ref


@pytest.mark.parametrize("how", ["quit", "crash"])
async def test_a_pykka_actor_that_stops_on_its_own_is_reported_as_exited(
    system: ActorSystem, how: str
) -> None:
    pykka_ref, player = start_player()
    watcher = await system.spawn(Recorder(trap_exits=True))
    ref = await system.spawn(PykkaActorProxy(pykka_ref))
    await watcher.call(("link", ref))
    mref = await watcher.call(("monitor", ref))
    ref.cast(how)
    reason = await ref.join(5)
    assert isinstance(reason, PykkaActorStopped)
    assert str(pykka_ref) in str(reason)
    infos = await watcher.call(("wait_for", 2))
    assert Exit(ref, reason) in infos
    assert Down(mref, ref, reason) in infos
    with pytest.raises(ActorExited):
        await ref.call("seen")
    assert player.thread is not None
    player.thread.join(5)
    assert not runtime_threads()


async def test_stopping_the_proxy_stops_the_pykka_actor_and_leaves_no_thread(
    system: ActorSystem,
) -> None:
    pykka_ref, player = start_player()
    ref = await system.spawn(PykkaActorProxy(pykka_ref))
    ref.cast("last words")
    await ref.stop()
    assert not pykka_ref.is_alive()
    assert player.seen == ["last words"]
    assert player.thread is not None
    player.thread.join(5)
    assert not runtime_threads()


async def test_leaving_the_system_stops_adopted_pykka_actors() -> None:
    players = [start_player() for _ in range(2)]
    async with ActorSystem() as system:
        for pykka_ref, _ in players:
            await system.spawn(PykkaActorProxy(pykka_ref))
    assert not any(pykka_ref.is_alive() for pykka_ref, _ in players)
    assert not runtime_threads()
    for _, player in players:
        assert player.thread is not None
        player.thread.join(5)
        assert player.stopped.is_set()


async def test_adopting_a_stopped_pykka_actor_fails_to_start(system: ActorSystem) -> None:
    pykka_ref, _ = start_player()
    pykka_ref.stop()
    with pytest.raises(StartFailed) as failed:
        await system.spawn(PykkaActorProxy(pykka_ref))
    assert isinstance(failed.value.reason, PykkaActorStopped)
