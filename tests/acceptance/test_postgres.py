"""The daemon on a PostgreSQL store (`[store] backend = "postgres"`), through `piano run`, the
real codex and `piano chat`, against a real PostgreSQL server: answers stored there and nowhere
else; a database restart mid-turn loses and doubles nothing; a wrong DSN or a missing database
is one line in the log while the daemon keeps running, and it stores again once the database is
there; a full disk on the database server refuses a new message with one line for the user (and
one in the log), delays an accepted answer (shown, stored once space is freed), and loses and
doubles nothing."""

from __future__ import annotations

import ast
import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import anyio
import psycopg
import pytest
from psycopg import sql

from piano.store import InteractionRecord, PostgresReader, safe_dsn
from tests.acceptance.daemon import PIANO, chat, console, daemon_running, write_config
from tests.acceptance.test_recovery import fill
from tests.fakes.responses_provider import CodexDirs, FakeResponsesProvider, Hang, Text
from tests.postgres import TempCluster, admin_dsn, fresh_database, pg_cluster, small_filesystem

__all__ = ["pg_cluster"]

pytestmark = pytest.mark.anyio

DSN_ENV = "PIANO_ACCEPTANCE_STORE_DSN"
STORE = f'[store]\nbackend = "postgres"\ndsn_env = "{DSN_ENV}"\nconnect_timeout = 3\n'


@pytest.fixture
def database() -> Iterator[str]:
    with fresh_database() as dsn:
        yield dsn


def _env(dsn: str) -> dict[str, str]:
    return {**os.environ, DSN_ENV: dsn}


async def interactions_once(dsn: str, done: object) -> dict[str, InteractionRecord]:
    """The only thread's interactions by text once `done(found)` holds (up to 60 s)."""
    assert callable(done)
    with anyio.fail_after(60):
        while True:
            with PostgresReader(dsn) as reader:
                found = {i.text: i for t in reader.threads() for i in reader.interactions(t.id)}
            if done(found):
                return found
            await anyio.sleep(0.05)


def journal_is_whole(dsn: str) -> list[tuple[str, int]]:
    """Each thread's journal seqs; asserts they are exactly 1..n (nothing lost, nothing doubled)."""
    with psycopg.connect(dsn) as connection:
        rows = connection.execute("SELECT thread_id, seq FROM events ORDER BY 1, 2").fetchall()
    by_thread: dict[str, list[int]] = {}
    for thread, seq in rows:
        by_thread.setdefault(thread, []).append(seq)
    for thread, seqs in by_thread.items():
        assert seqs == list(range(1, len(seqs) + 1)), f"thread {thread}: journal {seqs}"
    return [(str(thread), int(seq)) for thread, seq in rows]


async def _web_get(state: Path, path: str, token: str) -> tuple[int, str]:
    host, port = ast.literal_eval(
        await console(
            state,
            "from piano.web import stream_address",
            "print(await stream_address(whereis('surface:web')))",
        )
    )
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"http://{host}:{port}{path}", headers={"Authorization": f"Bearer {token}"}
        ) as response,
    ):
        return response.status, await response.text()


async def test_a_message_is_answered_and_every_table_is_written_in_postgresql_only(
    dirs: CodexDirs, database: str
) -> None:
    token = "w" * 32
    async with FakeResponsesProvider() as provider:
        provider.script(Text("stored in postgres", deltas=5))
        config = write_config(dirs, provider, STORE + "[web]\nenabled = true\nport = 0\n")
        state = dirs.root / "state"
        env = {**_env(database), "PIANO_WEB_TOKEN": token}
        async with daemon_running(config, state / "chat.sock", env=env):
            assert "stored in postgres" in await chat(config, "hello")
            found = await interactions_once(
                database, lambda f: "hello" in f and f["hello"].status == "completed"
            )
            status, body = await _web_get(state, "/api/threads", token)
            assert status == 200, body
            [listed] = json.loads(body)["threads"]
            status, body = await _web_get(state, f"/api/threads/{listed['id']}/transcript", token)
            assert status == 200, body
            assert "stored in postgres" in body
    assert found["hello"].response == "stored in postgres"
    assert not (state / "piano.db").exists(), "a SQLite store was written beside PostgreSQL"
    with PostgresReader(database) as reader:
        [thread] = reader.threads()
        items = reader.thread_items(thread.id)
        assert [i.text for i in items if i.kind == "agent_message"] == ["stored in postgres"]
        assert reader.usage(thread.id).total_tokens > 0
        transcript = reader.export_transcript(thread.id)
    assert "stored in postgres" in transcript
    journal_is_whole(database)


