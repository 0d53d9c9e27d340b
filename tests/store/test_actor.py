"""The StoreWriter actor: the one writer, replying once a batch committed,
refusing bad writes without dying, closing the database when it stops."""

from __future__ import annotations

import asyncio
from pathlib import Path

import anyio
import pytest

from actors import ActorSystem, get_state
from piano.store import (
    STORE,
    BatchRejected,
    CreateThread,
    RecordInteraction,
    SetCodexThreadId,
    SetThreadStatus,
    StoreError,
    StoreReader,
    StoreWriter,
    UpsertAgent,
    UpsertSurface,
    UpsertUser,
    WriteBatch,
)
from schemas.events import Interaction, Notice
from supervisors import ChildSpec, Supervisor, which_children
from tests.store.conftest import simple_turn

pytestmark = pytest.mark.anyio


async def test_the_writer_actor_applies_every_write_and_replies_after_commit(path: Path) -> None:
    async with ActorSystem() as system:
        store = await system.spawn(StoreWriter(path), name=STORE)
        for message in (
            UpsertSurface("web", "web", name="Web"),
            UpsertAgent("codex", "codex", model="gpt-5"),
            UpsertUser("u1", "web", "alice"),
            CreateThread("t1", "web", "tab:1", "codex"),
            SetCodexThreadId("t1", "codex-1"),
            RecordInteraction("t1", Interaction(id="i1", text="hi", user="u1")),
        ):
            assert await store.call(message, timeout=10) is None

        seqs = await store.call(WriteBatch(simple_turn("t1", "i1", "turn1", "hello")), timeout=10)

        assert seqs == [1, 2, 3, 4, 5, 6]
        with StoreReader(path) as reader:  # acknowledged: visible to anyone now
            interaction = reader.interaction("i1")
            thread = reader.thread("t1")
        assert interaction is not None
        assert interaction.response == "hello"
        assert thread is not None
        assert thread.codex_thread_id == "codex-1"
        await store.stop(timeout=10)


async def test_a_refused_write_fails_only_its_call_and_the_writer_goes_on(path: Path) -> None:
    async with ActorSystem() as system:
        store = await system.spawn(StoreWriter(path))
        await store.call(UpsertSurface("web", "web"), timeout=10)
        await store.call(UpsertAgent("codex", "codex"), timeout=10)

        with pytest.raises(BatchRejected, match="unknown thread 't1'"):
            await store.call(WriteBatch([Notice(thread_id="t1", level="info", message="x")]), 10)
        with pytest.raises(StoreError, match="unknown thread 't1'"):
            await store.call(SetThreadStatus("t1", "archived"), timeout=10)
        await store.call(CreateThread("t1", "web", "tab:1", "codex"), timeout=10)
        seqs = await store.call(
            WriteBatch([Notice(thread_id="t1", level="info", message="x")]), timeout=10
        )

        state = await get_state(store)

        assert store.alive
        assert seqs == [1]
        assert (state["batches"], state["events"], state["refused"]) == (1, 1, 2)


async def test_readers_on_worker_threads_run_while_the_actor_writes(path: Path) -> None:
    async with ActorSystem() as system:
        store = await system.spawn(StoreWriter(path))
        await store.call(UpsertSurface("web", "web"), timeout=10)
        await store.call(UpsertAgent("codex", "codex"), timeout=10)
        await store.call(CreateThread("t1", "web", "tab:1", "codex"), timeout=10)
        with StoreReader(path) as reader:

            async def write() -> None:
                for n in range(50):
                    notice = Notice(thread_id="t1", level="info", message=str(n))
                    await store.call(WriteBatch([notice] * 4), timeout=10)

            async def read() -> list[int]:
                seen = []
                for _ in range(50):
                    seen.append(await asyncio.to_thread(reader.last_seq, "t1"))
                return seen

            with anyio.fail_after(30):
                _, seen = await asyncio.gather(write(), read())
            assert all(seq % 4 == 0 for seq in seen)
            assert reader.last_seq("t1") == 200


async def test_stopping_the_writer_closes_the_database(path: Path) -> None:
    async with ActorSystem() as system:
        store = await system.spawn(StoreWriter(path))
        await store.call(UpsertSurface("web", "web"), timeout=10)
        assert path.with_name(path.name + "-wal").exists()

        await store.stop(timeout=10)

    assert not path.with_name(path.name + "-wal").exists()  # the last connection checkpointed it


async def test_a_shutdown_from_its_supervisor_closes_the_database(path: Path) -> None:
    async with ActorSystem() as system:
        supervisor = await system.spawn(
            Supervisor([ChildSpec(STORE, start=lambda: StoreWriter(path))])
        )
        store = (await which_children(supervisor))[0].ref
        assert store is not None
        await store.call(UpsertSurface("web", "web"), timeout=10)
        assert path.with_name(path.name + "-wal").exists()

        await supervisor.stop(timeout=10)

    assert not path.with_name(path.name + "-wal").exists()  # terminate ran and closed it
