"""`StoreLocation`: where the store is (a SQLite file or a PostgreSQL DSN), and what opens it.

The daemon makes one from its `[store]` configuration and hands it to everything that reads or
writes the store: the writer's `Opener`, the readers (`reader()`), and the features' own tables
(`pool()`: PostgreSQL connections shared by the OpenAI notes and histories). So no feature
chooses a backend itself, and a SQLite path still works wherever a location is expected.

`PostgresPool` is a `psycopg_pool.AsyncConnectionPool` opened on first use (the daemon builds
its tree before its event loop runs); a server that cannot be reached raises `StoreUnavailable`
in one line, never a pool timeout's traceback.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import psycopg
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from piano.store._backend import Opener, SqliteBackend
from piano.store._connection import StoreFull, StoreUnavailable
from piano.store._fence import Fence
from piano.store._pg_queries import PostgresReader
from piano.store._postgres import PostgresBackend, connect_pg, pg_problem, safe_dsn
from piano.store._queries import StoreReader

__all__ = ["PostgresPool", "StoreLocation", "location_of", "open_reader"]


class PostgresPool:
    """Connections to one PostgreSQL database, shared by a process's features."""

    def __init__(self, dsn: str, *, size: int = 4, connect_timeout: float = 10.0) -> None:
        self.dsn = dsn
        self.location = safe_dsn(dsn)
        self.connect_timeout = connect_timeout
        self._pool: AsyncConnectionPool[psycopg.AsyncConnection[TupleRow]] = AsyncConnectionPool(
            dsn,
            min_size=1,
            max_size=size,
            open=False,
            timeout=connect_timeout,
            kwargs={"autocommit": True, "connect_timeout": max(1, round(connect_timeout))},
        )
        self._opened = False

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[TupleRow]]:
        """A connection for one operation (autocommit; use ``connection.transaction()`` for
        several statements). `StoreUnavailable` if the server cannot be reached, `StoreFull`
        if its disk is full."""
        if not self._opened:
            probe = await connect_pg(self.dsn, timeout=self.connect_timeout)  # the real reason
            await probe.close()
            await self._pool.open(wait=False)
            self._opened = True
        try:
            async with self._pool.connection() as connection:
                yield connection
        except PoolTimeout:
            raise StoreUnavailable(
                f"PostgreSQL at {self.location} gave no connection in {self.connect_timeout} s"
            ) from None
        except psycopg.errors.DiskFull:
            raise StoreFull(self.location) from None
        except psycopg.OperationalError as exc:
            raise StoreUnavailable(
                f"PostgreSQL at {self.location} went away: {pg_problem(exc)}"
            ) from None

    async def close(self) -> None:
        if self._opened:
            await self._pool.close()
            self._opened = False


@dataclass(frozen=True)
class StoreLocation:
    """A SQLite file (`path`) or a PostgreSQL database (`dsn`, kept out of `repr`)."""

    backend: Literal["sqlite", "postgres"]
    path: Path | None = None
    dsn: str = field(default="", repr=False)
    pool_size: int = 4
    connect_timeout: float = 10.0

    @classmethod
    def sqlite(cls, path: str | Path) -> StoreLocation:
        return cls("sqlite", path=Path(path))

    @classmethod
    def postgres(
        cls, dsn: str, *, pool_size: int = 4, connect_timeout: float = 10.0
    ) -> StoreLocation:
        return cls("postgres", dsn=dsn, pool_size=pool_size, connect_timeout=connect_timeout)

    def __str__(self) -> str:
        return str(self.path) if self.backend == "sqlite" else safe_dsn(self.dsn)

    def opener(self, fence: Fence | None = None) -> Opener:
        """Opens (and migrates) the writer's backend; a cluster's node gives its `fence`
        (PostgreSQL only), so that the writer writes only the threads it holds."""
        if self.backend == "sqlite":
            assert self.path is not None
            if fence is not None:
                raise ValueError("a cluster's fence needs the PostgreSQL store")
            return SqliteBackend.opener(self.path)
        return PostgresBackend.opener(self.dsn, connect_timeout=self.connect_timeout, fence=fence)

    def ready(self) -> bool:
        """Whether a reader can be opened without waiting for the writer: a SQLite file that
        exists (PostgreSQL: always; the reader says itself if the schema is missing)."""
        return self.backend == "postgres" or (self.path is not None and self.path.exists())

    def reader(self) -> StoreReader:
        """A reader of the migrated store (blocking: call from a thread)."""
        if self.backend == "sqlite":
            assert self.path is not None
            return StoreReader(self.path)
        return PostgresReader(self.dsn, connect_timeout=self.connect_timeout)

    def pool(self) -> PostgresPool:
        """Shared PostgreSQL connections for the features' own tables (postgres only)."""
        if self.backend != "postgres":
            raise ValueError("a SQLite store has no connection pool")
        return PostgresPool(self.dsn, size=self.pool_size, connect_timeout=self.connect_timeout)


def location_of(target: str | Path | StoreLocation) -> StoreLocation:
    """`target` as a location (a path is a SQLite file)."""
    return target if isinstance(target, StoreLocation) else StoreLocation.sqlite(target)


def open_reader(target: str | Path | StoreLocation) -> StoreReader:
    """A reader of the store at `target` (blocking: call from a thread)."""
    return location_of(target).reader()
