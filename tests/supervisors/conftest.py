"""Test children that record their lifecycle, and a clock the tests move by hand."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from actors import Actor, ActorSystem, Caller, Ignore
from supervisors import ChildSpec


@pytest.fixture
async def system() -> AsyncIterator[ActorSystem]:
    async with ActorSystem() as system:
        yield system


class Journal:
    """A shared, awaitable log of lifecycle events."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, str]] = []
        self._changed = asyncio.Event()

    def add(self, event: str, name: str) -> None:
        self.entries.append((event, name))
        self._changed.set()

    def of(self, event: str) -> list[str]:
        return [name for kind, name in self.entries if kind == event]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 2.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    def clear(self) -> None:
        self.entries.clear()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def journal() -> Journal:
    return Journal()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


class Worker(Actor):
    """Records init/terminate; answers "ping"; crashes or exits on request."""

    def __init__(
        self,
        name: str,
        journal: Journal,
        *,
        trap: bool = True,
        init: str = "ok",
        terminate_hangs: bool = False,
    ) -> None:
        self.name = name
        self.journal = journal
        self.trap = trap
        self.init_mode = init
        self.terminate_hangs = terminate_hangs

    async def init(self) -> None:
        self.trap_exits = self.trap
        if self.init_mode == "raise":
            self.journal.add("init_failed", self.name)
            raise RuntimeError(f"{self.name} cannot start")
        if self.init_mode == "hang":
            await asyncio.Event().wait()
        if self.init_mode == "ignore":
            raise Ignore
        self.journal.add("start", self.name)

    async def handle_call(self, message: Any, caller: Caller) -> Any:
        match message:
            case "ping":
                return self.name
            case ("exit", reason):
                self.stop(reason)
                return None
            case "crash":
                raise RuntimeError(f"{self.name} crashed")
        return await super().handle_call(message, caller)

    def handle_info(self, message: Any) -> None:
        self.journal.add("info", self.name)

    async def terminate(self, reason: object) -> None:
        self.journal.add("terminate", self.name)
        if self.terminate_hangs:
            await asyncio.Event().wait()


def worker(name: str, journal: Journal, **options: Any) -> ChildSpec:
    spec_options = {
        key: options.pop(key)
        for key in ("restart", "shutdown", "significant", "init_timeout", "backoff")
        if key in options
    }
    return ChildSpec(name, start=lambda: Worker(name, journal, **options), **spec_options)
