"""A small actor system to try the console on (``piano demo``).

- ``counter``: a `Counter` (``call("counter", "get")``, ``cast("counter", ("add", 5))``);
- ``ticker``: sends itself ``"tick"`` every second with `send_after` and publishes each tick on
  the ``"ticks"`` topic of a duplicate-key `Registry`;
- ``listener``: subscribed to ``"ticks"``, counts what it hears;
- ``manager``: traps exits and keeps a linked ``worker`` alive: ``kill("worker")`` or
  ``call("worker", "crash")`` and see ``tree()`` show the new worker.

`run_demo` serves a console for it until SIGINT or SIGTERM, then shuts everything down.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from typing import Any

from actors._actor import Actor
from actors._reasons import Exit, is_normal_exit
from actors._ref import ActorRef, Caller
from actors._registry import Registry
from actors._system import ActorSystem
from actors.console._server import ConsoleServer

__all__ = ["run_demo"]


class Counter(Actor):
    """Counts: call "get", call or cast ("add", n)."""

    def __init__(self, start: int = 0) -> None:
        self.count = start

    async def handle_call(self, message: Any, caller: Caller) -> Any:
        match message:
            case "get":
                return self.count
            case ("add", int(n)):
                self.count += n
                return self.count
        return await super().handle_call(message, caller)

    async def handle_cast(self, message: Any) -> None:
        match message:
            case ("add", int(n)):
                self.count += n
            case _:
                await super().handle_cast(message)

    def describe(self) -> str:
        return f"count={self.count}"


class Ticker(Actor):
    """Ticks every `interval` seconds and publishes ("tick", n) on the "ticks" topic."""

    def __init__(self, topics: Registry, interval: float = 1.0) -> None:
        self.topics = topics
        self.interval = interval
        self.ticks = 0

    async def init(self) -> None:
        self.send_after(self.interval, "tick")

    async def handle_info(self, message: Any) -> None:
        if message != "tick":
            await super().handle_info(message)
            return
        self.ticks += 1
        event = ("tick", self.ticks)

        def publish(entries: list[tuple[ActorRef, Any]]) -> None:
            for ref, _ in entries:
                ref.send(event)

        self.topics.dispatch("ticks", publish)
        self.send_after(self.interval, "tick")

    def describe(self) -> str:
        return f"ticks={self.ticks}, every {self.interval}s"


class Listener(Actor):
    """Subscribes to the "ticks" topic and remembers how many ticks it heard."""

    def __init__(self, topics: Registry) -> None:
        self.topics = topics
        self.heard = 0
        self.last: int | None = None

    async def init(self) -> None:
        self.topics.register("ticks", self.ref)

    async def handle_info(self, message: Any) -> None:
        match message:
            case ("tick", int(n)):
                self.heard += 1
                self.last = n
            case _:
                await super().handle_info(message)

    def describe(self) -> str:
        return f"heard {self.heard} ticks"


class Worker(Actor):
    """Answers "work"; crashes on "crash"."""

    def __init__(self) -> None:
        self.jobs = 0

    async def handle_call(self, message: Any, caller: Caller) -> Any:
        match message:
            case "work":
                self.jobs += 1
                return f"job {self.jobs} done"
            case "crash":
                raise RuntimeError("crash requested from the console")
        return await super().handle_call(message, caller)


class Manager(Actor):
    """Keeps a linked worker alive, restarting it whenever it exits abnormally."""

    def __init__(self) -> None:
        self.restarts = 0
        self.worker: ActorRef | None = None

    async def init(self) -> None:
        self.trap_exits = True
        self.worker = await self.spawn_link(Worker(), name="worker")

    async def handle_info(self, message: Any) -> None:
        if isinstance(message, Exit) and message.sender == self.worker:
            if not is_normal_exit(message.reason):
                self.restarts += 1
                self.worker = await self.spawn_link(Worker(), name="worker")
            return
        await super().handle_info(message)

    def describe(self) -> str:
        return f"restarts={self.restarts}"


async def start_demo_actors(system: ActorSystem) -> None:
    """Spawn the demo's actors on `system`."""
    topics = Registry(keys="duplicate")
    await system.spawn(Counter(), name="counter")
    await system.spawn(Listener(topics), name="listener")
    await system.spawn(Ticker(topics), name="ticker")
    await system.spawn(Manager(), name="manager")


async def run_demo(path: str | os.PathLike[str]) -> None:
    """Run the demo system with a console on `path` until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)
    try:
        async with ActorSystem() as system, ConsoleServer(system, path):
            await start_demo_actors(system)
            where = os.fspath(path)
            print(f"piano demo: {system.statistics().alive} actors running", flush=True)
            print(f"piano demo: attach with: piano console --socket {where}", flush=True)
            print("piano demo: Ctrl-C or SIGTERM stops it", flush=True)
            await stop.wait()
            print("piano demo: stopping", flush=True)
    finally:
        for signum in signals:
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(signum)
