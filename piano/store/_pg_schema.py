"""The PostgreSQL schema: every table the SQLite store has, versioned per owner.

Each owner of tables (the store's journal and conversations, the jail's audit, the Telegram
surface, the OpenAI backend, the Codex backend's rollouts) has its own list of migrations in
`PG_MIGRATIONS` and its own row in ``schema_versions``; `PG_MIGRATIONS[owner][n]` takes that
owner from version n to n + 1. Append only: never edit a released script.

`migrate_pg` runs every pending migration in one transaction under a transaction-scoped
advisory lock, so two daemons starting at once against one fresh database migrate it once, and
a crash mid-migration leaves every owner at its previous version (PostgreSQL's DDL is
transactional). An owner found at a version beyond this code's is refused with `SchemaTooNew`,
nothing changed.

The columns mirror SQLite's (piano.store._schema), so records read the same from either
backend: times are Unix seconds (``double precision``), JSON documents are ``jsonb`` except the
journal's bodies (``text``: appended on the hot path, read back whole), identifiers ``text``,
Telegram's ids ``bigint``. threads and interactions have a ``rowid`` (an identity) for the
readers' tie-breaks in insertion order, as SQLite's rowid. ``interactions."user"`` is quoted
(USER is reserved in PostgreSQL).
"""

from __future__ import annotations

from typing import Final

import psycopg
from psycopg.rows import TupleRow

from piano.store._connection import SchemaTooNew

__all__ = [
    "CLUSTER_LOCK_CLASS",
    "MIGRATION_LOCK",
    "PG_MIGRATIONS",
    "PG_SCHEMA_VERSIONS",
    "migrate_pg",
    "migrate_pg_sync",
    "pg_versions",
]

MIGRATION_LOCK: Final = 0x5049414E4F  # "PIANO": pg_advisory_xact_lock key for migrations
CLUSTER_LOCK_CLASS: Final = 0x5049  # "PI": pg_advisory_lock(class, nodes.lock_key) of a node

_STORE_V1: Final = """
CREATE TABLE surfaces (
    id          text PRIMARY KEY,
    kind        text NOT NULL,
    name        text NOT NULL DEFAULT '',
    config      jsonb NOT NULL DEFAULT '{}',
    created_at  double precision NOT NULL,
    updated_at  double precision NOT NULL
);

CREATE TABLE users (
    id           text PRIMARY KEY,
    surface      text NOT NULL REFERENCES surfaces(id),
    external_id  text NOT NULL,
    display_name text NOT NULL DEFAULT '',
    role         text NOT NULL DEFAULT 'user',
    created_at   double precision NOT NULL,
    updated_at   double precision NOT NULL,
    UNIQUE (surface, external_id)
);

CREATE TABLE agents (
    name        text PRIMARY KEY,
    backend     text NOT NULL,
    model       text NOT NULL DEFAULT '',
    config      jsonb NOT NULL DEFAULT '{}',
    created_at  double precision NOT NULL,
    updated_at  double precision NOT NULL
);

CREATE TABLE threads (
    rowid            bigint GENERATED ALWAYS AS IDENTITY,
    id               text PRIMARY KEY,
    surface          text NOT NULL REFERENCES surfaces(id),
    conversation     text NOT NULL,
    agent            text NOT NULL REFERENCES agents(name),
    codex_thread_id  text UNIQUE,
    status           text NOT NULL DEFAULT 'idle'
                     CHECK (status IN ('idle', 'running', 'archived')),
    created_at       double precision NOT NULL,
    updated_at       double precision NOT NULL
);
CREATE INDEX threads_by_conversation ON threads (surface, conversation, agent, created_at);

CREATE TABLE interactions (
    rowid        bigint GENERATED ALWAYS AS IDENTITY,
    id           text PRIMARY KEY,
    thread_id    text NOT NULL REFERENCES threads(id),
    "user"       text,
    agent        text,
    text         text NOT NULL,
    attachments  jsonb NOT NULL DEFAULT '[]',
    status       text NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'in_progress', 'completed', 'failed', 'interrupted')),
    response     text NOT NULL DEFAULT '',
    error        text,
    turn_id      text,
    created_at   double precision NOT NULL,
    started_at   double precision,
    finished_at  double precision
);
CREATE INDEX interactions_by_thread ON interactions (thread_id, created_at);
CREATE INDEX interactions_by_turn ON interactions (thread_id, turn_id);

CREATE TABLE items (
    thread_id       text NOT NULL REFERENCES threads(id),
    id              text NOT NULL,
    interaction_id  text REFERENCES interactions(id),
    turn_id         text,
    seq             bigint NOT NULL,
    kind            text NOT NULL,
    status          text NOT NULL
                    CHECK (status IN ('in_progress', 'completed', 'failed', 'declined',
                                      'interrupted')),
    text            text NOT NULL DEFAULT '',
    command         text,
    cwd             text,
    output          text NOT NULL DEFAULT '',
    exit_code       bigint,
    changes         jsonb NOT NULL DEFAULT '[]',
    tool            text,
    arguments       text,
    agent           text,
    started_at      double precision NOT NULL,
    completed_at    double precision,
    UNIQUE (thread_id, id),
    UNIQUE (thread_id, seq)
);
CREATE INDEX items_by_interaction ON items (interaction_id, seq);
CREATE INDEX items_by_turn ON items (thread_id, turn_id, status);

CREATE TABLE token_usage (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    thread_id            text NOT NULL REFERENCES threads(id),
    turn_id              text,
    interaction_id       text REFERENCES interactions(id),
    input_tokens         bigint NOT NULL,
    cached_input_tokens  bigint NOT NULL,
    output_tokens        bigint NOT NULL,
    reasoning_tokens     bigint NOT NULL,
    total_tokens         bigint NOT NULL,
    at                   double precision NOT NULL
);
CREATE INDEX token_usage_by_thread ON token_usage (thread_id, interaction_id);

CREATE TABLE approvals (
    thread_id       text NOT NULL REFERENCES threads(id),
    id              text NOT NULL,
    item_id         text NOT NULL,
    interaction_id  text REFERENCES interactions(id),
    turn_id         text,
    kind            text NOT NULL CONSTRAINT approvals_kind
                    CHECK (kind IN ('command', 'file_change')),
    command         text,
    cwd             text,
    reason          text,
    changes         jsonb NOT NULL DEFAULT '[]',
    requested_at    double precision NOT NULL,
    expires_at      double precision,
    decision        text
                    CHECK (decision IN ('accept', 'decline', 'cancel', 'expired', 'withdrawn')),
    decided_by      text,
    decided_at      double precision,
    UNIQUE (thread_id, id)
);
CREATE INDEX approvals_pending ON approvals (decision, requested_at);

CREATE TABLE events (
    thread_id  text NOT NULL REFERENCES threads(id),
    seq        bigint NOT NULL,
    type       text NOT NULL,
    at         double precision NOT NULL,
    body       text NOT NULL,
    PRIMARY KEY (thread_id, seq)
);
"""

