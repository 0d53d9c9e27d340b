"""Codex threads kept in the store: codex's internals they rely on, and the rollouts' store.

The first test is the canary for a codex upgrade: Piano moves a Codex thread by copying its
rollout file to the same relative path under another CODEX_HOME and resuming it, and that
works only because of how codex 0.169.0 lays out, finds and locks rollouts. If an upgrade
changes any of it, this test fails naming what changed.

The others prove the rollouts' store (SQLite and a real PostgreSQL server) and what saving and
restoring do to files, including a planted link and a forged path.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from piano.agents.codex import (
    ROLLOUT_LOST,
    MemoryRollouts,
    PostgresRollouts,
    RolloutError,
    RolloutStore,
    SqliteRollouts,
    relative_rollout_path,
    restore_rollout,
    save_rollout,
)
from piano.agents.codex._rollouts import MAX_CHUNKS
from piano.codex import CodexProcess, CodexRpcError
from piano.store import PostgresBackend, PostgresPool
from schemas.codex import (
    TextInput,
    ThreadInjectItemsParams,
    ThreadLoadedListParams,
    ThreadResumeParams,
    ThreadStartParams,
    TurnStartParams,
)
from tests.fakes.responses_provider import (
    CodexDirs,
    FakeResponsesProvider,
    Text,
    make_codex_dirs,
    write_codex_home,
)
from tests.postgres import pg_dsn

__all__ = ["pg_dsn"]

pytestmark = pytest.mark.anyio

THREAD = "01a24573-3f1a-7c93-963d-c74b7a67b431"
RELATIVE = f"sessions/2026/12/05/rollout-2026-12-05T09-05-10-{THREAD}.jsonl"


class Codex:
    """A real `codex app-server` on a CODEX_HOME of its own; `turn` runs one turn and waits
    for its ``turn/completed``."""

    def __init__(self, dirs: CodexDirs) -> None:
        self.dirs = dirs
        self.completed: asyncio.Queue[str] = asyncio.Queue()
        self.process = CodexProcess(
            env=dirs.env, cwd=dirs.work, on_notification=self._notified, request_timeout=30
        )

    def _notified(self, thread_id: str | None, method: str, params: object) -> None:
        if method == "turn/completed" and thread_id is not None:
            self.completed.put_nowait(thread_id)

    async def turn(self, thread_id: str, text: str) -> None:
        await self.process.call(TurnStartParams(thread_id=thread_id, input=[TextInput(text=text)]))
        async with asyncio.timeout(60):
            assert await self.completed.get() == thread_id


@pytest.fixture
async def provider() -> AsyncIterator[FakeResponsesProvider]:
    async with FakeResponsesProvider(default=Text("noted")) as fake:
        yield fake


async def codex_on(dirs: CodexDirs, provider: FakeResponsesProvider) -> Codex:
    write_codex_home(dirs.home, provider.base_url)
    codex = Codex(dirs)
    await codex.process.start()
    return codex


async def test_codex_keeps_resumes_from_a_copy_and_locks_rollouts_as_piano_relies_on(
    provider: FakeResponsesProvider,
) -> None:
    first, second = make_codex_dirs(), make_codex_dirs()
    try:
        a = await codex_on(first, provider)
        started = await a.process.call(ThreadStartParams(cwd=str(first.work)))
        thread = started.thread.id
        assert a.process.codex_home is not None
        assert started.thread.path, "thread/start no longer names the rollout's path"
        # The layout: sessions/YYYY/MM/DD/rollout-<time>-<thread id>.jsonl under CODEX_HOME.
        relative = relative_rollout_path(a.process.codex_home, started.thread.path, thread)
        await a.turn(thread, "the first message, about PELICANS")
        written = (Path(a.process.codex_home) / relative).read_bytes()
        assert written.endswith(b"\n"), "the rollout is not whole lines at turn/completed"
        assert b"PELICANS" in written
        loaded = await a.process.call(ThreadLoadedListParams())
        assert thread in loaded.data, "thread/loaded/list does not list a loaded thread"

        # The writer lock: a second app-server on the same home may not resume a loaded thread.
        b = Codex(first)
        await b.process.start()
        with pytest.raises(CodexRpcError, match="already has an active writer"):
            await b.process.call(ThreadResumeParams(thread_id=thread, exclude_turns=True))
        await b.process.close()

        # Resume from a copy: the file alone, at the same relative path, in a fresh home.
        await a.process.close()
        c = await codex_on(second, provider)
        assert c.process.codex_home is not None
        copy = Path(c.process.codex_home) / relative
        copy.parent.mkdir(parents=True)
        copy.write_bytes(written)
        with pytest.raises(CodexRpcError, match=ROLLOUT_LOST):
            await c.process.call(
                ThreadResumeParams(thread_id=THREAD.replace("01a2", "01a3"), exclude_turns=True)
            )
        resumed = await c.process.call(ThreadResumeParams(thread_id=thread, exclude_turns=True))
        assert resumed.thread.id == thread
        assert resumed.thread.path is not None
        assert relative_rollout_path(c.process.codex_home, resumed.thread.path, thread) == relative
        before = len(provider.requests)
        await c.turn(thread, "the second message")
        history = json.dumps(provider.requests[before])
        assert "PELICANS" in history, "a resumed copy did not give the model the earlier turn"

        # A thread rebuilt from Piano's items: thread/inject_items reaches the model.
        fresh = await c.process.call(ThreadStartParams(cwd=str(second.work)))
        await c.process.call(
            ThreadInjectItemsParams(
                thread_id=fresh.thread.id,
                items=[
                    {
                        "type": "message",
                        "role": "user",
                        "content": [{"type": "input_text", "text": "remember ALBATROSS"}],
                    },
                    {
                        "type": "message",
                        "role": "assistant",
                        "content": [{"type": "output_text", "text": "noted ALBATROSS"}],
                    },
                ],
            )
        )
        before = len(provider.requests)
        await c.turn(fresh.thread.id, "which bird?")
        history = json.dumps(provider.requests[before])
        assert "remember ALBATROSS" in history
        assert "noted ALBATROSS" in history
        await c.process.close()
    finally:
        shutil.rmtree(first.root, ignore_errors=True)
        shutil.rmtree(second.root, ignore_errors=True)


# -- the store ----------------------------------------------------------------------------------


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RolloutStore]:
    if request.param == "memory":
        yield MemoryRollouts()
    elif request.param == "sqlite":
        sqlite = SqliteRollouts(tmp_path / "piano.db")
        yield sqlite
        sqlite.close()
    else:
        dsn = request.getfixturevalue("pg_dsn")
        backend = await PostgresBackend.open(dsn)  # migrates every owner's tables
        await backend.close()
        pool = PostgresPool(dsn)
        yield PostgresRollouts(pool)
        await pool.close()


def home_with(tmp_path: Path, content: bytes) -> tuple[Path, Path]:
    home = tmp_path / "home"
    target = home / RELATIVE
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(content)
    return home, target


async def test_each_save_appends_what_codex_added_and_a_rewritten_file_is_stored_whole(
    store: RolloutStore, tmp_path: Path
) -> None:
    home, target = home_with(tmp_path, b'{"a":1}\n')
    assert await save_rollout(store, home, THREAD, "t1", target) == ("replaced", 8)
    assert await save_rollout(store, home, THREAD, "t1", target) == ("unchanged", 0)
    with target.open("ab") as file:
        file.write(b'{"b":2}\n{"c":')  # codex is still writing the last line
    assert await save_rollout(store, home, THREAD, "t1", target) == ("appended", 8)
    found = await store.content(THREAD)
    assert found is not None
    head, data = found
    assert data == b'{"a":1}\n{"b":2}\n'
    assert (head.path, head.size, head.chunks) == (RELATIVE, 16, 2)
    assert head.digest == hashlib.sha256(data).hexdigest()

    target.write_bytes(b'{"z":0}\n{"y":1}\n{"x":2}\n')  # not a continuation: stored whole
    assert await save_rollout(store, home, THREAD, "t1", target) == ("replaced", 24)
    found = await store.content(THREAD)
    assert found is not None
    assert found[1] == target.read_bytes()
    assert found[0].chunks == 1


async def test_a_file_that_is_only_the_start_of_the_stored_rollout_never_shrinks_it(
    store: RolloutStore, tmp_path: Path
) -> None:
    home, target = home_with(tmp_path, b"one\ntwo\n")
    await save_rollout(store, home, THREAD, "t1", target)
    target.write_bytes(b"one\n")  # a node left behind: the thread went on elsewhere
    assert await save_rollout(store, home, THREAD, "t1", target) == ("behind", 0)
    found = await store.content(THREAD)
    assert found is not None
    assert found[1] == b"one\ntwo\n"


async def test_an_append_is_refused_when_the_stored_rollout_changed_since_it_was_read(
    store: RolloutStore, tmp_path: Path
) -> None:
    await store.replace(THREAD, "t1", RELATIVE, b"one\n", hashlib.sha256(b"one\n").hexdigest())
    head = await store.head(THREAD)
    assert head is not None
    await store.replace(THREAD, "t1", RELATIVE, b"other\n", hashlib.sha256(b"other\n").hexdigest())
    digest = hashlib.sha256(b"one\ntwo\n").hexdigest()
    assert not await store.append(THREAD, head, b"two\n", digest)
    found = await store.content(THREAD)
    assert found is not None
    assert found[1] == b"other\n"


async def test_a_long_thread_is_stored_whole_again_past_the_chunk_limit(
    store: RolloutStore, tmp_path: Path
) -> None:
    home, target = home_with(tmp_path, b"0\n")
    for n in range(MAX_CHUNKS + 1):
        with target.open("ab") as file:
            file.write(f"{n}\n".encode())
        await save_rollout(store, home, THREAD, "t1", target)
    head = await store.head(THREAD)
    assert head is not None
    assert head.chunks <= MAX_CHUNKS
    found = await store.content(THREAD)
    assert found is not None
    assert found[1] == target.read_bytes()


async def test_restoring_writes_a_missing_or_stale_rollout_and_never_touches_a_loaded_one(
    store: RolloutStore, tmp_path: Path
) -> None:
    home, target = home_with(tmp_path, b"one\ntwo\n")
    await save_rollout(store, home, THREAD, "t1", target)
    elsewhere = tmp_path / "elsewhere"
    assert await restore_rollout(store, elsewhere, THREAD, loaded=False) == ("written", 8)
    restored = elsewhere / RELATIVE
    assert restored.read_bytes() == b"one\ntwo\n"
    assert restored.stat().st_mode & 0o777 == 0o600
    assert restored.parent.stat().st_mode & 0o777 == 0o700

    target.write_bytes(b"one\ntwo\nthree\n")  # killed before its last save: newer, kept
    assert await restore_rollout(store, home, THREAD, loaded=False) == ("kept", 0)
    assert target.read_bytes() == b"one\ntwo\nthree\n"

    assert await restore_rollout(store, home, THREAD, loaded=True) == ("loaded", 0)
    target.write_bytes(b"one\n")  # the thread went on elsewhere: replaced, unless loaded
    assert await restore_rollout(store, home, THREAD, loaded=True) == ("stale", 0)
    assert target.read_bytes() == b"one\n", "a loaded thread's file was touched"
    assert await restore_rollout(store, home, THREAD, loaded=False) == ("written", 8)
    assert target.read_bytes() == b"one\ntwo\n"

    await store.forget(THREAD)
    assert await restore_rollout(store, tmp_path / "new", THREAD, loaded=False) == (
        "not stored",
        0,
    )


async def test_a_link_planted_at_a_rollouts_place_is_neither_read_nor_followed(
    tmp_path: Path,
) -> None:
    store = MemoryRollouts()
    secret = tmp_path / "piano.db"
    secret.write_bytes(b"every conversation\n")
    home, target = home_with(tmp_path, b"")
    target.unlink()
    target.symlink_to(secret)
    with pytest.raises(RolloutError, match="cannot be read safely"):
        await save_rollout(store, home, THREAD, "t1", target)
    assert await store.head(THREAD) is None

    await store.replace(THREAD, "t1", RELATIVE, b"one\n", hashlib.sha256(b"one\n").hexdigest())
    assert await restore_rollout(store, home, THREAD, loaded=False) == ("written", 4)
    assert secret.read_bytes() == b"every conversation\n", "the link was followed"
    assert not target.is_symlink()

    day = target.parent
    shutil.rmtree(day)
    outside = tmp_path / "outside"
    outside.mkdir()
    day.symlink_to(outside)
    with pytest.raises(RolloutError, match="cannot be written safely"):
        await restore_rollout(store, home, THREAD, loaded=False)
    assert os.listdir(outside) == []


@pytest.mark.parametrize(
    "relative",
    [
        f"sessions/../../etc/rollout-x-{THREAD}.jsonl",
        f"sessions/2026/12/05/rollout-x-{THREAD}.jsonl/../../../../x",
        "sessions/2026/12/05/rollout-x-01a24573-0000-0000-0000-000000000000.jsonl",
        f"config.toml-{THREAD}.jsonl",
    ],
)
async def test_a_forged_stored_path_is_refused(relative: str, tmp_path: Path) -> None:
    store = MemoryRollouts()
    await store.replace(THREAD, "t1", relative, b"x\n", hashlib.sha256(b"x\n").hexdigest())
    with pytest.raises(RolloutError):
        await restore_rollout(store, tmp_path / "home", THREAD, loaded=False)
    assert not (tmp_path / "home").exists() or not any((tmp_path / "home").rglob("*x*"))


async def test_a_stored_rollout_that_does_not_match_its_digest_is_not_written(
    tmp_path: Path,
) -> None:
    store = MemoryRollouts()
    await store.replace(THREAD, "t1", RELATIVE, b"tampered\n", hashlib.sha256(b"x\n").hexdigest())
    with pytest.raises(RolloutError, match="digest"):
        await restore_rollout(store, tmp_path / "home", THREAD, loaded=False)
    assert not (tmp_path / "home" / RELATIVE).exists()
