"""Fixtures for runtime tests: a running ActorSystem and small actors used across tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from actors import NOREPLY, Actor, ActorSystem, Caller


@pytest.fixture(
    params=[
        pytest.param("asyncio", id="asyncio"),
        pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> Any:
    """Every runtime test runs on both event loops: asyncio's and uvloop (the opt-in)."""
    return request.param


@pytest.fixture
async def system() -> AsyncIterator[ActorSystem]:
    async with ActorSystem() as system:
        yield system


class Recorder(Actor):
    """Records every info message; `wait_for(n)` resolves once n messages arrived."""

    def __init__(self, trap_exits: bool = False) -> None:
        self.infos: list[Any] = []
        self._trap = trap_exits
        self.waiters: list[tuple[int, Caller]] = []

    async def init(self) -> None:
        self.trap_exits = self._trap

    def handle_info(self, message: Any) -> None:
        self.infos.append(message)
        for waiter in list(self.waiters):
            if len(self.infos) >= waiter[0]:
                self.waiters.remove(waiter)
                waiter[1].reply(list(self.infos))

    async def handle_call(self, message: Any, caller: Caller) -> Any:
        match message:
            case "infos":
                return list(self.infos)
            case ("wait_for", n):
                if len(self.infos) >= n:
                    return list(self.infos)
                self.waiters.append((n, caller))
                return NOREPLY
            case ("link", ref):
                self.link(ref)
                return None
            case ("monitor", ref):
                return self.monitor(ref)
            case ("demonitor", mref, flush):
                self.demonitor(mref, flush=flush)
                return None
            case ("spawn_link", actor):
                return await self.spawn_link(actor)
            case ("exit", ref, reason):
                ref.exit(reason)
                return None
        return await super().handle_call(message, caller)


class Crasher(Actor):
    """Crashes (or exits) on request; answers "ping"."""

    def __init__(self, trap_exits: bool = False) -> None:
        self._trap = trap_exits
        self.terminated_with: list[object] = []

    async def init(self) -> None:
        self.trap_exits = self._trap

    async def handle_call(self, message: Any, caller: Caller) -> Any:
        match message:
            case "ping":
                return "pong"
            case ("crash", exc):
                raise exc
            case ("stop", reason):
                self.stop(reason)
                return "stopping"
            case ("link", ref):
                self.link(ref)
                return None
        return await super().handle_call(message, caller)

    def handle_info(self, message: Any) -> None:
        pass

    async def terminate(self, reason: object) -> None:
        self.terminated_with.append(reason)
