"""The database schema and its migrations, applied in order by ``PRAGMA user_version``.

`MIGRATIONS[n]` takes a database from version n to version n + 1; `SCHEMA_VERSION` is their
count. To change the schema, append one SQL script to `MIGRATIONS` (never edit a released one).
Each migration runs in its own ``BEGIN IMMEDIATE`` transaction together with the new
user_version, so a crash mid-migration leaves the database at the previous version, and two
processes opening a fresh database at once migrate it once.

Tables with large rows (items, approvals, events) keep a rowid and a UNIQUE key rather than
being WITHOUT ROWID: rows are appended in commit order and the key index stays small, which
measured 3x faster for journal inserts interleaved across 100 threads.

Tables (all STRICT; times are Unix seconds as REAL; JSON columns are checked with json_valid):
- surfaces, users, agents: who talks to whom, upserted by the app;
- threads: one conversation with an agent on a surface (Piano's id, Codex's thread id, status
  idle / running / archived);
- interactions: one user message and the answer to it (pending -> in_progress -> completed /
  failed / interrupted), with the Codex turn that ran it;
- items: every step Codex reported, in per-thread order (`seq` is the journal sequence number
  of the event that first named the item);
- token_usage: one row per usage report (one model response), summed for totals;
- approvals: requests and their decisions;
- events: the append-only journal of every thread event, numbered per thread from 1.
- telegram_inbox, telegram_conversations, telegram_audit (v2): the Telegram surface's durable
  inbox of updates, its chats and topics with their agent, and its access audit log.
- shell_commands (v3): every command a thread's jailed shell ran, with its exit code, for audit.
- agent_messages, agent_threads, agent_notes (v4): the OpenAI agent backend's conversation
  history per thread (wire-neutral messages), each thread's active agent after handoffs, and
  the notes agents save per user (owner = surface:user).
- approvals (v5): rebuilt to also hold tool-call approvals (kind 'tool_call', with the tool
  and its arguments); SQLite cannot change a CHECK constraint in place.
"""

from __future__ import annotations

from typing import Final

import apsw

from piano.store._connection import SchemaTooNew

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "migrate", "schema_version"]

