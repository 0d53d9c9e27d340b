"""Schema migrations, one owner per table: from an empty file to every owner's current version,
idempotent, one transaction each; a database of every legacy version taken over with its rows;
a database from a newer Piano refused untouched; one write connection per process."""

from __future__ import annotations

from pathlib import Path

import apsw
import pytest

from piano.agents.codex import ROLLOUT_TABLES
from piano.agents.openai import HISTORY_TABLES
from piano.store import (
    JOURNAL,
    SCHEMA_VERSION,
    SchemaTooNew,
    StoreError,
    StoreReader,
    StoreWriter,
    Tables,
    Writer,
    migrate,
    open_connection,
    owner_versions,
    register,
    registered,
)
from piano.store import _schema as store_schema
from piano.surfaces.telegram import TELEGRAM_TABLES, Inbox
from piano.tools import NOTES_TABLES, SqliteNotes
from piano.tools.jail import JAIL_TABLES
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


OWNERS = (JOURNAL, TELEGRAM_TABLES, JAIL_TABLES, HISTORY_TABLES, NOTES_TABLES, ROLLOUT_TABLES)


def versions(path: Path) -> dict[str, int]:
    connection = open_connection(path, query_only=True)
    try:
        return owner_versions(connection)
    finally:
        connection.close()


def test_an_empty_file_gets_every_owners_tables_at_their_current_versions(path: Path) -> None:
    Writer(path).close()

    assert user_version(path) == SCHEMA_VERSION
    assert versions(path) == {tables.owner: tables.version for tables in registered()}
    assert set(registered()) >= set(OWNERS)
    assert tables(path) >= TABLES | {"telegram_inbox", "telegram_outbox", "shell_commands"}
    assert tables(path) >= {"agent_notes", "agent_messages", "schema_versions", "rollouts"}


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


def test_tables_of_an_owner_newer_than_this_piano_are_refused_and_left_untouched(
    path: Path,
) -> None:
    Writer(path).close()
    connection = apsw.Connection(str(path))
    connection.execute("UPDATE schema_versions SET version = 99 WHERE owner = 'telegram'")
    connection.close()

    with pytest.raises(SchemaTooNew) as raised:
        Writer(path)

    assert "telegram tables at version 99" in str(raised.value)
    assert versions(path)["telegram"] == 99


# The single user_version sequence before the registry, as the owners' scripts it was made of.
LEGACY_SCRIPTS = (
    JOURNAL.migrations[0],
    TELEGRAM_TABLES.migrations[0],
    JAIL_TABLES.migrations[0],
    HISTORY_TABLES.migrations[0] + NOTES_TABLES.migrations[0],
    JOURNAL.migrations[1],
)

LEGACY_ROWS = {
    1: """
        INSERT INTO surfaces (id, kind, created_at, updated_at) VALUES ('s', 's', 0, 0);
        INSERT INTO agents (name, backend, created_at, updated_at) VALUES ('a', 'codex', 0, 0);
        INSERT INTO threads (id, surface, conversation, agent, created_at, updated_at)
            VALUES ('t1', 's', 'c', 'a', 0, 0);
        INSERT INTO interactions (id, thread_id, text, created_at) VALUES ('i1', 't1', 'hi', 0);
        INSERT INTO approvals (thread_id, id, item_id, kind, command, requested_at, decision)
            VALUES ('t1', 'a1', 'c1', 'command', 'make', 1.0, 'accept');
        INSERT INTO events (thread_id, seq, type, at, body) VALUES ('t1', 1, 'notice', 0, '{}');
    """,
    2: """
        INSERT INTO telegram_inbox (bot, update_id, body, received_at) VALUES ('b', 7, '{}', 0);
        INSERT INTO telegram_conversations (bot, conversation, chat_id, agent, updated_at)
            VALUES ('b', 'chat:1', 1, 'a', 0);
        -- the Inbox created its outbox itself before the registry
        CREATE TABLE telegram_outbox (id INTEGER PRIMARY KEY, bot TEXT NOT NULL,
            chat_id INTEGER NOT NULL, body TEXT NOT NULL CHECK (json_valid(body)), data BLOB,
            created_at REAL NOT NULL) STRICT;
        INSERT INTO telegram_outbox (bot, chat_id, body, created_at) VALUES ('b', 1, '{}', 0);
    """,
    3: """
        INSERT INTO shell_commands (thread_id, session, command, timed_out, stdout_bytes,
            stderr_bytes, started_at, duration, recorded_at)
            VALUES ('t1', 's1', 'ls', 0, 0, 0, 0, 0, 0);
    """,
    4: """
        INSERT INTO agent_notes (owner, title, body, created_at, updated_at)
            VALUES ('web:alice', 'todo', 'milk', 0, 0);
        INSERT INTO agent_messages (thread_id, seq, role, body, at)
            VALUES ('t1', 1, 'user', '{"role": "user", "text": "hi"}', 0);
    """,
    5: "",
}

