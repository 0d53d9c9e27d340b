"""The daemon's event pipeline (piano.events): an event the store refuses is logged with the
event and dropped, the rest of its batch is stored in order, and the pipeline goes on; a batch
waits out a restart of the store and is then written, losing nothing; a batch whose reply was
lost after it committed is retried with the same seqs and doubles nothing; a batch numbered
from a stale count is numbered again."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import anyio
import pytest
import structlog

from actors import ActorRef, ActorSystem, Caller, Registry, info, suspend
from actors.pipeline import push, push_many
from piano.events import EVENTS, event_pipeline
from piano.store import (
    STORE,
    CreateThread,
    StoreReader,
    StoreWriter,
    UpsertAgent,
    UpsertSurface,
    WriteBatch,
)
from schemas.events import Item, ItemCompleted, Notice
from supervisors import ChildSpec, Supervisor

pytestmark = pytest.mark.anyio


def _notice(text: str) -> Notice:
    return Notice(thread_id="t1", level="info", message=text)


async def _thread_t1(store: ActorRef) -> None:
    """A web surface, a codex agent and thread t1, through the store writer."""
    for write in (
        UpsertSurface("web", "web"),
        UpsertAgent("codex", "codex"),
        CreateThread("t1", "web", "tab:1", "codex"),
    ):
        await store.call(write, timeout=10)


def _journal(database: Path) -> list[tuple[int, str]]:
    with StoreReader(database) as reader:
        return [
            (entry.seq, entry.event.message)  # type: ignore[union-attr]
            for entry in reader.events_since("t1", 0)
        ]


async def test_a_refused_event_is_logged_and_dropped_and_the_rest_of_its_batch_is_stored(
    tmp_path: Path,
) -> None:
    database = tmp_path / "piano.db"
    refused = ItemCompleted(
        thread_id="t1", interaction_id="no-such-interaction", item=Item(id="c", kind="command")
    )
    with structlog.testing.capture_logs() as logs:
        async with ActorSystem() as system:
            store = await system.spawn(StoreWriter(database), name=STORE)
            await _thread_t1(store)
            ref = await system.spawn(
                event_pipeline(Registry(keys="duplicate"), lambda: system.whereis(STORE)),
                name=EVENTS,
            )
            await push_many(ref, [_notice("a"), refused, _notice("c")])
            await push(ref, _notice("d"))
            await ref.stop(timeout=10)

    assert _journal(database) == [
        (1, "a"),
        (2, "c"),
        (3, "d"),
    ]
    not_stored = [entry for entry in logs if entry["event"] == "events.not_stored"]
    assert [entry["thread_event"] for entry in not_stored] == [refused]
    assert "unknown interaction 'no-such-interaction'" in not_stored[0]["reason"]


async def test_a_batch_waits_out_a_store_restart_and_nothing_is_lost(tmp_path: Path) -> None:
    database = tmp_path / "piano.db"
    with structlog.testing.capture_logs() as logs:
        async with ActorSystem() as system:
            spec = ChildSpec(STORE, start=lambda: StoreWriter(database), name=STORE)
            await system.spawn(Supervisor([spec]))
            store = system.whereis(STORE)
            assert store is not None
            await _thread_t1(store)
            writing = asyncio.Event()

            def writer() -> ActorRef | None:
                writing.set()  # the batch processor looks the store up, then calls it at once
                return system.whereis(STORE)

            ref = await system.spawn(
                event_pipeline(Registry(keys="duplicate"), writer), name=EVENTS
            )
            await suspend(store)  # the batch's write waits in the store's mailbox...
            await push_many(ref, [_notice("a"), _notice("b")])
            with anyio.fail_after(10):
                await writing.wait()
            assert info(store).mailbox_length == 1
            store.exit("kill")  # ...and fails: its supervisor restarts the store
            await push(ref, _notice("c"))
            await ref.stop(timeout=10)

    assert _journal(database) == [
        (1, "a"),
        (2, "b"),
        (3, "c"),
    ]
    assert [entry for entry in logs if entry["event"] == "events.store_unavailable"]
    assert not [entry for entry in logs if entry["event"] == "events.not_stored"]


class _ReplyLost(Exception):
    """The writer died between COMMIT and its reply."""


async def test_a_batch_whose_reply_was_lost_after_commit_is_retried_without_duplicates(
    tmp_path: Path,
) -> None:
    database = tmp_path / "piano.db"
    crashes: list[int] = []

    class LosesTheFirstReply(StoreWriter):
        """Commits the first batch of notices, then crashes instead of answering (as a SIGKILL
        between COMMIT and the reply would); its restarted successor answers."""

        async def handle_call(self, message: Any, caller: Caller) -> Any:
            result = await super().handle_call(message, caller)
            if isinstance(message, WriteBatch) and not crashes:
                crashes.append(len(message.events))
                raise _ReplyLost
            return result

    async with ActorSystem() as system:
        spec = ChildSpec(STORE, start=lambda: LosesTheFirstReply(database), name=STORE)
        await system.spawn(Supervisor([spec]))
        store = system.whereis(STORE)
        assert store is not None
        await _thread_t1(store)
        ref = await system.spawn(
            event_pipeline(Registry(keys="duplicate"), lambda: system.whereis(STORE)),
            name=EVENTS,
        )
        await push_many(ref, [_notice("a"), _notice("b")])
        await push(ref, _notice("c"))
        await ref.stop(timeout=10)

    assert crashes  # the first batch did commit and its reply was lost
    assert _journal(database) == [
        (1, "a"),
        (2, "b"),
        (3, "c"),
    ]


async def test_a_batch_numbered_from_a_stale_count_is_renumbered_and_stored_not_dropped(
    tmp_path: Path,
) -> None:
    database = tmp_path / "piano.db"
    stored: list[str] = []
    first_stored = asyncio.Event()

    def on_stored(events: list[Any]) -> None:
        stored.extend(event.message for event in events)
        first_stored.set()

    with structlog.testing.capture_logs() as logs:
        async with ActorSystem() as system:
            store = await system.spawn(StoreWriter(database), name=STORE)
            await _thread_t1(store)
            ref = await system.spawn(
                event_pipeline(Registry(keys="duplicate"), lambda: store, stored=on_stored),
                name=EVENTS,
            )
            await push(ref, _notice("a"))  # the pipeline now counts t1's journal to 1...
            with anyio.fail_after(10):
                await first_stored.wait()
            await store.call(WriteBatch([_notice("behind its back")]), timeout=10)  # ...it is 2
            await push(ref, _notice("b"))  # numbered 2: taken, so numbered again
            await ref.stop(timeout=10)

    assert _journal(database) == [(1, "a"), (2, "behind its back"), (3, "b")]
    assert stored == ["a", "b"]
    refused = [entry["error"] for entry in logs if entry["event"] == "store.write_refused"]
    assert refused == [
        "batch rejected at event 0 (Notice, thread 't1'): seq 2 of thread 't1' is another event's"
    ]
    assert not [entry for entry in logs if entry["event"] == "events.not_stored"]