_V1: Final = """
CREATE TABLE surfaces (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    name        TEXT NOT NULL DEFAULT '',
    config      TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(config)),
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL
) STRICT;

CREATE TABLE users (
    id           TEXT PRIMARY KEY,
    surface      TEXT NOT NULL REFERENCES surfaces(id),
    external_id  TEXT NOT NULL,
    display_name TEXT NOT NULL DEFAULT '',
    role         TEXT NOT NULL DEFAULT 'user',
    created_at   REAL NOT NULL,
    updated_at   REAL NOT NULL,
    UNIQUE (surface, external_id)
) STRICT;

CREATE TABLE agents (
    name        TEXT PRIMARY KEY,
    backend     TEXT NOT NULL,
    model       TEXT NOT NULL DEFAULT '',
    config      TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(config)),
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL
) STRICT;

CREATE TABLE threads (
    id               TEXT PRIMARY KEY,
    surface          TEXT NOT NULL REFERENCES surfaces(id),
    conversation     TEXT NOT NULL,
    agent            TEXT NOT NULL REFERENCES agents(name),
    codex_thread_id  TEXT UNIQUE,
    status           TEXT NOT NULL DEFAULT 'idle'
                     CHECK (status IN ('idle', 'running', 'archived')),
    created_at       REAL NOT NULL,
    updated_at       REAL NOT NULL
) STRICT;
CREATE INDEX threads_by_conversation ON threads (surface, conversation, agent, created_at);

CREATE TABLE interactions (
    id           TEXT PRIMARY KEY,
    thread_id    TEXT NOT NULL REFERENCES threads(id),
    user         TEXT,
    agent        TEXT,
    text         TEXT NOT NULL,
    attachments  TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(attachments)),
    status       TEXT NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'in_progress', 'completed', 'failed', 'interrupted')),
    response     TEXT NOT NULL DEFAULT '',
    error        TEXT,
    turn_id      TEXT,
    created_at   REAL NOT NULL,
    started_at   REAL,
    finished_at  REAL
) STRICT;
CREATE INDEX interactions_by_thread ON interactions (thread_id, created_at);
CREATE INDEX interactions_by_turn ON interactions (thread_id, turn_id);

CREATE TABLE items (
    thread_id       TEXT NOT NULL REFERENCES threads(id),
    id              TEXT NOT NULL,
    interaction_id  TEXT REFERENCES interactions(id),
    turn_id         TEXT,
    seq             INTEGER NOT NULL,
    kind            TEXT NOT NULL,
    status          TEXT NOT NULL
                    CHECK (status IN ('in_progress', 'completed', 'failed', 'declined',
                                      'interrupted')),
    text            TEXT NOT NULL DEFAULT '',
    command         TEXT,
    cwd             TEXT,
    output          TEXT NOT NULL DEFAULT '',
    exit_code       INTEGER,
    changes         TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(changes)),
    tool            TEXT,
    arguments       TEXT,
    agent           TEXT,
    started_at      REAL NOT NULL,
    completed_at    REAL,
    UNIQUE (thread_id, id),
    UNIQUE (thread_id, seq)
) STRICT;
CREATE INDEX items_by_interaction ON items (interaction_id, seq);
CREATE INDEX items_by_turn ON items (thread_id, turn_id, status);

CREATE TABLE token_usage (
    id                   INTEGER PRIMARY KEY,
    thread_id            TEXT NOT NULL REFERENCES threads(id),
    turn_id              TEXT,
    interaction_id       TEXT REFERENCES interactions(id),
    input_tokens         INTEGER NOT NULL,
    cached_input_tokens  INTEGER NOT NULL,
    output_tokens        INTEGER NOT NULL,
    reasoning_tokens     INTEGER NOT NULL,
    total_tokens         INTEGER NOT NULL,
    at                   REAL NOT NULL
) STRICT;
CREATE INDEX token_usage_by_thread ON token_usage (thread_id, interaction_id);

CREATE TABLE approvals (
    thread_id       TEXT NOT NULL REFERENCES threads(id),
    id              TEXT NOT NULL,
    item_id         TEXT NOT NULL,
    interaction_id  TEXT REFERENCES interactions(id),
    turn_id         TEXT,
    kind            TEXT NOT NULL CHECK (kind IN ('command', 'file_change')),
    command         TEXT,
    cwd             TEXT,
    reason          TEXT,
    changes         TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(changes)),
    requested_at    REAL NOT NULL,
    expires_at      REAL,
    decision        TEXT
                    CHECK (decision IN ('accept', 'decline', 'cancel', 'expired', 'withdrawn')),
    decided_by      TEXT,
    decided_at      REAL,
    UNIQUE (thread_id, id)
) STRICT;
CREATE INDEX approvals_pending ON approvals (decision, requested_at);

CREATE TABLE events (
    thread_id  TEXT NOT NULL REFERENCES threads(id),
    seq        INTEGER NOT NULL,
    type       TEXT NOT NULL,
    at         REAL NOT NULL,
    body       TEXT NOT NULL,
    UNIQUE (thread_id, seq)
) STRICT;
"""

_V2_TELEGRAM: Final = """
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

_V3_SHELL_AUDIT: Final = """
CREATE TABLE shell_commands (
    id              INTEGER PRIMARY KEY,
    thread_id       TEXT NOT NULL REFERENCES threads(id),
    session         TEXT NOT NULL,
    command         TEXT NOT NULL,
    exit_code       INTEGER,
    timed_out       INTEGER NOT NULL CHECK (timed_out IN (0, 1)),
    restart_reason  TEXT,
    stdout          TEXT NOT NULL DEFAULT '',
    stderr          TEXT NOT NULL DEFAULT '',
    stdout_bytes    INTEGER NOT NULL,
    stderr_bytes    INTEGER NOT NULL,
    started_at      REAL NOT NULL,
    duration        REAL NOT NULL,
    recorded_at     REAL NOT NULL
) STRICT;
CREATE INDEX shell_commands_by_thread ON shell_commands (thread_id, id);
"""

_V4_OPENAI_AGENTS: Final = """
CREATE TABLE agent_messages (
    thread_id  TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    role       TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'tool')),
    agent      TEXT,
    body       TEXT NOT NULL CHECK (json_valid(body)),
    at         REAL NOT NULL,
    PRIMARY KEY (thread_id, seq)
) STRICT;

