"""Fixtures for store tests: a migrated database with a surface, an agent and two threads, and
small builders for the events a turn produces.

`writer` and `reader` run each test on both backends, as AnyIO runs its tests per backend:
``[sqlite]`` (a `Writer` on a file) and ``[postgres]`` (a `PostgresBackend` on a fresh database
of the tests' PostgreSQL server, driven synchronously through a blocking portal, with a
`PostgresReader`). A module about one backend only overrides `backend_kind`. `dump` reads every
table of either, for comparing states."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any, cast

import apsw
import psycopg
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal

from piano.store import PostgresBackend, PostgresReader, StoreReader, Writer
from schemas.events import (
    ApprovalRequested,
    Interaction,
    Item,
    ItemCompleted,
    ItemDelta,
    ItemStarted,
    ThreadEvent,
    TurnCompleted,
    TurnStarted,
)
from tests.postgres import fresh_database

T0 = 1_750_000_000.0


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "piano.db"


def set_up(writer: Writer, *threads: str) -> None:
    """A telegram surface, a codex agent and the given threads (conversation chat:<id>)."""
    writer.upsert_surface("telegram", "telegram", name="Telegram")
    writer.upsert_agent("codex", "codex", model="gpt-5")
    for thread_id in threads:
        writer.create_thread(thread_id, "telegram", f"chat:{thread_id}", "codex", at=T0)


class SyncBackend:
    """A `StoreBackend` called like the synchronous `Writer` (each call run on the portal's
    event loop and waited for)."""

    def __init__(self, portal: BlockingPortal, backend: PostgresBackend) -> None:
        self.portal = portal
        self.backend = backend

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.backend, name)
        return lambda *args, **kwargs: self.portal.call(partial(method, *args, **kwargs))


@pytest.fixture(params=["sqlite", "postgres"])
def backend_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
def pg_database(backend_kind: str) -> Iterator[str]:
    """The DSN of the test's own database (postgres only)."""
    if backend_kind != "postgres":
        yield ""
        return
    with fresh_database() as dsn:
        yield dsn


@pytest.fixture
def writer(backend_kind: str, path: Path, pg_database: str) -> Iterator[Writer]:
    if backend_kind == "sqlite":
        with Writer(path) as writer:
            set_up(writer, "t1", "t2")
            yield writer
        return
    with start_blocking_portal() as portal:
        backend = portal.call(PostgresBackend.open, pg_database)
        facade = cast(Writer, SyncBackend(portal, backend))
        try:
            set_up(facade, "t1", "t2")
            yield facade
        finally:
            portal.call(backend.close)


@pytest.fixture
def reader(
    writer: Writer, backend_kind: str, path: Path, pg_database: str
) -> Iterator[StoreReader]:
    opened = StoreReader(path) if backend_kind == "sqlite" else PostgresReader(pg_database)
    with opened as reader:
        yield reader


_TABLES = ("events", "interactions", "items", "approvals", "token_usage", "threads")


@pytest.fixture
def dump(
    backend_kind: str, path: Path, pg_database: str
) -> Callable[[], dict[str, list[tuple[object, ...]]]]:
    """Every row of the store's tables, per table, in a stable order."""

    def rows() -> dict[str, list[tuple[object, ...]]]:
        if backend_kind == "sqlite":
            db = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
            try:
                return {
                    table: db.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()
                    for table in _TABLES
                }
            finally:
                db.close()
        with psycopg.connect(pg_database) as connection:
            return {
                table: sorted(connection.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
                for table in _TABLES
            }

    return rows


def started(
    thread: str, interaction: str, turn: str, text: str = "hello", at: float = T0
) -> TurnStarted:
    return TurnStarted(
        thread_id=thread,
        turn_id=turn,
        interaction_id=interaction,
        interaction=Interaction(id=interaction, text=text, user="alice"),
        agent="codex",
        at=at,
    )


def item_started(thread: str, turn: str, item: Item, interaction: str | None = None) -> ItemStarted:
    return ItemStarted(thread_id=thread, turn_id=turn, interaction_id=interaction, item=item)


def item_completed(
    thread: str, turn: str, item: Item, interaction: str | None = None
) -> ItemCompleted:
    return ItemCompleted(thread_id=thread, turn_id=turn, interaction_id=interaction, item=item)


def delta(thread: str, turn: str, item_id: str, text: str, stream: str = "text") -> ItemDelta:
    return ItemDelta(
        thread_id=thread,
        turn_id=turn,
        item_id=item_id,
        stream=stream,  # type: ignore[arg-type]
        delta=text,
    )


def completed(
    thread: str, turn: str, response: str = "done", status: str = "completed", **kw: object
) -> TurnCompleted:
    return TurnCompleted(
        thread_id=thread,
        turn_id=turn,
        status=status,  # type: ignore[arg-type]
        response=response,
        **kw,  # type: ignore[arg-type]
    )


def simple_turn(thread: str, interaction: str, turn: str, answer: str) -> list[ThreadEvent]:
    """A whole turn: started, one streamed agent message, completed."""
    message = f"{turn}-msg"
    return [
        started(thread, interaction, turn),
        item_started(thread, turn, Item(id=message, kind="agent_message")),
        delta(thread, turn, message, answer[: len(answer) // 2]),
        delta(thread, turn, message, answer[len(answer) // 2 :]),
        item_completed(
            thread, turn, Item(id=message, kind="agent_message", text=answer, status="completed")
        ),
        completed(thread, turn, response=answer),
    ]


def tool_approval(**fields: Any) -> ApprovalRequested:
    """A tool-call approval as Piano makes it from codex's MCP elicitation."""
    defaults: dict[str, Any] = {
        "thread_id": "t1",
        "approval_id": "a1",
        "item_id": "call_1",
        "kind": "tool_call",
        "tool": "piano.web_fetch",
        "arguments": '{"url": "https://example.org/"}',
        "reason": 'Allow the piano MCP server to run tool "web_fetch"?',
    }
    return ApprovalRequested(**(defaults | fields))
