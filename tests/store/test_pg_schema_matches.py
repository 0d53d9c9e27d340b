"""The PostgreSQL schema keeps up with SQLite's: every table any owner registers in SQLite
exists in PostgreSQL with the same columns (a feature that adds a SQLite migration and forgets
PostgreSQL's fails here, naming what is missing). ``schema_versions``, each backend's own
bookkeeping, is not compared."""

from __future__ import annotations

from pathlib import Path

import apsw
import psycopg
import pytest

# Importing the features registers their tables with the store's registry.
from piano.agents.codex import ROLLOUT_TABLES
from piano.agents.openai import HISTORY_TABLES
from piano.schedules import SCHEDULE_TABLES
from piano.store import PostgresBackend, Writer
from piano.surfaces.telegram._tables import TELEGRAM_TABLES
from piano.tools import NOTES_TABLES
from piano.tools.jail import JAIL_TABLES
from tests.postgres import pg_dsn

__all__ = ["pg_dsn"]

pytestmark = pytest.mark.anyio


def _sqlite_columns(path: Path) -> dict[str, set[str]]:
    with Writer(path) as writer:
        for tables in (
            HISTORY_TABLES,
            TELEGRAM_TABLES,
            NOTES_TABLES,
            JAIL_TABLES,
            ROLLOUT_TABLES,
            SCHEDULE_TABLES,
        ):
            writer.ensure(tables)
    db = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        names = [
            str(name)
            for (name,) in db.execute(
                "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        return {
            name: {str(row[1]) for row in db.execute(f"PRAGMA table_info({name})")}
            for name in names
        }
    finally:
        db.close()


async def test_every_sqlite_table_and_column_exists_in_postgresql(
    tmp_path: Path, pg_dsn: str
) -> None:
    sqlite = _sqlite_columns(tmp_path / "piano.db")
    backend = await PostgresBackend.open(pg_dsn)
    await backend.close()
    with psycopg.connect(pg_dsn) as connection:
        rows = connection.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public'"
        ).fetchall()
    postgres: dict[str, set[str]] = {}
    for table, column in rows:
        postgres.setdefault(str(table), set()).add(str(column))
    missing = {
        table: sorted(columns - postgres.get(table, set()))
        for table, columns in sqlite.items()
        if columns - postgres.get(table, set()) and table != "schema_versions"  # bookkeeping
    }
    assert missing == {}, f"in SQLite but not in PostgreSQL (add a PG_MIGRATIONS script): {missing}"
    assert len(sqlite) >= 17
