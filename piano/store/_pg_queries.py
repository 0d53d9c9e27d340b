"""`PostgresReader`: `StoreReader`'s queries, unchanged, on a PostgreSQL database.

The reader's queries are plain SQL that both databases understand once three spellings are
translated (`_translate`): SQLite's ``?`` / ``?N`` parameters become psycopg's named ones
(bound client-side, so ``?1 IS NULL`` needs no type), the column ``user`` is quoted (USER is
a keyword in PostgreSQL) and ``rowid`` is the identity column the PostgreSQL schema gives the
two tables readers order by it. jsonb is read back as its text and integer sums as ints, so
the records decode exactly as from SQLite: one set of queries, two databases.

Like `StoreReader`, its methods are synchronous (call them from a thread), serialised by a
lock, each one snapshot (`export_transcript` reads in one REPEATABLE READ transaction). A lost
connection raises `StoreUnavailable` (one line) and the next call connects again.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Final, cast

import psycopg
from psycopg import ClientCursor, IsolationLevel
from psycopg.adapt import Loader
from psycopg.rows import TupleRow
from psycopg.types.string import TextLoader

from piano.store._connection import StoreFull, StoreUnavailable
from piano.store._pg_schema import migrate_pg_sync
from piano.store._postgres import pg_problem, safe_dsn
from piano.store._queries import StoreReader
from piano.store._records import JournalEntry
from schemas.events import decode_event

__all__ = ["PostgresReader", "SqliteDialect"]

_PARAM: Final = re.compile(r"\?(\d*)")
_USER: Final = re.compile(r'(?<!["\w])user(?!["\w])')


def _translate(sql: str) -> tuple[str, bool]:
    """SQLite's spelling of a query as psycopg's; whether its parameters are numbered."""
    numbered = False
    counter = 0

    def param(match: re.Match[str]) -> str:
        nonlocal numbered, counter
        if match[1]:
            numbered = True
            return f"%(p{match[1]})s"
        counter += 1
        return f"%(p{counter})s"

    sql = sql.replace("%", "%%")
    sql = _PARAM.sub(param, sql)
    sql = _USER.sub('"user"', sql)
    return sql, numbered


class _NumericLoader(Loader):
    """numeric (what sum() of bigints is) as an int when whole, else a float."""

    def load(self, data: Any) -> int | float:
        text = bytes(data).decode()
        return int(text) if text.lstrip("-").isdigit() else float(text)


class SqliteDialect:
    """A psycopg connection that takes the reader's SQLite-spelled queries (`execute`) and is
    a snapshot transaction as a context manager, as an apsw connection is; `transaction()` and
    `reading()` as the SQLite `Writer` has them, for features written against it."""

    def __init__(self, dsn: str, connect_timeout: float = 10.0) -> None:
        self.dsn = dsn
        self.location = safe_dsn(dsn)
        self.connect_timeout = connect_timeout
        self._connection: psycopg.Connection[TupleRow] | None = None
        self._cache: dict[str, tuple[str, bool]] = {}
        self._depth = 0

    def connection(self) -> psycopg.Connection[TupleRow]:
        connection = self._connection
        if connection is not None and not connection.closed and not connection.broken:
            return connection
        try:
            connection = psycopg.Connection.connect(
                self.dsn,
                autocommit=True,
                connect_timeout=max(1, round(self.connect_timeout)),
                cursor_factory=ClientCursor,
            )
        except psycopg.ProgrammingError as exc:
            raise StoreUnavailable(f"the PostgreSQL DSN is invalid: {pg_problem(exc)}") from None
        except psycopg.OperationalError as exc:
            raise StoreUnavailable(
                f"cannot connect to PostgreSQL at {self.location}: {pg_problem(exc)}"
            ) from None
        connection.isolation_level = IsolationLevel.REPEATABLE_READ
        connection.adapters.register_loader("jsonb", TextLoader)
        connection.adapters.register_loader("numeric", _NumericLoader)
        self._connection = connection
        return connection

    def execute(self, sql: str, bindings: Any = ()) -> psycopg.Cursor[TupleRow]:
        translated = self._cache.get(sql)
        if translated is None:
            translated = self._cache[sql] = _translate(sql)
        query, _ = translated
        if isinstance(bindings, Mapping):
            params: dict[str, Any] = {f"p{k}": v for k, v in bindings.items()}
        else:  # ?N and ? alike: the n-th binding is p<n>
            params = {f"p{n}": value for n, value in enumerate(bindings, 1)}
        for attempt in (1, 2):
            stale = self._connection is not None
            connection = self.connection()
            try:
                return connection.execute(cast(Any, query), params)
            except psycopg.errors.UndefinedTable as exc:
                raise StoreUnavailable(
                    f"PostgreSQL at {self.location} has no Piano schema yet (the store's writer "
                    f"creates it once it connects): {pg_problem(exc)}"
                ) from None
            except psycopg.errors.DiskFull:
                raise StoreFull(self.location) from None
            except psycopg.OperationalError as exc:
                in_snapshot = self._depth > 0
                self.drop()
                if stale and attempt == 1 and not in_snapshot:
                    continue  # the server restarted since: once more on a new connection
                raise StoreUnavailable(
                    f"PostgreSQL at {self.location} went away: {pg_problem(exc)}"
                ) from None
        raise AssertionError("unreachable")

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        try:
            transaction = self.connection().transaction()
            self._depth += 1
            with transaction:
                yield
        except psycopg.OperationalError as exc:
            self.drop()
            raise StoreUnavailable(
                f"PostgreSQL at {self.location} went away: {pg_problem(exc)}"
            ) from None
        finally:
            self._depth = max(0, self._depth - 1)

    @contextmanager
    def transaction(self) -> Iterator[SqliteDialect]:
        """As `Writer.transaction`: the block's statements in one transaction."""
        with self.snapshot():
            yield self

    @contextmanager
    def reading(self) -> Iterator[SqliteDialect]:
        """As `Writer.reading`: statements that only read (each its own snapshot)."""
        yield self

    def __enter__(self) -> SqliteDialect:
        self._snapshot = self.snapshot()
        self._snapshot.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._snapshot.__exit__(*exc)

    def drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(psycopg.Error):
                connection.close()

    def close(self) -> None:
        self.drop()


class PostgresReader(StoreReader):
    """`StoreReader` on a PostgreSQL database the writer (`PostgresBackend`) has migrated."""

    def __init__(self, dsn: str, *, connect_timeout: float = 10.0) -> None:
        self._lock = threading.Lock()
        dialect = SqliteDialect(dsn, connect_timeout)
        self.path = dialect.location
        connection = dialect.connection()
        try:
            # the writer migrates when it first reaches the server; a reader that gets there
            # first (the server came up late) does it, under the same lock
            migrate_pg_sync(connection, self.path)
        except psycopg.OperationalError as exc:
            dialect.close()
            raise StoreUnavailable(
                f"PostgreSQL at {self.path} went away: {pg_problem(exc)}"
            ) from None
        except BaseException:
            dialect.close()
            raise
        self._db = cast(Any, dialect)

    def events_since(
        self, thread_id: str, seq: int = 0, *, limit: int | None = None
    ) -> list[JournalEntry]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, body FROM events WHERE thread_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                (thread_id, seq, limit),
            ).fetchall()
        return [JournalEntry(cast(int, seq), decode_event(str(body))) for seq, body in rows]