async def test_a_database_restart_mid_turn_loses_nothing_and_doubles_nothing(
    dirs: CodexDirs, pg_cluster: TempCluster, tmp_path: Path
) -> None:
    with fresh_database(pg_cluster.dsn) as dsn:
        async with FakeResponsesProvider() as provider:
            hang = Hang()
            provider.script(hang, Text("after the restart " * 20, deltas=40))
            config = write_config(dirs, provider, STORE)
            state = dirs.root / "state"
            log = (tmp_path / "daemon.log").open("wb")
            async with daemon_running(config, state / "chat.sock", env=_env(dsn), stderr=log):
                first = await anyio.open_process(
                    [*PIANO, "chat", "--config", str(config), "--message", "first"]
                )
                await provider.wait_requests(1)  # the turn is running: its start is stored
                await interactions_once(
                    dsn, lambda f: "first" in f and f["first"].status == "in_progress"
                )
                pg_cluster.restart()  # immediate stop: every connection is cut
                hang.release()  # the turn's end is written after the restart
                await first.wait()
                answer = await chat(config, "second")
                found = await interactions_once(
                    dsn,
                    lambda f: (
                        "second" in f
                        and f["second"].status == "completed"
                        and f["first"].status == "completed"
                    ),
                )
            log.close()
        assert "after the restart" in answer
        assert found["second"].response.strip() == ("after the restart " * 20).strip()
        with PostgresReader(dsn) as reader:
            [thread] = reader.threads()
            assert len(reader.interactions(thread.id)) == 2
            messages = [i.text for i in reader.thread_items(thread.id) if i.kind == "agent_message"]
        assert messages == [found["second"].response], "an answer was lost or doubled"
        journal = journal_is_whole(dsn)
        assert len(journal) == len(set(journal))
        lines = [json.loads(line) for line in (tmp_path / "daemon.log").read_text().splitlines()]
        assert any(line.get("event") == "events.store_unavailable" for line in lines) or any(
            line.get("event") == "store.reconnecting" for line in lines
        ), "the restart was not noticed: the test did not test a restart"


async def test_a_missing_database_is_one_log_line_and_the_daemon_stores_once_it_exists(
    dirs: CodexDirs, tmp_path: Path
) -> None:
    admin = admin_dsn()
    name = f"piano_test_late_{os.getpid()}"
    dsn = psycopg.conninfo.make_conninfo(admin, dbname=name)
    try:
        await _late_database(dirs, tmp_path, admin, name, dsn)
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


async def _late_database(dirs: CodexDirs, tmp_path: Path, admin: str, name: str, dsn: str) -> None:
    async with FakeResponsesProvider() as provider:
        provider.script(Text("now it is there"))
        config = write_config(dirs, provider, STORE)
        state = dirs.root / "state"
        log_path = tmp_path / "daemon.log"
        with log_path.open("wb") as log:
            async with daemon_running(config, state / "chat.sock", env=_env(dsn), stderr=log):
                refused = await anyio.run_process(
                    [*PIANO, "chat", "--config", str(config), "--message", "too early"],
                    check=False,
                )
                with psycopg.connect(admin, autocommit=True) as connection:
                    connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                answer = await chat(config, "hello")
                found = await interactions_once(
                    dsn, lambda f: "hello" in f and f["hello"].status == "completed"
                )
        lines = [json.loads(line) for line in log_path.read_text().splitlines()]
        unavailable = [line for line in lines if line.get("event") == "store.unavailable"]
        assert unavailable, "the daemon did not say the store is unavailable"
        assert f'database "{name}" does not exist' in unavailable[0]["error"]
        assert "\n" not in unavailable[0]["error"]
        assert "now it is there" in answer
        assert found["hello"].response == "now it is there"
        assert "too early" not in found, "a message refused at the time was stored later"
        output = (refused.stdout + refused.stderr).decode()
        said = [line for line in output.splitlines() if "does not exist" in line]
        assert said == [
            f"! error: cannot connect to PostgreSQL at {safe_dsn(dsn)}: "
            f'database "{name}" does not exist'
        ], output