CREATE TABLE agent_threads (
    thread_id     TEXT PRIMARY KEY,
    active_agent  TEXT NOT NULL,
    updated_at    REAL NOT NULL
) STRICT;

CREATE TABLE agent_notes (
    owner       TEXT NOT NULL,
    title       TEXT NOT NULL,
    body        TEXT NOT NULL,
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL,
    PRIMARY KEY (owner, title)
) STRICT;
"""

_V5_TOOL_APPROVALS: Final = """
CREATE TABLE approvals_v5 (
    thread_id       TEXT NOT NULL REFERENCES threads(id),
    id              TEXT NOT NULL,
    item_id         TEXT NOT NULL,
    interaction_id  TEXT REFERENCES interactions(id),
    turn_id         TEXT,
    kind            TEXT NOT NULL CHECK (kind IN ('command', 'file_change', 'tool_call')),
    command         TEXT,
    cwd             TEXT,
    reason          TEXT,
    changes         TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(changes)),
    requested_at    REAL NOT NULL,
    expires_at      REAL,
    decision        TEXT
                    CHECK (decision IN ('accept', 'decline', 'cancel', 'expired', 'withdrawn')),
    decided_by      TEXT,
    decided_at      REAL,
    tool            TEXT,
    arguments       TEXT,
    UNIQUE (thread_id, id)
) STRICT;
INSERT INTO approvals_v5 (rowid, thread_id, id, item_id, interaction_id, turn_id, kind, command,
                          cwd, reason, changes, requested_at, expires_at, decision, decided_by,
                          decided_at)
SELECT rowid, thread_id, id, item_id, interaction_id, turn_id, kind, command, cwd, reason, changes,
       requested_at, expires_at, decision, decided_by, decided_at
FROM approvals;
DROP TABLE approvals;
ALTER TABLE approvals_v5 RENAME TO approvals;
CREATE INDEX approvals_pending ON approvals (decision, requested_at);
"""

MIGRATIONS: Final[tuple[str, ...]] = (
    _V1,
    _V2_TELEGRAM,
    _V3_SHELL_AUDIT,
    _V4_OPENAI_AGENTS,
    _V5_TOOL_APPROVALS,
)
"""SQL scripts; index n migrates version n to n + 1. Append only."""

SCHEMA_VERSION: Final = len(MIGRATIONS)


def schema_version(connection: apsw.Connection) -> int:
    version = connection.pragma("user_version")
    assert isinstance(version, int)
    return version


def _check_not_newer(connection: apsw.Connection, version: int) -> None:
    if version > SCHEMA_VERSION:
        raise SchemaTooNew(connection.filename or ":memory:", version, SCHEMA_VERSION)


def migrate(connection: apsw.Connection) -> int:
    """Bring the database to `SCHEMA_VERSION`, one transaction per migration; return the
    version found before. Raises `SchemaTooNew` (and changes nothing) if it is newer."""
    found = schema_version(connection)
    _check_not_newer(connection, found)
    while True:
        connection.execute("BEGIN IMMEDIATE")
        try:
            version = schema_version(connection)  # another process may have migrated meanwhile
            _check_not_newer(connection, version)
            if version == SCHEMA_VERSION:
                connection.execute("COMMIT")
                return found
            connection.execute(MIGRATIONS[version])
            connection.pragma("user_version", version + 1)
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
