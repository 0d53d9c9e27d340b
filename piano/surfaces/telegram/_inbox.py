"""The durable inbox: an update is stored before Telegram is told it was received.

Telegram forgets an update once a later ``getUpdates`` asks for an `offset` past it (polling),
or once the webhook POST that carried it is answered 200. PTB's `Updater` confirms offsets at
its next ``getUpdates``, when the previous batch is only on an in-memory queue: a crash then
loses those updates. So the surface drives ``getUpdates`` itself with PTB's `Bot`:

1. ``getUpdates(offset=last stored + 1)`` — this confirms only updates already in the inbox;
2. every update it returns is written here (one transaction, ``INSERT OR IGNORE`` by
   `update_id`) before the next ``getUpdates``; a webhook POST is written before it is answered;
3. the actor processes pending updates in `update_id` order and marks each processed as soon as
   its effect is done: a message once it is *accepted* — its interaction recorded in the store
   as pending (`ThreadDirectory.record_interaction`) and put in its thread's mailbox, with no
   await between the two last steps — never before, and never waiting for the thread to answer
   (which can take as long as Codex takes to start a turn); a button once decided.

So a crash loses nothing (what Telegram forgot is here, and pending updates are processed first
at start-up; what was accepted is in the store, where the daemon's start-up recovery finds it),
and nothing is processed twice (an update Telegram sends again is ignored by `update_id`, and a
processed one is never pending). The window left is a crash between the interaction being
recorded and the mark: the update is then processed again with the same interaction id
(``tg-<bot>-<update_id>``), which the store records once.

The tables are the surface's own (`TELEGRAM_TABLES`, migrated here), written through the
process's one write connection to Piano's database (`piano.store.Writer.open`). The same
database keeps the surface's conversations (chat, forum topic, chosen agent), so a
restarted surface resubscribes to their threads; the **outbox** (`OutboxRow`: every answer until
Telegram has taken it, so an outage or a restart delays it and never loses it); and the
**status messages** of turns (`StatusRow`: so a restarted surface still closes a "⏳ Working…"
message when its turn ends, instead of leaving it forever).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import msgspec

from piano.store import SqliteDialect, StoreLocation, Writer, location_of
from piano.surfaces.telegram._tables import TELEGRAM_TABLES

__all__ = ["Conversation", "Inbox", "OutboxRow", "PostgresInbox", "StatusRow", "open_inbox"]

_json = msgspec.json.Encoder()
_decode = msgspec.json.Decoder(dict[str, Any])


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """A stored outgoing message: `body` as the outbox encoded it, `data` a document's bytes."""

    id: int
    chat_id: int
    body: str
    data: bytes | None


@dataclass(frozen=True, slots=True)
class StatusRow:
    """A turn's status message, kept until it shows how the turn ended; `answered` once the
    turn's answer is in the outbox."""

    chat_id: int
    message_id: int
    thread_id: str
    interaction_id: str | None
    conversation: str
    topic_id: int | None
    agent: str
    answered: bool


@dataclass(frozen=True, slots=True)
class Conversation:
    """A chat, or a forum topic of one, and the agent answering there."""

    conversation: str
    chat_id: int
    topic_id: int | None
    agent: str


