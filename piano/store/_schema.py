"""Who owns which tables, and their migrations: one registry for every feature's tables.

Each feature owns its tables and their migrations, declared once as `Tables(owner, migrations)`
and registered (`register`): the store's own here (`JOURNAL`, owner ``store``: surfaces, users,
agents, threads, interactions, items, token usage, approvals, the events journal), the Telegram
surface (``telegram``), the OpenAI agents' histories (``openai``), the notes tools (``notes``)
and the jail's audit (``jail``) in their own packages; the names are PostgreSQL's owners too
(piano.store._pg_schema). ``migrations[n]`` takes an owner's tables from version n to n + 1; to
change them, append one SQL script (never edit a released one). Each owner's version is a row
of ``schema_versions``; ``PRAGMA user_version`` holds `SCHEMA_VERSION`, the version of this
layout itself, so that a Piano from before the registry refuses the file (`SchemaTooNew`)
instead of migrating it again.

`migrate(connection, tables)` brings the given owners (all registered ones by default) up to
date, each migration in its own ``BEGIN IMMEDIATE`` transaction together with the new
version, so a crash mid-migration leaves the owner at its previous version, and two processes
opening a fresh database at once migrate it once. An owner whose version in the file is beyond
its code's is refused with `SchemaTooNew`, untouched. Every owner writes through the process's
one write connection (`Writer.open`), so `piano.store` does not change when a feature does.

A database from before the registry (``user_version`` 1 to 5, one sequence for every table)
is taken over in one transaction: its owners' versions are read off the old sequence
(`_LEGACY`), rows kept, and the owners' later migrations follow.

Tables with large rows (items, approvals, events) keep a rowid and a UNIQUE key rather than
being WITHOUT ROWID: rows are appended in commit order and the key index stays small, which
measured 3x faster for journal inserts interleaved across 100 threads.

The journal's tables (all STRICT; times are Unix seconds as REAL; JSON columns are checked with
json_valid):
- surfaces, users, agents: who talks to whom, upserted by the app;
- threads: one conversation with an agent on a surface (Piano's id, Codex's thread id, status
  idle / running / archived);
- interactions: one user message and the answer to it (pending -> in_progress -> completed /
  failed / interrupted), with the Codex turn that ran it;
- items: every step Codex reported, in per-thread order (`seq` is the journal sequence number
  of the event that first named the item);
- token_usage: one row per usage report (one model response), summed for totals;
- approvals: requests and their decisions (journal v2: rebuilt to also hold tool-call
  approvals, kind 'tool_call' with the tool and its arguments; SQLite cannot change a CHECK
  constraint in place);
- events: the append-only journal of every thread event, numbered per thread from 1, unique by
  (thread_id, seq);
- conversation_settings (journal v3): the model and reasoning effort a conversation (surface,
  conversation, agent) chose with ``/model`` and ``/effort``, NULL for the agent's own; v3 also
  gives token_usage the model that used the tokens (for prices).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final, cast

import apsw

from piano.store._connection import SchemaTooNew

__all__ = [
    "JOURNAL",
    "SCHEMA_VERSION",
    "Tables",
    "migrate",
    "owner_versions",
    "register",
    "registered",
    "schema_version",
]


@dataclass(frozen=True, slots=True)
class Tables:
    """The tables `owner` owns: `migrations[n]` takes them from version n to n + 1."""

    owner: str
    migrations: tuple[str, ...]

    @property
    def version(self) -> int:
        return len(self.migrations)


_registry: dict[str, Tables] = {}


def register(tables: Tables) -> Tables:
    """Add an owner's tables to the registry (once per owner); returns them."""
    known = _registry.get(tables.owner)
    if known is not None and known != tables:
        raise ValueError(f"the tables of {tables.owner!r} are registered twice, differently")
    _registry[tables.owner] = tables
    return tables


def registered() -> tuple[Tables, ...]:
    """Every owner registered so far (those whose module has been imported)."""
    return tuple(_registry.values())


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

