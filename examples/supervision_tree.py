"""A supervision tree that heals itself: run it and watch restarts happen.

    .venv/bin/python examples/supervision_tree.py

A `rest_for_one` supervisor runs a `Database`, then a `Cache` that depends on it. Crashing the
cache restarts only the cache; crashing the database restarts both, in order. Then the
database crashes too often and the supervisor gives up, exiting with reason "shutdown".
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from actors import Actor, ActorError, ActorSystem, Caller
from supervisors import ChildSpec, Supervisor, which_children


class Service(Actor):
    def __init__(self, name: str) -> None:
        self.name = name

    async def init(self) -> None:
        print(f"  {self.name} started")

    async def handle_call(self, message: Any, caller: Caller) -> Any:
        if message == "crash":
            raise RuntimeError(f"{self.name} lost its connection")
        return f"{self.name} ok"


async def crash(supervisor: Any, child_id: str) -> None:
    [ref] = [c.ref for c in await which_children(supervisor) if c.id == child_id]
    assert ref is not None, f"{child_id} is not running"
    with contextlib.suppress(ActorError):
        await ref.call("crash")
    with contextlib.suppress(ActorError):  # returns once the supervisor has handled the exit
        await which_children(supervisor)


async def main() -> None:
    async with ActorSystem() as system:
        print("starting the tree")
        tree = Supervisor(
            [
                ChildSpec("database", start=lambda: Service("database")),
                ChildSpec("cache", start=lambda: Service("cache")),
            ],
            strategy="rest_for_one",
            max_restarts=2,
            max_seconds=5,
        )
        sup = await system.spawn(tree, name="services")
        print("crashing the cache: only the cache restarts")
        await crash(sup, "cache")
        print("crashing the database: the database and then the cache restart")
        await crash(sup, "database")
        print("crashing the database again: that is the third restart in 5 s")
        await crash(sup, "database")
        print(f"the supervisor gave up with reason {await sup.join()!r}")


if __name__ == "__main__":
    asyncio.run(main())