async def test_an_unset_dsn_variable_stops_piano_run_with_one_line_naming_it(
    dirs: CodexDirs,
) -> None:
    async with FakeResponsesProvider() as provider:
        config = write_config(dirs, provider, STORE)
        env = {k: v for k, v in os.environ.items() if k != DSN_ENV}
        done = await anyio.run_process(
            [*PIANO, "run", "--config", str(config)], env=env, check=False
        )
    assert done.returncode == 2
    assert done.stderr.decode().splitlines() == [
        f'piano: {config}: store.dsn_env: backend = "postgres" reads the DSN from ${DSN_ENV}, '
        f"which is not set: export {DSN_ENV}=postgresql://user@host:5432/dbname"
    ]


@contextlib.contextmanager
def database_on_a_small_disk(cluster: TempCluster) -> Iterator[tuple[Path, str]]:
    """A fresh database whose every table lives in a tablespace on a 16 MiB tmpfs (to fill
    with a file): the mount point and the DSN. The database, tablespace and mount go after."""
    with small_filesystem(cluster, "16m") as small:
        with psycopg.connect(cluster.dsn, autocommit=True) as connection:
            connection.execute(sql.SQL("CREATE TABLESPACE small LOCATION {}").format(str(small)))
        try:
            with fresh_database(cluster.dsn, tablespace="small") as dsn:
                yield small, dsn
        finally:
            with psycopg.connect(cluster.dsn, autocommit=True) as connection:
                connection.execute("DROP TABLESPACE IF EXISTS small")


async def test_a_full_disk_on_the_database_server_is_one_line_for_the_user_and_loses_nothing(
    dirs: CodexDirs, pg_cluster: TempCluster, tmp_path: Path
) -> None:
    with database_on_a_small_disk(pg_cluster) as (small, dsn):
        await _full_disk(dirs, tmp_path, small, dsn)


async def _full_disk(dirs: CodexDirs, tmp_path: Path, small: Path, dsn: str) -> None:
    """The whole database lives on `small`; it is filled after the first answer."""
    async with FakeResponsesProvider() as provider:
        provider.script(Text("one"), Text("two"))
        config = write_config(dirs, provider, STORE)
        state = dirs.root / "state"
        log_path = tmp_path / "daemon.log"
        with log_path.open("wb") as log:
            async with daemon_running(
                config, state / "chat.sock", env=_env(dsn), stderr=log
            ) as daemon:
                assert "one" in await chat(config, "first")
                await interactions_once(
                    dsn, lambda f: "first" in f and f["first"].status == "completed"
                )
                fill(small / "filler")
                big = os.urandom(25_000).hex()  # random: PostgreSQL cannot compress it into room
                with anyio.fail_after(60):
                    refused = await anyio.run_process(
                        [*PIANO, "chat", "--config", str(config), "--message", big], check=False
                    )
                assert daemon.returncode is None, "the daemon died of the full disk"
                (small / "filler").unlink()
                assert "two" in await chat(config, "second")
                found = await interactions_once(
                    dsn, lambda f: "second" in f and f["second"].status == "completed"
                )
                assert daemon.returncode is None
    output = (refused.stdout + refused.stderr).decode()
    said = [line for line in output.splitlines() if "disk is full" in line]
    assert len(said) == 1, output
    assert said[0].endswith("your message was not saved"), output
    assert refused.returncode != 0
    lines = [json.loads(line) for line in log_path.read_text().splitlines()]
    full = [line for line in lines if "the disk is full" in str(line.get("error", ""))]
    assert [line["event"] for line in full if line["event"].startswith("conversation")] == [
        "conversation.message_not_saved"
    ], full
    # a refusal, not a failure: the chat server neither logs it again nor drops the connection
    assert [line for line in lines if line["event"] == "chat.connection_failed"] == [], full
    assert [(i.text, i.status, i.response) for i in found.values()] == [
        ("first", "completed", "one"),
        ("second", "completed", "two"),
    ], "a refused message was stored, or an accepted one lost"
    with PostgresReader(dsn) as reader:
        [thread] = reader.threads()
        messages = [i.text for i in reader.thread_items(thread.id) if i.kind == "agent_message"]
    assert messages == ["one", "two"], "an answer was lost or doubled"
    journal = journal_is_whole(dsn)
    assert len(journal) == len(set(journal))


