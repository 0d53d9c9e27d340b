"""Schema migrations: from an empty file to the current version, idempotent, one transaction
each, and a database from a newer Piano refused untouched."""

from __future__ import annotations

from pathlib import Path

import apsw
import pytest

from piano.store import (
    MIGRATIONS,
    SCHEMA_VERSION,
    SchemaTooNew,
    StoreError,
    StoreReader,
    Writer,
    _schema,
    open_connection,
)
from tests.store.conftest import set_up

TABLES = {
    "surfaces",
    "users",
    "agents",
    "threads",
    "interactions",
    "items",
    "token_usage",
    "approvals",
    "events",
}


def tables(path: Path) -> set[str]:
    connection = open_connection(path, query_only=True)
    try:
        rows = connection.execute(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite%'"
        )
        return {name for (name,) in rows}
    finally:
        connection.close()


def user_version(path: Path) -> int:
    connection = apsw.Connection(str(path))
    try:
        return int(connection.pragma("user_version"))
    finally:
        connection.close()


@pytest.fixture
def backend_kind() -> str:
    """SQLite's own guarantees (its file, WAL snapshots, locks): not parametrised."""
    return "sqlite"


def test_an_empty_file_is_migrated_to_the_current_version_with_every_table(path: Path) -> None:
    Writer(path).close()

    assert user_version(path) == SCHEMA_VERSION == len(MIGRATIONS)
    assert tables(path) >= TABLES


def test_every_connection_uses_wal_normal_sync_foreign_keys_and_a_5s_busy_timeout(
    path: Path,
) -> None:
    connection = open_connection(path)
    try:
        assert connection.pragma("journal_mode") == "wal"
        assert connection.pragma("synchronous") == 1  # NORMAL
        assert connection.pragma("foreign_keys") == 1
        assert connection.pragma("busy_timeout") == 5000
        with pytest.raises(apsw.SQLError):  # double quotes are identifiers only
            connection.execute('SELECT "not a column"')
    finally:
        connection.close()


def test_reopening_a_migrated_database_changes_nothing_and_keeps_its_data(path: Path) -> None:
    with Writer(path) as writer:
        set_up(writer, "t1")
    with Writer(path) as writer:
        writer.create_thread("t2", "telegram", "chat:t2", "codex")
    with StoreReader(path) as reader:
        assert {thread.id for thread in reader.threads()} == {"t1", "t2"}
        assert reader.agent("codex") is not None
    assert user_version(path) == SCHEMA_VERSION


def test_approvals_written_before_tool_calls_existed_survive_the_v5_rebuild(path: Path) -> None:
    connection = open_connection(path)
    try:
        for script in MIGRATIONS[:4]:
            connection.execute(script)
        connection.pragma("user_version", 4)
        connection.execute(
            """
            INSERT INTO surfaces (id, kind, created_at, updated_at) VALUES ('s', 's', 0, 0);
            INSERT INTO agents (name, backend, created_at, updated_at) VALUES ('a', 'codex', 0, 0);
            INSERT INTO threads (id, surface, conversation, agent, created_at, updated_at)
                VALUES ('t1', 's', 'c', 'a', 0, 0);
            INSERT INTO approvals (thread_id, id, item_id, kind, command, requested_at, decision)
                VALUES ('t1', 'a1', 'c1', 'command', 'make', 1.0, 'accept');
            """
        )
    finally:
        connection.close()

    Writer(path).close()

    with StoreReader(path) as reader:
        [old] = reader.approvals("t1")
    assert (old.id, old.kind, old.command, old.decision, old.tool) == (
        "a1",
        "command",
        "make",
        "accept",
        None,
    )
    assert user_version(path) == SCHEMA_VERSION


def test_a_database_from_a_newer_piano_is_refused_naming_the_file_and_left_untouched(
    path: Path,
) -> None:
    Writer(path).close()
    connection = apsw.Connection(str(path))
    connection.pragma("user_version", SCHEMA_VERSION + 1)
    connection.close()

    with pytest.raises(SchemaTooNew) as raised:
        Writer(path)
    with pytest.raises(SchemaTooNew):
        StoreReader(path)

    assert str(path) in str(raised.value)
    assert f"schema version {SCHEMA_VERSION + 1}" in str(raised.value)
    assert user_version(path) == SCHEMA_VERSION + 1
    assert tables(path) >= TABLES


def test_a_reader_refuses_a_database_the_writer_has_not_migrated(path: Path) -> None:
    with pytest.raises(StoreError, match="open it with the store's writer first"):
        StoreReader(path)


def test_adding_a_migration_is_appending_one_script_and_existing_databases_follow(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Writer(path) as writer:
        set_up(writer, "t1")
    before = tables(path)
    extra = "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL) STRICT;"
    monkeypatch.setattr(_schema, "MIGRATIONS", (*MIGRATIONS, extra))
    monkeypatch.setattr(_schema, "SCHEMA_VERSION", SCHEMA_VERSION + 1)

    Writer(path).close()

    assert user_version(path) == SCHEMA_VERSION + 1
    assert tables(path) == before | {"notes"}


def test_a_failing_migration_rolls_back_entirely_and_leaves_the_previous_version(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Writer(path).close()
    before = tables(path)
    broken = "CREATE TABLE half_done (id INTEGER) STRICT; CREATE TABLE oops (x NOSUCHTYPE) STRICT;"
    monkeypatch.setattr(_schema, "MIGRATIONS", (*MIGRATIONS, broken))
    monkeypatch.setattr(_schema, "SCHEMA_VERSION", SCHEMA_VERSION + 1)

    with pytest.raises(apsw.Error):
        Writer(path)

    assert user_version(path) == SCHEMA_VERSION
    assert tables(path) == before