_V2_TOOL_APPROVALS: Final = """
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

_V3_CONVERSATION_SETTINGS: Final = """
CREATE TABLE conversation_settings (
    surface       TEXT NOT NULL,
    conversation  TEXT NOT NULL,
    agent         TEXT NOT NULL,
    model         TEXT,
    effort        TEXT,
    updated_at    REAL NOT NULL,
    PRIMARY KEY (surface, conversation, agent)
) STRICT;
ALTER TABLE token_usage ADD COLUMN model TEXT;
"""

JOURNAL: Final = register(Tables("store", (_V1, _V2_TOOL_APPROVALS, _V3_CONVERSATION_SETTINGS)))
"""The store's own tables: who talks to whom, threads, interactions, items, usage, approvals
and the events journal."""

SCHEMA_VERSION: Final = 6
"""``PRAGMA user_version`` of a database whose owners' versions are in ``schema_versions``
(1 to 5 were the single sequence before it)."""

_LEGACY: Final[tuple[dict[str, int], ...]] = (
    {},
    {"store": 1},
    {"store": 1, "telegram": 1},
    {"store": 1, "telegram": 1, "jail": 1},
    {"store": 1, "telegram": 1, "jail": 1, "openai": 1, "notes": 1},
    {"store": 2, "telegram": 1, "jail": 1, "openai": 1, "notes": 1},
)
"""Old ``user_version`` n -> the owners' versions it stands for. The old sequence was: 1 the
journal's tables, 2 Telegram's inbox, conversations and audit, 3 the jail's shell_commands,
4 the OpenAI backend's messages and threads and the notes (now two owners), 5 approvals
rebuilt for tool calls."""

_VERSIONS: Final = """
CREATE TABLE IF NOT EXISTS schema_versions (
    owner       TEXT PRIMARY KEY,
    version     INTEGER NOT NULL CHECK (version >= 0),
    updated_at  REAL NOT NULL
) STRICT
"""


def schema_version(connection: apsw.Connection) -> int:
    """The layout's version (``PRAGMA user_version``)."""
    version = connection.pragma("user_version")
    assert isinstance(version, int)
    return version


def owner_versions(connection: apsw.Connection) -> dict[str, int]:
    """Each owner's version in the database ({} before the registry took it over)."""
    if schema_version(connection) != SCHEMA_VERSION:
        return {}
    rows = connection.execute("SELECT owner, version FROM schema_versions").fetchall()
    return {str(owner): cast(int, version) for owner, version in rows}


def _name(connection: apsw.Connection) -> str:
    return connection.filename or ":memory:"


def _take_over(connection: apsw.Connection) -> None:
    """Make the file a registry database (in the caller's transaction): create
    ``schema_versions`` and, for a database from before it, record its owners' versions."""
    found = schema_version(connection)
    if found == SCHEMA_VERSION:
        return
    if found > SCHEMA_VERSION:
        raise SchemaTooNew(_name(connection), found, SCHEMA_VERSION)
    connection.execute(_VERSIONS)
    now = time.time()
    connection.executemany(
        "INSERT INTO schema_versions (owner, version, updated_at) VALUES (?, ?, ?)",
        [(owner, version, now) for owner, version in _LEGACY[found].items()],
    )
    connection.pragma("user_version", SCHEMA_VERSION)


def _check_not_newer(connection: apsw.Connection, tables: Tables, version: int) -> None:
    if version > tables.version:
        raise SchemaTooNew(_name(connection), version, tables.version, owner=tables.owner)


def migrate(connection: apsw.Connection, tables: Iterable[Tables] | None = None) -> dict[str, int]:
    """Bring `tables` (every registered owner by default) up to date, one transaction per
    migration; return each owner's version found before. Raises `SchemaTooNew` (and changes
    nothing of that owner) if the file is newer than the code."""
    found = schema_version(connection)
    if found > SCHEMA_VERSION:
        raise SchemaTooNew(_name(connection), found, SCHEMA_VERSION)
    if found != SCHEMA_VERSION:
        _in_transaction(connection, lambda: _take_over(connection))
    before: dict[str, int] = {}
    for owner in registered() if tables is None else tables:
        before[owner.owner] = _migrate_owner(connection, owner)
    return before


def _version_of(connection: apsw.Connection, owner: str) -> int:
    row = connection.execute(
        "SELECT version FROM schema_versions WHERE owner = ?", (owner,)
    ).fetchone()
    return 0 if row is None else cast(int, row[0])


def _migrate_owner(connection: apsw.Connection, tables: Tables) -> int:
    found = _version_of(connection, tables.owner)
    _check_not_newer(connection, tables, found)
    while True:
        connection.execute("BEGIN IMMEDIATE")
        try:
            version = _version_of(connection, tables.owner)  # another process may have migrated
            _check_not_newer(connection, tables, version)
            if version == tables.version:
                connection.execute("COMMIT")
                return found
            connection.execute(tables.migrations[version])
            connection.execute(
                "INSERT INTO schema_versions (owner, version, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (owner) DO UPDATE SET version = excluded.version, "
                "updated_at = excluded.updated_at",
                (tables.owner, version + 1, time.time()),
            )
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise


def _in_transaction(connection: apsw.Connection, work: Callable[[], None]) -> None:
    connection.execute("BEGIN IMMEDIATE")
    try:
        work()
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