async def test_an_answer_written_while_the_database_disk_is_full_is_stored_once_space_is_freed(
    dirs: CodexDirs, pg_cluster: TempCluster, tmp_path: Path
) -> None:
    with database_on_a_small_disk(pg_cluster) as (small, dsn):
        await _disk_fills_mid_turn(dirs, tmp_path, small, dsn)


async def _log_until(path: Path, done: object) -> list[dict[str, object]]:
    """The daemon's log lines once `done(lines)` holds (up to 60 s)."""
    assert callable(done)
    with anyio.fail_after(60):
        while True:
            text = await anyio.Path(path).read_text()
            lines = [json.loads(line) for line in text.splitlines() if line]
            if done(lines):
                return lines
            await anyio.sleep(0.05)


async def _disk_fills_mid_turn(dirs: CodexDirs, tmp_path: Path, small: Path, dsn: str) -> None:
    """The message is accepted, then the disk fills before its answer is written."""
    answer = os.urandom(20_000).hex()  # random: PostgreSQL cannot compress it into room
    async with FakeResponsesProvider() as provider:
        hang = Hang(then=Text(answer, deltas=20))
        provider.script(hang)
        config = write_config(dirs, provider, STORE)
        state = dirs.root / "state"
        log_path = tmp_path / "daemon.log"
        with log_path.open("wb") as log:
            running = daemon_running(config, state / "chat.sock", env=_env(dsn), stderr=log)
            async with running as daemon:
                printed_path = tmp_path / "chat.out"
                with printed_path.open("wb") as out:
                    first = await anyio.open_process(
                        [*PIANO, "chat", "--config", str(config), "--message", "first"], stdout=out
                    )
                await provider.wait_requests(1)
                await interactions_once(
                    dsn, lambda f: "first" in f and f["first"].status == "in_progress"
                )
                fill(small / "filler")
                hang.release()
                await _log_until(
                    log_path,
                    lambda lines: any(
                        line.get("event") == "events.store_unavailable"
                        and "the disk is full" in str(line.get("error"))
                        for line in lines
                    ),
                )
                assert daemon.returncode is None, "the daemon died of the full disk"
                (small / "filler").unlink()
                with anyio.fail_after(60):
                    assert await first.wait() == 0
                printed = printed_path.read_text()
                found = await interactions_once(
                    dsn, lambda f: "first" in f and f["first"].status == "completed"
                )
                assert daemon.returncode is None
    assert found["first"].response == answer
    assert answer in printed.replace("\n", "")
    with PostgresReader(dsn) as reader:
        [thread] = reader.threads()
        messages = [i.text for i in reader.thread_items(thread.id) if i.kind == "agent_message"]
    assert messages == [answer], "the answer was lost or doubled"
    journal = journal_is_whole(dsn)
    assert len(journal) == len(set(journal))
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line]
    assert not [line for line in lines if line.get("event") == "events.not_stored"]