_STORE_V2_TOOL_APPROVALS: Final = """
ALTER TABLE approvals ADD COLUMN tool text, ADD COLUMN arguments text;
ALTER TABLE approvals DROP CONSTRAINT approvals_kind;
ALTER TABLE approvals ADD CONSTRAINT approvals_kind
    CHECK (kind IN ('command', 'file_change', 'tool_call'));
"""

# Room on each page for an updated row's new version: a delta appended to an item's text or
# output, a turn's interaction finished, change no indexed column, so with free space on the
# page PostgreSQL updates them HOT (no new entry in any of the table's indexes). With the
# default fillfactor (100) pages fill up and about 3% of the items' updates were HOT; with 70,
# about a third, and a 500-event batch is about 8% shorter (docs/BENCHMARKS.md, PostgreSQL).
# Applies to pages filled from now on; nothing is rewritten.
_STORE_V3_FILLFACTOR: Final = """
ALTER TABLE items SET (fillfactor = 70);
ALTER TABLE interactions SET (fillfactor = 70);
"""

_STORE_V4_CONVERSATION_SETTINGS: Final = """
CREATE TABLE conversation_settings (
    surface       text NOT NULL,
    conversation  text NOT NULL,
    agent         text NOT NULL,
    model         text,
    effort        text,
    updated_at    double precision NOT NULL,
    PRIMARY KEY (surface, conversation, agent)
);
ALTER TABLE token_usage ADD COLUMN model text;
"""

_JAIL_V1: Final = """
CREATE TABLE shell_commands (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    thread_id       text NOT NULL REFERENCES threads(id),
    session         text NOT NULL,
    command         text NOT NULL,
    exit_code       bigint,
    timed_out       integer NOT NULL CHECK (timed_out IN (0, 1)),
    restart_reason  text,
    stdout          text NOT NULL DEFAULT '',
    stderr          text NOT NULL DEFAULT '',
    stdout_bytes    bigint NOT NULL,
    stderr_bytes    bigint NOT NULL,
    started_at      double precision NOT NULL,
    duration        double precision NOT NULL,
    recorded_at     double precision NOT NULL
);
CREATE INDEX shell_commands_by_thread ON shell_commands (thread_id, id);
"""

