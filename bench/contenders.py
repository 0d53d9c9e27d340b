"""The three contenders, each with the same echo actor: Piano, raw asyncio, and pykka.

The actor does the same work in all three: ``handle_call`` returns the message, ``handle_cast``
increments a counter. Piano's and raw asyncio's handlers are coroutines (``async def``, the form
Piano's docs lead with); pykka's ``on_receive`` is a plain method, as pykka requires.

Raw asyncio is the floor a hand-written asyncio program pays for actor-like concurrency: a task
and an `asyncio.Queue` per actor, a Future per call, no timeouts, no links, no supervision.
Pykka uses `pykka.ThreadingActor` (one thread per actor) with ``ask``/``tell``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pykka

from actors import Actor, Caller

__all__ = ["PianoEcho", "PykkaEcho", "RawRef", "raw_spawn"]


class PianoEcho(Actor):
    def __init__(self) -> None:
        self.count = 0

    async def handle_call(self, message: Any, caller: Caller) -> Any:
        return message

    async def handle_cast(self, message: Any) -> None:
        self.count += 1


_CALL, _CAST, _STOP = 0, 1, 2


class RawEcho:
    def __init__(self) -> None:
        self.count = 0
        self.queue: asyncio.Queue[tuple[int, Any, asyncio.Future[Any] | None]] = asyncio.Queue()

    async def handle_call(self, message: Any) -> Any:
        return message

    async def handle_cast(self, message: Any) -> None:
        self.count += 1

    async def run(self) -> None:
        queue = self.queue
        while True:
            kind, message, fut = await queue.get()
            if kind == _CAST:
                await self.handle_cast(message)
            elif kind == _CALL:
                result = await self.handle_call(message)
                assert fut is not None
                if not fut.done():
                    fut.set_result(result)
            else:
                return


class RawRef:
    """What a caller holds for a raw asyncio actor."""

    __slots__ = ("_actor", "_loop", "_queue", "task")

    def __init__(self, actor: RawEcho, task: asyncio.Task[None]) -> None:
        self._actor = actor
        self._queue = actor.queue
        self._loop = task.get_loop()
        self.task = task

    def call(self, message: Any) -> asyncio.Future[Any]:
        fut = self._loop.create_future()
        self._queue.put_nowait((_CALL, message, fut))
        return fut

    def cast(self, message: Any) -> None:
        self._queue.put_nowait((_CAST, message, None))

    async def stop(self) -> None:
        self._queue.put_nowait((_STOP, None, None))
        await self.task


def raw_spawn() -> RawRef:
    actor = RawEcho()
    return RawRef(actor, asyncio.get_running_loop().create_task(actor.run()))


class PykkaEcho(pykka.ThreadingActor):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def on_receive(self, message: Any) -> Any:
        self.count += 1
        return message
