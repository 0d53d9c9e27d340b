"""Shared pieces of the pipeline tests: a system fixture and an acknowledger that records every
outcome, so that tests can check that each message ends exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from actors import ActorSystem, current_actor
from actors.pipeline import Message
from tests.actors.conftest import anyio_backend

__all__ = ["Ledger", "anyio_backend", "stage_id", "system"]


@pytest.fixture
async def system() -> AsyncIterator[ActorSystem]:
    async with ActorSystem() as system:
        yield system


class Ledger:
    """An acknowledger that records each message's outcomes and wakes waiters."""

    def __init__(self) -> None:
        self.outcomes: dict[int, list[str]] = {}
        self.failed: dict[int, Message] = {}
        self.acked_order: list[Any] = []
        self._changed = asyncio.Event()

    def ack(self, successful: list[Message], failed: list[Message]) -> None:
        for message in successful:
            self.outcomes.setdefault(id(message), []).append("ok")
            self.acked_order.append(message.data)
        for message in failed:
            self.outcomes.setdefault(id(message), []).append("failed")
            self.failed[id(message)] = message
        self._changed.set()

    def ended(self) -> int:
        return sum(len(v) for v in self.outcomes.values())

    async def wait_for(self, count: int, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while self.ended() < count:
                self._changed.clear()
                await self._changed.wait()


def stage_id() -> int:
    """The id of the stage actor running the current handler."""
    actor = current_actor()
    assert actor is not None
    return actor.ref.id