_TELEGRAM_V1: Final = """
CREATE TABLE telegram_inbox (
    bot           text NOT NULL,
    update_id     bigint NOT NULL,
    body          jsonb NOT NULL,
    received_at   double precision NOT NULL,
    processed_at  double precision,
    PRIMARY KEY (bot, update_id)
);
CREATE INDEX telegram_inbox_pending ON telegram_inbox (bot, processed_at, update_id);

CREATE TABLE telegram_conversations (
    bot           text NOT NULL,
    conversation  text NOT NULL,
    chat_id       bigint NOT NULL,
    topic_id      bigint,
    agent         text NOT NULL,
    updated_at    double precision NOT NULL,
    PRIMARY KEY (bot, conversation)
);

CREATE TABLE telegram_audit (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    bot      text NOT NULL,
    at       double precision NOT NULL,
    user_id  bigint,
    chat_id  bigint,
    action   text NOT NULL,
    outcome  text NOT NULL,
    detail   text NOT NULL DEFAULT ''
);
CREATE INDEX telegram_audit_by_time ON telegram_audit (bot, at);

CREATE TABLE telegram_outbox (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    bot         text NOT NULL,
    chat_id     bigint NOT NULL,
    body        jsonb NOT NULL,
    data        bytea,
    created_at  double precision NOT NULL
);

CREATE TABLE telegram_status (
    bot             text NOT NULL,
    chat_id         bigint NOT NULL,
    message_id      bigint NOT NULL,
    thread_id       text NOT NULL,
    interaction_id  text,
    conversation    text NOT NULL,
    topic_id        bigint,
    agent           text NOT NULL,
    answered        integer NOT NULL DEFAULT 0,
    created_at      double precision NOT NULL,
    PRIMARY KEY (bot, chat_id, message_id)
);
"""

_OPENAI_V1: Final = """
CREATE TABLE agent_messages (
    thread_id  text NOT NULL,
    seq        bigint NOT NULL,
    role       text NOT NULL CHECK (role IN ('user', 'assistant', 'tool')),
    agent      text,
    body       jsonb NOT NULL,
    at         double precision NOT NULL,
    PRIMARY KEY (thread_id, seq)
);

CREATE TABLE agent_threads (
    thread_id     text PRIMARY KEY,
    active_agent  text NOT NULL,
    updated_at    double precision NOT NULL
);

"""

_NOTES_V1: Final = """
CREATE TABLE agent_notes (
    owner       text NOT NULL,
    title       text NOT NULL,
    body        text NOT NULL,
    created_at  double precision NOT NULL,
    updated_at  double precision NOT NULL,
    PRIMARY KEY (owner, title)
);
"""

_CODEX_V1: Final = """
CREATE TABLE rollouts (
    codex_thread_id  text PRIMARY KEY,
    thread_id        text NOT NULL,
    path             text NOT NULL,
    size             bigint NOT NULL,
    digest           text NOT NULL,
    chunks           integer NOT NULL,
    updated_at       double precision NOT NULL
);

CREATE TABLE rollout_chunks (
    codex_thread_id  text NOT NULL,
    seq              integer NOT NULL,
    data             bytea NOT NULL,
    PRIMARY KEY (codex_thread_id, seq)
);
"""

_SCHEDULES_V1: Final = """
CREATE TABLE schedules (
    id            text PRIMARY KEY,
    origin        text NOT NULL,
    agent         text NOT NULL,
    prompt        text NOT NULL,
    cron          text,
    every         double precision,
    surface       text NOT NULL,
    conversation  text NOT NULL,
    chat_agent    text NOT NULL,
    created_by    text,
    created_at    double precision NOT NULL,
    anchor        double precision NOT NULL,
    last_due      double precision,
    cancelled_at  double precision
);
"""

# The cluster's membership and conversations' leases (piano.cluster; PostgreSQL only, as a
# cluster needs this store). A node's lock_key names its session advisory lock (class
# CLUSTER_LOCK_CLASS), held on the node's own connection for its life: the lock present in
# pg_locks is the node alive. A lease's epoch only grows; (node_id, lock_key, epoch) is who may
# write the thread's events (the store's batch checks it, FOR SHARE).
_CLUSTER_V1: Final = """
CREATE SEQUENCE cluster_lock_keys AS integer;

CREATE TABLE nodes (
    node_id       text PRIMARY KEY,
    lock_key      integer NOT NULL,
    pid           bigint NOT NULL,
    host          text NOT NULL,
    started_at    timestamptz NOT NULL,
    heartbeat_at  timestamptz NOT NULL
);

CREATE TABLE thread_leases (
    thread_id   text PRIMARY KEY,
    node_id     text NOT NULL,
    lock_key    integer NOT NULL,
    epoch       bigint NOT NULL,
    renewed_at  timestamptz NOT NULL
);
CREATE INDEX thread_leases_by_node ON thread_leases (node_id, lock_key);
"""

