"""The Telegram surface's durable state, the OpenAI notes and histories on a PostgreSQL store:
the same behaviour as on SQLite, against a real server (the tables migrated by the store's
writer, as in the daemon)."""

from __future__ import annotations

import pytest

from piano.agents.openai import Message, PostgresHistory
from piano.config import TelegramConfig
from piano.store import PostgresBackend, StoreLocation
from piano.surfaces.telegram import Conversation, PostgresInbox, open_inbox
from piano.surfaces.telegram._access import Access
from piano.surfaces.telegram._inbox import OutboxRow, StatusRow
from piano.tools import PostgresNotes
from tests.postgres import pg_dsn

__all__ = ["pg_dsn"]

pytestmark = pytest.mark.anyio


@pytest.fixture
async def location(pg_dsn: str) -> StoreLocation:
    backend = await PostgresBackend.open(pg_dsn)  # migrates every owner's tables
    await backend.close()
    return StoreLocation.postgres(pg_dsn)


async def test_updates_are_stored_once_processed_in_order_and_give_the_next_offset(
    location: StoreLocation,
) -> None:
    inbox = open_inbox(location, "bot1")
    assert isinstance(inbox, PostgresInbox)
    try:
        update = {"update_id": 7, "message": {"text": "hi \x00 there", "chat": {"id": 1}}}
        assert inbox.store([update, {"update_id": 8}]) == 2
        assert inbox.store([update]) == 0  # Telegram sent it again: ignored
        assert [u["update_id"] for u in inbox.pending()] == [7, 8]
        assert inbox.pending()[0]["message"]["text"] == "hi \ufffd there"
        inbox.mark_processed(7)
        assert inbox.processed(7)
        assert not inbox.processed(8)
        assert [u["update_id"] for u in inbox.pending()] == [8]
        assert inbox.next_offset() == 9
        assert open_inbox(location, "bot2").next_offset() is None  # another bot's inbox
    finally:
        inbox.close()


async def test_conversations_outbox_statuses_and_the_audit_survive_a_reopen(
    location: StoreLocation,
) -> None:
    inbox = open_inbox(location, "bot1")
    chat = Conversation("chat:5", 5, None, "default")
    inbox.remember(chat)
    inbox.remember(Conversation("chat:5", 5, None, "archivist"))
    first = inbox.outbox_add(5, '{"text": "one"}')
    second = inbox.outbox_add(5, '{"text": "two"}', b"\x00\x01document")
    inbox.outbox_done(first)
    status = StatusRow(5, 99, "t1", "i1", "chat:5", None, "default", False)
    inbox.status_shown(status)
    inbox.status_answered(5, 99)
    access = Access(TelegramConfig(users={"1001": "admin"}), inbox.writer, "bot1")
    access.audit("message", "refused", user_id=2002, chat_id=5, detail="a stranger")
    inbox.close()

    reopened = open_inbox(location, "bot1")
    try:
        assert reopened.conversations() == [Conversation("chat:5", 5, None, "archivist")]
        [row] = reopened.outbox()
        assert row == OutboxRow(second, 5, row.body, b"\x00\x01document")
        assert '"two"' in row.body
        [open_status] = reopened.open_statuses()
        assert open_status.answered
        assert open_status.message_id == 99
        reopened.status_closed(5, 99)
        assert reopened.open_statuses() == []
        audit = Access(TelegramConfig(), reopened.writer, "bot1").entries()
        assert audit == [(2002, 5, "message", "refused", "a stranger")]
    finally:
        reopened.close()


async def test_notes_and_histories_are_kept_per_owner_and_thread(location: StoreLocation) -> None:
    pool = location.pool()
    try:
        notes = PostgresNotes(pool)
        await notes.save("web:alice", "groceries", "eggs")
        await notes.save("web:alice", "groceries", "eggs, milk")  # saving again replaces
        await notes.save("web:bob", "secret", "only bob's")
        assert await notes.get("web:alice", "groceries") == "eggs, milk"
        assert await notes.titles("web:alice") == ["groceries"]
        assert await notes.get("web:alice", "secret") is None

        history = PostgresHistory(pool)
        assert await history.load("t1") == (None, [])
        await history.append("t1", "concierge", [Message(role="user", text="hello")])
        await history.append(
            "t1", "archivist", [Message(role="assistant", text="hi", agent="archivist")]
        )
        agent, messages = await history.load("t1")
        assert agent == "archivist"
        assert [(m.role, m.text) for m in messages] == [("user", "hello"), ("assistant", "hi")]
    finally:
        await pool.close()
