"""The Telegram surface's tables in Piano's database, owned and migrated here.

Registered with the store's registry (`piano.store.Tables`, owner ``telegram``):
- v1: ``telegram_inbox`` (every update before Telegram is told it arrived),
  ``telegram_conversations`` (chats and forum topics with their agent) and ``telegram_audit``
  (access decisions);
- v2: ``telegram_outbox`` (answers until Telegram has taken them) and ``telegram_status``
  (turns' status messages). Before the registry the Inbox created these itself when missing, hence
  ``IF NOT EXISTS``: a database taken over from then may already hold them, with rows.
"""

from __future__ import annotations

from typing import Final

from piano.store import Tables, register

__all__ = ["TELEGRAM_TABLES"]

_V1: Final = """
CREATE TABLE telegram_inbox (
    bot           TEXT NOT NULL,
    update_id     INTEGER NOT NULL,
    body          TEXT NOT NULL CHECK (json_valid(body)),
    received_at   REAL NOT NULL,
    processed_at  REAL,
    PRIMARY KEY (bot, update_id)
) STRICT;
CREATE INDEX telegram_inbox_pending ON telegram_inbox (bot, processed_at, update_id);

CREATE TABLE telegram_conversations (
    bot           TEXT NOT NULL,
    conversation  TEXT NOT NULL,
    chat_id       INTEGER NOT NULL,
    topic_id      INTEGER,
    agent         TEXT NOT NULL,
    updated_at    REAL NOT NULL,
    PRIMARY KEY (bot, conversation)
) STRICT;

CREATE TABLE telegram_audit (
    id       INTEGER PRIMARY KEY,
    bot      TEXT NOT NULL,
    at       REAL NOT NULL,
    user_id  INTEGER,
    chat_id  INTEGER,
    action   TEXT NOT NULL,
    outcome  TEXT NOT NULL,
    detail   TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX telegram_audit_by_time ON telegram_audit (bot, at);
"""

_V2_OUTBOX: Final = """
CREATE TABLE IF NOT EXISTS telegram_outbox (
    id          INTEGER PRIMARY KEY,
    bot         TEXT NOT NULL,
    chat_id     INTEGER NOT NULL,
    body        TEXT NOT NULL CHECK (json_valid(body)),
    data        BLOB,
    created_at  REAL NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS telegram_status (
    bot             TEXT NOT NULL,
    chat_id         INTEGER NOT NULL,
    message_id      INTEGER NOT NULL,
    thread_id       TEXT NOT NULL,
    interaction_id  TEXT,
    conversation    TEXT NOT NULL,
    topic_id        INTEGER,
    agent           TEXT NOT NULL,
    answered        INTEGER NOT NULL DEFAULT 0,
    created_at      REAL NOT NULL,
    PRIMARY KEY (bot, chat_id, message_id)
) STRICT;
"""

TELEGRAM_TABLES: Final = register(Tables("telegram", (_V1, _V2_OUTBOX)))
