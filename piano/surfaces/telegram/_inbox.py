"""The durable inbox: an update is stored before Telegram is told it was received.

Telegram forgets an update once a later ``getUpdates`` asks for an `offset` past it (polling),
or once the webhook POST that carried it is answered 200. PTB's `Updater` confirms offsets at
its next ``getUpdates``, when the previous batch is only on an in-memory queue: a crash then
loses those updates. So the surface drives ``getUpdates`` itself with PTB's `Bot`:

1. ``getUpdates(offset=last stored + 1)`` — this confirms only updates already in the inbox;
2. every update it returns is written here (one transaction, ``INSERT OR IGNORE`` by
   `update_id`) before the next ``getUpdates``; a webhook POST is written before it is answered;
3. the actor processes pending updates in `update_id` order and marks each processed as soon as
   its effect is done: a message is marked the moment it is in its thread's mailbox (before the
   thread answers, which can take as long as starting a Codex turn), a button once decided.

So a crash loses nothing (what Telegram forgot is here, and pending updates are processed first
at start-up), and nothing is processed twice (an update Telegram sends again is ignored by
`update_id`, and a processed one is never pending). The window left is a crash between a
message reaching its thread's mailbox and the mark, with no await in between; the interaction
id is derived from the update (``tg-<bot>-<update_id>``) so that even then a replay carries the
same id as the first.

The same database keeps the surface's conversations (chat, forum topic, chosen agent), so a
restarted surface resubscribes to their threads.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import apsw
import msgspec

from piano.store import migrate, open_connection

__all__ = ["Conversation", "Inbox"]

_json = msgspec.json.Encoder()
_decode = msgspec.json.Decoder(dict[str, Any])


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
        self.connection: apsw.Connection = open_connection(path)
        migrate(self.connection)

    def close(self) -> None:
        self.connection.close()

    # -- updates -----------------------------------------------------------------------------

    def store(self, updates: list[dict[str, Any]]) -> int:
        """Write updates not seen before; return how many were new."""
        now = self.clock()
        before = self.connection.total_changes()
        with self.connection:
            self.connection.executemany(
                "INSERT OR IGNORE INTO telegram_inbox (bot, update_id, body, received_at) "
                "VALUES (?, ?, ?, ?)",
                [
                    (self.bot, int(update["update_id"]), _json.encode(update).decode(), now)
                    for update in updates
                ],
            )
        return self.connection.total_changes() - before

    def pending(self, limit: int = 100) -> list[dict[str, Any]]:
        """Stored, unprocessed updates, oldest first."""
        rows = self.connection.execute(
            "SELECT body FROM telegram_inbox WHERE bot = ? AND processed_at IS NULL "
            "ORDER BY update_id LIMIT ?",
            (self.bot, limit),
        ).fetchall()
        return [_decode.decode(str(body)) for (body,) in rows]

    def processed(self, update_id: int) -> bool:
        row = self.connection.execute(
            "SELECT processed_at FROM telegram_inbox WHERE bot = ? AND update_id = ?",
            (self.bot, update_id),
        ).fetchone()
        return row is not None and row[0] is not None

    def mark_processed(self, update_id: int) -> None:
        with self.connection:
            self.connection.execute(
                "UPDATE telegram_inbox SET processed_at = ? WHERE bot = ? AND update_id = ?",
                (self.clock(), self.bot, update_id),
            )

    def next_offset(self) -> int | None:
        """The `offset` for the next getUpdates: one past the newest stored update."""
        row = self.connection.execute(
            "SELECT max(update_id) FROM telegram_inbox WHERE bot = ?", (self.bot,)
        ).fetchone()
        return None if row is None or row[0] is None else int(row[0]) + 1

    def prune(self, older_than: float) -> None:
        """Forget processed updates received more than `older_than` seconds ago (the newest
        is kept: it holds the offset)."""
        with self.connection:
            self.connection.execute(
                "DELETE FROM telegram_inbox WHERE bot = ? AND processed_at IS NOT NULL "
                "AND received_at < ? AND update_id < "
                "(SELECT max(update_id) FROM telegram_inbox WHERE bot = ?)",
                (self.bot, self.clock() - older_than, self.bot),
            )

    # -- conversations ------------------------------------------------------------------------

    def conversations(self) -> list[Conversation]:
        rows = self.connection.execute(
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
        with self.connection:
            self.connection.execute(
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