class Inbox:
    """The Telegram surface's durable state for one bot; see the module documentation."""

    def __init__(self, path: str | Path, bot: str, clock: Callable[[], float] = time.time) -> None:
        self.bot = bot
        self.clock = clock
        self.writer = Writer.open(path)
        try:
            self.writer.ensure(TELEGRAM_TABLES)
        except BaseException:
            self.writer.close()
            raise

    def close(self) -> None:
        self.writer.close()

    # -- updates -----------------------------------------------------------------------------

    def store(self, updates: list[dict[str, Any]]) -> int:
        """Write updates not seen before; return how many were new."""
        now = self.clock()
        with self.writer.transaction() as db:
            before = db.total_changes()
            db.executemany(
                "INSERT OR IGNORE INTO telegram_inbox (bot, update_id, body, received_at) "
                "VALUES (?, ?, ?, ?)",
                [
                    (self.bot, int(update["update_id"]), _json.encode(update).decode(), now)
                    for update in updates
                ],
            )
            return db.total_changes() - before

    def pending(self, limit: int = 100) -> list[dict[str, Any]]:
        """Stored, unprocessed updates, oldest first."""
        with self.writer.reading() as db:
            rows = db.execute(
                "SELECT body FROM telegram_inbox WHERE bot = ? AND processed_at IS NULL "
                "ORDER BY update_id LIMIT ?",
                (self.bot, limit),
            ).fetchall()
        return [_decode.decode(str(body)) for (body,) in rows]

    def processed(self, update_id: int) -> bool:
        with self.writer.reading() as db:
            row = db.execute(
                "SELECT processed_at FROM telegram_inbox WHERE bot = ? AND update_id = ?",
                (self.bot, update_id),
            ).fetchone()
        return row is not None and row[0] is not None

    def mark_processed(self, update_id: int) -> None:
        with self.writer.transaction() as db:
            db.execute(
                "UPDATE telegram_inbox SET processed_at = ? WHERE bot = ? AND update_id = ?",
                (self.clock(), self.bot, update_id),
            )

    def next_offset(self) -> int | None:
        """The `offset` for the next getUpdates: one past the newest stored update."""
        with self.writer.reading() as db:
            row = db.execute(
                "SELECT max(update_id) FROM telegram_inbox WHERE bot = ?", (self.bot,)
            ).fetchone()
        return None if row is None or row[0] is None else int(row[0]) + 1

    def prune(self, older_than: float) -> None:
        """Forget processed updates received more than `older_than` seconds ago (the newest
        is kept: it holds the offset)."""
        with self.writer.transaction() as db:
            db.execute(
                "DELETE FROM telegram_inbox WHERE bot = ? AND processed_at IS NOT NULL "
                "AND received_at < ? AND update_id < "
                "(SELECT max(update_id) FROM telegram_inbox WHERE bot = ?)",
                (self.bot, self.clock() - older_than, self.bot),
            )

    # -- conversations ------------------------------------------------------------------------

    def conversations(self) -> list[Conversation]:
        with self.writer.reading() as db:
            rows = db.execute(
                "SELECT conversation, chat_id, topic_id, agent FROM telegram_conversations "
                "WHERE bot = ? ORDER BY conversation",
                (self.bot,),
            ).fetchall()
        conversations = []
        for name, chat, topic, agent in rows:
            assert isinstance(chat, int)
            assert topic is None or isinstance(topic, int)
            conversations.append(Conversation(str(name), chat, topic, str(agent)))
        return conversations

    def remember(self, conversation: Conversation) -> None:
        with self.writer.transaction() as db:
            db.execute(
                "INSERT INTO telegram_conversations "
                "(bot, conversation, chat_id, topic_id, agent, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (bot, conversation) DO UPDATE SET "
                "agent = excluded.agent, updated_at = excluded.updated_at",
                (
                    self.bot,
                    conversation.conversation,
                    conversation.chat_id,
                    conversation.topic_id,
                    conversation.agent,
                    self.clock(),
                ),
            )

    # -- the outbox ---------------------------------------------------------------------------

    def outbox_add(self, chat_id: int, body: str, data: bytes | None = None) -> int:
        """Keep an outgoing message until `outbox_done`; its row id (the order of sending)."""
        with self.writer.transaction() as db:
            db.execute(
                "INSERT INTO telegram_outbox (bot, chat_id, body, data, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (self.bot, chat_id, body, data, self.clock()),
            )
            row = db.last_insert_rowid()
        return row

    def outbox_done(self, row: int) -> None:
        with self.writer.transaction() as db:
            db.execute("DELETE FROM telegram_outbox WHERE id = ?", (row,))

    def outbox(self) -> list[OutboxRow]:
        """Every message not yet taken by Telegram, oldest first."""
        with self.writer.reading() as db:
            rows = db.execute(
                "SELECT id, chat_id, body, data FROM telegram_outbox WHERE bot = ? ORDER BY id",
                (self.bot,),
            ).fetchall()
        return [
            OutboxRow(_int(row), _int(chat), str(body), data if isinstance(data, bytes) else None)
            for row, chat, body, data in rows
        ]

    # -- status messages ----------------------------------------------------------------------

    def status_shown(self, row: StatusRow) -> None:
        with self.writer.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO telegram_status (bot, chat_id, message_id, thread_id, "
                "interaction_id, conversation, topic_id, agent, answered, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    self.bot,
                    row.chat_id,
                    row.message_id,
                    row.thread_id,
                    row.interaction_id,
                    row.conversation,
                    row.topic_id,
                    row.agent,
                    int(row.answered),
                    self.clock(),
                ),
            )

    def status_answered(self, chat_id: int, message_id: int) -> None:
        with self.writer.transaction() as db:
            db.execute(
                "UPDATE telegram_status SET answered = 1 "
                "WHERE bot = ? AND chat_id = ? AND message_id = ?",
                (self.bot, chat_id, message_id),
            )

    def status_closed(self, chat_id: int, message_id: int) -> None:
        with self.writer.transaction() as db:
            db.execute(
                "DELETE FROM telegram_status WHERE bot = ? AND chat_id = ? AND message_id = ?",
                (self.bot, chat_id, message_id),
            )

    def open_statuses(self) -> list[StatusRow]:
        """Status messages not yet showing how their turn ended, oldest first."""
        with self.writer.reading() as db:
            rows = db.execute(
                "SELECT chat_id, message_id, thread_id, interaction_id, conversation, topic_id, "
                "agent, answered FROM telegram_status WHERE bot = ? ORDER BY created_at",
                (self.bot,),
            ).fetchall()
        return [
            StatusRow(
                _int(chat),
                _int(message),
                str(thread),
                None if interaction is None else str(interaction),
                str(conversation),
                None if topic is None else _int(topic),
                str(agent),
                bool(answered),
            )
            for chat, message, thread, interaction, conversation, topic, agent, answered in rows
        ]


