"""DynamicSupervisor, PartitionSupervisor and TaskSupervisor."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from actors import Actor, ActorExited, ActorSystem, Caller, Down
from supervisors import (
    ChildSpec,
    DynamicSupervisor,
    MaxChildren,
    PartitionSupervisor,
    TaskSupervisor,
    count_children,
    partition_for,
    start_child,
    start_task,
    terminate_child,
    which_children,
    which_partition,
)
from tests.supervisors.conftest import Journal, Worker, worker

pytestmark = pytest.mark.anyio


async def test_a_dynamic_supervisor_starts_children_on_demand_up_to_max_children(
    system: ActorSystem, journal: Journal
) -> None:
    sup = await system.spawn(DynamicSupervisor(max_children=2))
    assert await which_children(sup) == []
    a = await start_child(sup, worker("a", journal))
    b = await start_child(sup, worker("a", journal))
    assert a != b
    with pytest.raises(MaxChildren):
        await start_child(sup, worker("c", journal))
    assert a is not None
    await terminate_child(sup, a)
    assert (await count_children(sup)).active == 1
    with pytest.raises(KeyError):
        await terminate_child(sup, a)


async def test_a_dynamic_supervisor_restarts_a_crashed_permanent_child(
    system: ActorSystem, journal: Journal
) -> None:
    sup = await system.spawn(DynamicSupervisor())
    ref = await start_child(sup, worker("d", journal))
    assert ref is not None
    journal.clear()
    with pytest.raises(ActorExited):
        await ref.call("crash")
    await journal.wait_for(lambda: journal.of("start") == ["d"])
    [info] = await which_children(sup)
    assert info.ref != ref
    assert info.restarts == 1


async def test_a_dynamic_supervisor_stops_its_children_concurrently_on_shutdown(
    system: ActorSystem, journal: Journal
) -> None:
    class Watcher(Actor):
        def handle_info(self, message: Any) -> None:
            if isinstance(message, Down):
                journal.add("down", message.actor._actor.name)  # type: ignore[attr-defined]

    sup = await system.spawn(DynamicSupervisor())
    watcher = await system.spawn(Watcher())
    for name in ("s1", "s2", "s3"):
        ref = await start_child(sup, worker(name, journal, terminate_hangs=True, shutdown=0.2))
        assert ref is not None
        watcher._actor.monitor(ref)
    await sup.stop("shutdown")
    await journal.wait_for(lambda: len(journal.of("down")) == 3)
    kinds = [kind for kind, _ in journal.entries if kind in ("terminate", "down")]
    assert kinds == ["terminate"] * 3 + ["down"] * 3, "children were stopped one after another"
    assert system.statistics().alive == 1


class Shard(Actor):
    def __init__(self, index: int) -> None:
        self.index = index

    async def handle_call(self, message: Any, caller: Caller) -> Any:
        if message == "crash":
            raise RuntimeError("shard crashed")
        return self.index


async def test_a_partition_supervisor_routes_every_key_to_one_stable_partition(
    system: ActorSystem,
) -> None:
    sup = await system.spawn(PartitionSupervisor(Shard, partitions=4))
    assert len(await which_children(sup)) == 4
    for key in ["thread:1", "thread:2", 7, -7, ("chat", 3)]:
        expected = partition_for(key, 4)
        assert await which_partition(sup, key).call("which") == expected
        assert await which_partition(sup, key).call("which") == expected
    assert partition_for(-7, 4) == 3
    with pytest.raises(TypeError, match="hashable"):
        which_partition(sup, ["unhashable"])


async def test_a_crashed_partition_is_restarted_with_the_same_index(system: ActorSystem) -> None:
    sup = await system.spawn(PartitionSupervisor(Shard, partitions=3))
    first = which_partition(sup, 1)
    with pytest.raises(ActorExited):
        await first.call("crash")
    await first.join()
    with pytest.raises(ActorExited, match="partition 1 is not running"):
        which_partition(sup, 1)
    await which_children(sup)  # handled after the supervisor has restarted the partition
    second = which_partition(sup, 1)
    assert second != first
    assert await second.call("which") == 1


async def test_a_supervised_task_returns_its_result(system: ActorSystem) -> None:
    tasks = await system.spawn(TaskSupervisor())

    async def add(a: int, b: int) -> int:
        await asyncio.sleep(0)
        return a + b

    handle = await start_task(tasks, add, 2, 3)
    assert await handle.result(timeout=2) == 5
    assert await handle.ref.join(timeout=2) == "normal"


async def test_a_crashed_task_raises_actor_exited_and_is_not_restarted(
    system: ActorSystem,
) -> None:
    tasks = await system.spawn(TaskSupervisor())

    async def fail() -> None:
        raise ValueError("task failed")

    handle = await start_task(tasks, fail)
    with pytest.raises(ActorExited) as info:
        await handle.result(timeout=2)
    assert isinstance(info.value.reason, ValueError)
    await handle.ref.join()
    assert (await count_children(tasks)).active == 0


async def test_a_linked_task_takes_its_caller_down_when_it_crashes(
    system: ActorSystem, journal: Journal
) -> None:
    tasks = await system.spawn(TaskSupervisor())

    async def fail() -> None:
        raise ValueError("linked task failed")

    class Caller_(Worker):
        async def handle_call(self, message: Any, caller: Caller) -> Any:
            if message == "run":
                handle = await start_task(tasks, fail, link=True)
                return handle.ref
            return await super().handle_call(message, caller)

    owner = await system.spawn(Caller_("owner", journal, trap=False))
    task_ref = await owner.call("run")
    await task_ref.join()
    reason = await owner.join(timeout=2)
    assert isinstance(reason, ValueError)


async def test_stopping_the_task_supervisor_stops_running_tasks(system: ActorSystem) -> None:
    tasks = await system.spawn(TaskSupervisor())

    async def forever() -> None:
        await asyncio.Event().wait()

    handle = await start_task(tasks, forever)
    await tasks.stop("shutdown")
    with pytest.raises(ActorExited):
        await handle.result(timeout=2)


async def test_a_start_failure_leaves_no_child_behind(
    system: ActorSystem, journal: Journal
) -> None:
    sup = await system.spawn(DynamicSupervisor())
    with pytest.raises(Exception, match="cannot start"):
        await start_child(sup, ChildSpec("bad", start=lambda: Worker("bad", journal, init="raise")))
    assert (await count_children(sup)).active == 0
