"""`piano doctor` on a PostgreSQL store: the DSN set, the server reached, its version, each
owner's schema version; every failure one line with its fix. Against a real server."""

from __future__ import annotations

import asyncio

import psycopg
from psycopg.conninfo import make_conninfo

from piano.config import Config, StoreConfig
from piano.doctor import check_database
from piano.store import PG_SCHEMA_VERSIONS, connect_pg, migrate_pg
from tests.postgres import pg_dsn

__all__ = ["pg_dsn"]

_CONFIG = Config(store=StoreConfig(backend="postgres", dsn_env="TEST_PG_DSN"))


def test_a_reachable_empty_database_passes_and_says_the_daemon_will_migrate_it(
    pg_dsn: str,
) -> None:
    check = check_database(_CONFIG, {"TEST_PG_DSN": pg_dsn})
    assert check.ok, check.line()
    assert "PostgreSQL 1" in check.detail
    assert "the daemon migrates it" in check.detail


def test_a_migrated_database_passes_with_its_schema_up_to_date(pg_dsn: str) -> None:
    async def migrate() -> None:
        connection = await connect_pg(pg_dsn)
        await migrate_pg(connection)
        await connection.close()

    asyncio.run(migrate())
    check = check_database(_CONFIG, {"TEST_PG_DSN": pg_dsn})
    assert check.ok, check.line()
    assert check.detail.endswith("schema up to date")


def test_a_missing_database_is_one_line_naming_it_without_the_password(pg_dsn: str) -> None:
    missing = make_conninfo(pg_dsn, dbname="piano_test_not_there", password="s3cret")
    check = check_database(_CONFIG, {"TEST_PG_DSN": missing})
    assert not check.ok
    assert 'database "piano_test_not_there" does not exist' in check.detail
    assert "s3cret" not in check.line()
    assert "\n" not in check.detail


def test_an_unset_dsn_variable_names_it_and_how_to_set_it() -> None:
    check = check_database(_CONFIG, {})
    assert not check.ok
    assert "TEST_PG_DSN" in check.detail
    assert check.fix.startswith("export TEST_PG_DSN=")


def test_a_schema_from_a_newer_piano_fails(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as connection:
        connection.execute("CREATE TABLE schema_versions (owner text PRIMARY KEY, version int)")
        connection.execute(
            "INSERT INTO schema_versions VALUES ('store', %s)", (PG_SCHEMA_VERSIONS["store"] + 1,)
        )
    check = check_database(_CONFIG, {"TEST_PG_DSN": pg_dsn})
    assert not check.ok
    assert "newer than this Piano's" in check.detail