KEPT: dict[int, list[tuple[str, list[tuple[object, ...]]]]] = {
    1: [
        (
            "SELECT id, kind, command, decision, tool FROM approvals",
            [("a1", "command", "make", "accept", None)],
        ),
        ("SELECT id, text FROM interactions", [("i1", "hi")]),
        ("SELECT thread_id, seq FROM events", [("t1", 1)]),
    ],
    2: [
        ("SELECT update_id FROM telegram_inbox", [(7,)]),
        ("SELECT conversation FROM telegram_conversations", [("chat:1",)]),
        ("SELECT chat_id FROM telegram_outbox", [(1,)]),
    ],
    3: [("SELECT command FROM shell_commands", [("ls",)])],
    4: [
        ("SELECT body FROM agent_notes", [("milk",)]),
        ("SELECT seq, role FROM agent_messages", [(1, "user")]),
    ],
    5: [],
}


@pytest.mark.parametrize("legacy", [1, 2, 3, 4, 5])
def test_a_database_of_each_legacy_schema_version_is_taken_over_with_its_rows(
    path: Path, legacy: int
) -> None:
    connection = open_connection(path)
    try:
        for version, script in enumerate(LEGACY_SCRIPTS[:legacy], 1):
            connection.execute(script)
            connection.execute(LEGACY_ROWS[version])
        connection.pragma("user_version", legacy)
    finally:
        connection.close()

    Writer(path).close()

    assert user_version(path) == SCHEMA_VERSION
    assert versions(path) == {tables.owner: tables.version for tables in registered()}
    connection = open_connection(path, query_only=True)
    try:
        for version in range(1, legacy + 1):
            for query, rows in KEPT[version]:
                assert connection.execute(query).fetchall() == rows, query
        assert "tool" in {row[1] for row in connection.execute("PRAGMA table_info(approvals)")}
    finally:
        connection.close()
    with StoreReader(path) as reader:
        assert reader.last_seq("t1") == 1


def test_adding_a_migration_is_appending_one_script_and_existing_databases_follow(
    path: Path,
) -> None:
    notes = Tables("test-notes", ("CREATE TABLE test_notes (id INTEGER PRIMARY KEY) STRICT;",))
    with Writer(path) as writer:
        writer.ensure(notes)
    before = tables(path)
    grown = Tables(notes.owner, (*notes.migrations, "ALTER TABLE test_notes ADD COLUMN text TEXT;"))

    with Writer(path) as writer:
        writer.ensure(grown)

    assert versions(path)["test-notes"] == 2
    assert tables(path) == before
    connection = open_connection(path, query_only=True)
    try:
        columns = [row[1] for row in connection.execute("PRAGMA table_info(test_notes)")]
    finally:
        connection.close()
    assert columns == ["id", "text"]


def test_a_failing_migration_rolls_back_entirely_and_leaves_the_previous_version(
    path: Path,
) -> None:
    Writer(path).close()
    before = tables(path)
    broken = Tables(
        "test-broken",
        (
            "CREATE TABLE fine (id INTEGER) STRICT;",
            "CREATE TABLE half_done (id INTEGER) STRICT; CREATE TABLE oops (x NOSUCHTYPE) STRICT;",
        ),
    )
    connection = open_connection(path)
    try:
        with pytest.raises(apsw.Error):
            migrate(connection, [broken])
    finally:
        connection.close()

    assert versions(path)["test-broken"] == 1
    assert tables(path) == before | {"fine"}


def test_an_owner_registers_its_tables_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # on a copy of the registry: "test-once" must not reach later tests' Writers (they ensure
    # every registered owner, and test_pg_schema_matches compares their tables with PostgreSQL)
    monkeypatch.setattr(store_schema, "_registry", dict(store_schema._registry))
    register(Tables("test-once", ("CREATE TABLE once (id INTEGER) STRICT;",)))

    with pytest.raises(ValueError, match="'test-once' are registered twice"):
        register(Tables("test-once", ("CREATE TABLE other (id INTEGER) STRICT;",)))


@pytest.mark.anyio
async def test_every_owner_in_a_process_writes_through_its_one_write_connection(
    path: Path,
) -> None:
    store = StoreWriter(path)
    await store.init()
    notes = SqliteNotes(path)
    inbox = Inbox(path, "bot")
    try:
        await notes.save("web:alice", "todo", "milk")
        inbox.store([{"update_id": 1}])
        backend_writer = store.backend.writer  # type: ignore[union-attr]
        assert inbox.writer is backend_writer
        assert notes.database.writer is backend_writer
        assert await notes.get("web:alice", "todo") == "milk"
    finally:
        inbox.close()
        notes.close()
        await store.terminate("normal")
    assert Writer.open(path) is not backend_writer  # the last close closed it