PG_MIGRATIONS: Final[dict[str, tuple[str, ...]]] = {
    "store": (
        _STORE_V1,
        _STORE_V2_TOOL_APPROVALS,
        _STORE_V3_FILLFACTOR,
        _STORE_V4_CONVERSATION_SETTINGS,
    ),
    "jail": (_JAIL_V1,),
    "telegram": (_TELEGRAM_V1,),
    "openai": (_OPENAI_V1,),
    "notes": (_NOTES_V1,),
    "codex": (_CODEX_V1,),
    "schedules": (_SCHEDULES_V1,),
    "cluster": (_CLUSTER_V1,),
}
"""Each owner's SQL scripts, in the order they are applied (the store first: others refer to
its threads). The owners are the SQLite registry's (piano.store.register: store, jail,
telegram, openai, notes, codex, schedules), and `cluster`, which has no SQLite tables (a
cluster needs PostgreSQL); their versions count separately per backend. Index n migrates that
owner from version n to n + 1. Append only."""

PG_SCHEMA_VERSIONS: Final = {owner: len(scripts) for owner, scripts in PG_MIGRATIONS.items()}

_VERSIONS_TABLE: Final = """
CREATE TABLE IF NOT EXISTS schema_versions (
    owner    text PRIMARY KEY,
    version  integer NOT NULL
)
"""


async def pg_versions(connection: psycopg.AsyncConnection[TupleRow]) -> dict[str, int]:
    """Each owner's schema version in the database (an owner not there is at 0)."""
    cursor = await connection.execute("SELECT to_regclass('schema_versions') IS NOT NULL")
    row = await cursor.fetchone()
    found: dict[str, int] = dict.fromkeys(PG_MIGRATIONS, 0)
    if row is None or not row[0]:
        return found
    cursor = await connection.execute("SELECT owner, version FROM schema_versions")
    for owner, version in await cursor.fetchall():
        found[str(owner)] = int(version)
    return found


async def migrate_pg(
    connection: psycopg.AsyncConnection[TupleRow], where: str = "postgres"
) -> dict[str, int]:
    """Bring every owner to its version in `PG_SCHEMA_VERSIONS`, in one transaction; return
    the versions found before. Raises `SchemaTooNew` (nothing changed) if one is newer.
    `where` names the database in that error (a DSN without its password)."""
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        await connection.execute(_VERSIONS_TABLE)
        found = await pg_versions(connection)
        for owner, version in found.items():
            known = PG_SCHEMA_VERSIONS.get(owner)
            if known is not None and version > known:
                raise SchemaTooNew(f"{where} ({owner} tables)", version, known)
        for owner, scripts in PG_MIGRATIONS.items():
            version = found[owner]
            for script in scripts[version:]:
                await connection.execute(script)
            if version < len(scripts):
                await connection.execute(
                    "INSERT INTO schema_versions (owner, version) VALUES (%s, %s) "
                    "ON CONFLICT (owner) DO UPDATE SET version = excluded.version",
                    (owner, len(scripts)),
                )
    return found


def migrate_pg_sync(connection: psycopg.Connection[TupleRow], where: str = "postgres") -> None:
    """`migrate_pg` on a blocking connection: a reader that reaches a database before the
    writer did (a server that came up late) migrates it itself, under the same lock."""
    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        connection.execute(_VERSIONS_TABLE)
        found = dict.fromkeys(PG_MIGRATIONS, 0)
        for owner, version in connection.execute("SELECT owner, version FROM schema_versions"):
            found[str(owner)] = int(version)
        for owner, version in found.items():
            known = PG_SCHEMA_VERSIONS.get(owner)
            if known is not None and version > known:
                raise SchemaTooNew(f"{where} ({owner} tables)", version, known)
        for owner, scripts in PG_MIGRATIONS.items():
            version = found[owner]
            for script in scripts[version:]:
                connection.execute(script)
            if version < len(scripts):
                connection.execute(
                    "INSERT INTO schema_versions (owner, version) VALUES (%s, %s) "
                    "ON CONFLICT (owner) DO UPDATE SET version = excluded.version",
                    (owner, len(scripts)),
                )