def _int(value: object) -> int:
    assert isinstance(value, int)
    return value


class PostgresInbox(Inbox):
    """The same inbox in a PostgreSQL store (tables of owner ``telegram``, migrated by the
    store's writer): the queries are `Inbox`'s, through the store's SQLite-spelling dialect,
    except the three SQLite-only statements below. A lost server raises `StoreUnavailable`."""

    def __init__(
        self, location: StoreLocation, bot: str, clock: Callable[[], float] = time.time
    ) -> None:
        self.bot = bot
        self.clock = clock
        self.dialect = SqliteDialect(location.dsn, location.connect_timeout)
        self.writer = cast(Any, self.dialect)  # transaction() and reading(), as Writer's

    def store(self, updates: list[dict[str, Any]]) -> int:
        now = self.clock()
        added = 0
        with self.dialect.transaction():
            for update in updates:
                added += self.dialect.execute(
                    "INSERT INTO telegram_inbox (bot, update_id, body, received_at) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (bot, update_id) DO NOTHING",
                    (self.bot, int(update["update_id"]), _pg_json(update), now),
                ).rowcount
        return added

    def outbox_add(self, chat_id: int, body: str, data: bytes | None = None) -> int:
        with self.dialect.transaction():
            row = self.dialect.execute(
                "INSERT INTO telegram_outbox (bot, chat_id, body, data, created_at) "
                "VALUES (?, ?, ?, ?, ?) RETURNING id",
                (self.bot, chat_id, body.replace("\\u0000", "\\ufffd"), data, self.clock()),
            ).fetchone()
        assert row is not None
        return int(row[0])

    def status_shown(self, row: StatusRow) -> None:
        with self.dialect.transaction():
            self.dialect.execute(
                "INSERT INTO telegram_status (bot, chat_id, message_id, thread_id, "
                "interaction_id, conversation, topic_id, agent, answered, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (bot, chat_id, message_id) DO UPDATE SET "
                "thread_id = excluded.thread_id, interaction_id = excluded.interaction_id, "
                "conversation = excluded.conversation, topic_id = excluded.topic_id, "
                "agent = excluded.agent, answered = excluded.answered, "
                "created_at = excluded.created_at",
                (
                    self.bot,
                    row.chat_id,
                    row.message_id,
                    row.thread_id,
                    row.interaction_id,
                    row.conversation,
                    row.topic_id,
                    row.agent,
                    int(row.answered),
                    self.clock(),
                ),
            )


def _pg_json(update: dict[str, Any]) -> str:
    # jsonb cannot hold \u0000; a NUL in a message's text becomes U+FFFD
    return _json.encode(update).decode().replace("\\u0000", "\\ufffd")


def open_inbox(store: str | Path | StoreLocation, bot: str) -> Inbox:
    """The inbox of `bot` in the store at `store` (a path: SQLite)."""
    location = location_of(store)
    if location.backend == "postgres":
        return PostgresInbox(location, bot)
    assert location.path is not None
    return Inbox(location.path, bot)
