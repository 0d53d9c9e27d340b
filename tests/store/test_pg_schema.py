"""The PostgreSQL schema: every owner's tables created once, old versions upgraded with their
rows kept, a newer schema refused untouched. Against a real server (tests/postgres.py)."""

from __future__ import annotations

import anyio
import psycopg
import pytest
from psycopg.rows import TupleRow

from piano.store import SchemaTooNew
from piano.store._pg_schema import PG_MIGRATIONS, PG_SCHEMA_VERSIONS, migrate_pg, pg_versions
from tests.postgres import pg_dsn

__all__ = ["pg_dsn"]

pytestmark = pytest.mark.anyio

_EVERY_SQLITE_TABLE = {
    "surfaces", "users", "agents", "threads", "interactions", "items", "token_usage",
    "approvals", "events", "shell_commands", "telegram_inbox", "telegram_conversations",
    "telegram_audit", "telegram_outbox", "telegram_status", "agent_messages", "agent_threads",
    "agent_notes", "conversation_settings", "rollouts", "rollout_chunks", "schedules",
}  # fmt: skip
_CLUSTER_TABLES = {"nodes", "thread_leases"}  # PostgreSQL only: a cluster needs this store


async def _tables(connection: psycopg.AsyncConnection[TupleRow]) -> set[str]:
    cursor = await connection.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {str(name) for (name,) in await cursor.fetchall()}


async def test_a_fresh_database_gets_every_table_the_sqlite_store_has(pg_dsn: str) -> None:
    async with await psycopg.AsyncConnection.connect(pg_dsn) as connection:
        found = await migrate_pg(connection)
        assert found == dict.fromkeys(PG_MIGRATIONS, 0)
        assert await pg_versions(connection) == PG_SCHEMA_VERSIONS
        assert await _tables(connection) == _EVERY_SQLITE_TABLE | _CLUSTER_TABLES | {
            "schema_versions"
        }
        assert await migrate_pg(connection) == PG_SCHEMA_VERSIONS  # a second open: nothing to do


async def test_two_processes_migrating_one_fresh_database_at_once_migrate_it_once(
    pg_dsn: str,
) -> None:
    results: list[dict[str, int]] = []

    async def one() -> None:
        async with await psycopg.AsyncConnection.connect(pg_dsn) as connection:
            results.append(await migrate_pg(connection))

    async with anyio.create_task_group() as group:
        for _ in range(3):
            group.start_soon(one)
    assert sorted(results, key=lambda found: sum(found.values())) == [
        dict.fromkeys(PG_MIGRATIONS, 0),
        PG_SCHEMA_VERSIONS,
        PG_SCHEMA_VERSIONS,
    ]


async def test_a_version_1_store_is_upgraded_with_its_rows_kept(pg_dsn: str) -> None:
    async with await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True) as connection:
        await connection.execute(
            "CREATE TABLE schema_versions (owner text PRIMARY KEY, version integer NOT NULL)"
        )
        await connection.execute(PG_MIGRATIONS["store"][0])
        await connection.execute("INSERT INTO schema_versions VALUES ('store', 1)")
        await connection.execute(
            "INSERT INTO surfaces VALUES ('web', 'web', '', '{}', 1, 1);"
            "INSERT INTO agents VALUES ('codex', 'codex', '', '{}', 1, 1);"
            "INSERT INTO threads (id, surface, conversation, agent, created_at, updated_at) "
            "VALUES ('t1', 'web', 'tab', 'codex', 1, 1);"
            "INSERT INTO approvals (thread_id, id, item_id, kind, command, requested_at) "
            "VALUES ('t1', 'a1', 'i1', 'command', 'ls', 1);"
            "INSERT INTO events VALUES ('t1', 1, 'notice', 1, '{}')"
        )
        with pytest.raises(psycopg.errors.CheckViolation):
            await connection.execute(
                "INSERT INTO approvals (thread_id, id, item_id, kind, requested_at) "
                "VALUES ('t1', 'a2', 'i2', 'tool_call', 1)"
            )

        found = await migrate_pg(connection)

        assert found["store"] == 1
        assert await pg_versions(connection) == PG_SCHEMA_VERSIONS
        cursor = await connection.execute("SELECT id, kind, command, tool FROM approvals")
        assert await cursor.fetchall() == [("a1", "command", "ls", None)]
        cursor = await connection.execute("SELECT thread_id, seq FROM events")
        assert await cursor.fetchall() == [("t1", 1)]
        await connection.execute(
            "INSERT INTO approvals (thread_id, id, item_id, kind, tool, requested_at) "
            "VALUES ('t1', 'a2', 'i2', 'tool_call', 'piano.web_fetch', 1)"
        )


async def test_a_schema_from_a_newer_piano_is_refused_and_left_untouched(pg_dsn: str) -> None:
    async with await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True) as connection:
        await migrate_pg(connection)
        newer = PG_SCHEMA_VERSIONS["telegram"] + 1
        await connection.execute(
            "UPDATE schema_versions SET version = %s WHERE owner = 'telegram'", (newer,)
        )
        with pytest.raises(SchemaTooNew, match="telegram tables"):
            await migrate_pg(connection, "postgresql://postgres@host/db")
        assert (await pg_versions(connection))["telegram"] == newer
