"""Codex threads survive losing CODEX_HOME, through `piano run` (real codex, fake provider).

Each Codex thread's rollout is kept in the store after every turn. A daemon whose CODEX_HOME
was deleted (a lost state directory, or a conversation moved to a node that never ran it)
writes the rollout back and resumes the same Codex thread, and the model gets the earlier
turns. With the rollout gone from the store too, the thread is rebuilt from Piano's own record
of the conversation under a new Codex id, and the user is told (the resume lines show it).
On PostgreSQL a second daemon (a state directory and CODEX_HOME of its own: another node)
resumes the thread the first one ran.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from piano.agents.codex import PostgresRollouts, SqliteRollouts
from piano.store import PostgresPool, PostgresReader, StoreReader
from tests.acceptance.daemon import chat, daemon_running, write_config
from tests.acceptance.test_postgres import DSN_ENV, STORE
from tests.acceptance.test_surfaces import terminal
from tests.fakes.responses_provider import CodexDirs, FakeResponsesProvider, Text, make_codex_dirs
from tests.postgres import fresh_database

pytestmark = pytest.mark.anyio


@pytest.fixture
def database() -> Iterator[str]:
    with fresh_database() as dsn:
        yield dsn


def logged(log: Path, event: str) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == event]


async def stored_as_on_disk(dirs: CodexDirs, codex_thread_id: str) -> bytes:
    """The rollout the store holds for the thread, checked to be the one in CODEX_HOME."""
    rollouts = SqliteRollouts(dirs.root / "state" / "piano.db")
    found = await rollouts.content(codex_thread_id)
    rollouts.close()
    assert found is not None, "the rollout was not stored"
    head, data = found
    assert (dirs.home / head.path).read_bytes() == data, "the last turn was not stored"
    return data


async def first_run(dirs: CodexDirs, provider: FakeResponsesProvider) -> tuple[Path, str, str]:
    """One turn in conversation "birds", then the daemon stopped and CODEX_HOME deleted:
    the config, Piano's thread id and codex's."""
    config = write_config(dirs, provider)
    state = dirs.root / "state"
    async with daemon_running(config, state / "chat.sock"):
        assert "noted" in await chat(config, "remember PELICANS", "--conversation", "birds")
    with StoreReader(state / "piano.db") as reader:
        [thread] = reader.threads()
    assert thread.codex_thread_id
    assert b"remember PELICANS" in await stored_as_on_disk(dirs, thread.codex_thread_id)
    shutil.rmtree(dirs.home)
    return config, thread.id, thread.codex_thread_id


async def test_a_daemon_whose_codex_home_was_deleted_resumes_the_same_thread_with_its_history(
    dirs: CodexDirs,
) -> None:
    async with FakeResponsesProvider(default=Text("noted")) as provider:
        config, thread_id, codex_id = await first_run(dirs, provider)
        state = dirs.root / "state"
        log = dirs.root / "second.log"
        before = len(provider.requests)
        with log.open("wb") as stderr:
            async with daemon_running(config, state / "chat.sock", stderr=stderr):
                answer = await chat(config, "which birds?", "--conversation", "birds")
    assert "noted" in answer
    assert "no longer had" not in answer
    with StoreReader(state / "piano.db") as reader:
        [thread] = reader.threads()
    assert (thread.id, thread.codex_thread_id) == (thread_id, codex_id)
    history = json.dumps(provider.requests[before:])
    assert "remember PELICANS" in history, "the resumed thread lost its earlier turn"
    [restored] = logged(log, "codex.rollout_restored")
    assert restored["codex_thread"] == codex_id
    assert b"which birds?" in await stored_as_on_disk(dirs, codex_id)


async def test_a_thread_whose_rollout_is_gone_everywhere_is_rebuilt_and_the_user_told(
    dirs: CodexDirs,
) -> None:
    async with FakeResponsesProvider(default=Text("noted")) as provider:
        config, thread_id, lost = await first_run(dirs, provider)
        state = dirs.root / "state"
        rollouts = SqliteRollouts(state / "piano.db")
        await rollouts.forget(lost)
        rollouts.close()
        before = len(provider.requests)
        async with daemon_running(config, state / "chat.sock"):
            answer = await chat(config, "which birds?", "--conversation", "birds")
            with StoreReader(state / "piano.db") as reader:
                [thread] = reader.threads()
            async with terminal(config, "--thread", thread_id) as shell:
                await shell.until(f"Connected to thread {thread_id}")
                await shell.type("/resume")
                shown = await shell.until(r"codex: codex resume (\S+)\n")
                await shell.type("/quit")
    assert thread.id == thread_id
    new = thread.codex_thread_id
    assert new
    assert new != lost
    assert f"Codex no longer had this conversation's thread {lost}" in answer, answer
    assert f"codex resume {new}" in answer, answer
    assert shown.group(1) == new
    history = json.dumps(provider.requests[before:])
    assert "remember PELICANS" in history, "the rebuilt thread was not given the conversation"
    assert "noted" in history


async def test_on_postgresql_a_second_node_resumes_the_thread_with_its_history(
    dirs: CodexDirs, database: str
) -> None:
    """What moving a conversation to another node does to its Codex thread: a second daemon
    (its own state directory and CODEX_HOME, the same PostgreSQL store) resumes the thread the
    first one ran, with its history, and stores what it adds."""
    other = make_codex_dirs()
    env = {**os.environ, DSN_ENV: database}
    try:
        async with FakeResponsesProvider(default=Text("noted")) as provider:
            first = write_config(dirs, provider, STORE)
            async with daemon_running(first, dirs.root / "state" / "chat.sock", env=env):
                await chat(first, "remember PELICANS", "--conversation", "birds")
            second = write_config(other, provider, STORE)
            before = len(provider.requests)
            async with daemon_running(second, other.root / "state" / "chat.sock", env=env):
                answer = await chat(second, "which birds?", "--conversation", "birds")
        assert "no longer had" not in answer
        history = json.dumps(provider.requests[before:])
        assert "remember PELICANS" in history, "the thread lost its history on the second node"
        with PostgresReader(database) as reader:
            [thread] = reader.threads()
            texts = [i.text for i in reader.interactions(thread.id)]
        assert texts == ["remember PELICANS", "which birds?"]
        assert thread.codex_thread_id
        pool = PostgresPool(database)
        found = await PostgresRollouts(pool).content(thread.codex_thread_id)
        await pool.close()
        assert found is not None
        head, data = found
        assert (other.home / head.path).read_bytes() == data
        first_node = (dirs.home / head.path).read_bytes()
        assert data.startswith(first_node), (
            "the second node's rollout does not continue the first's"
        )
        assert b"which birds?" in data
    finally:
        shutil.rmtree(other.root, ignore_errors=True)
