"""Codex threads that outlive their CODEX_HOME: each thread's rollout file kept in the store.

Codex keeps a thread's whole history in one file of its own, the *rollout*, at
``$CODEX_HOME/sessions/YYYY/MM/DD/rollout-<time>-<thread id>.jsonl``, and ``thread/resume``
finds it there by the thread's id. A lost state directory, or a conversation that moves to
another node (a CODEX_HOME of its own), would lose the thread. So the rollout is kept in the
store too (owner ``codex``: tables ``rollouts`` and ``rollout_chunks``):

- **after every turn** (`save_rollout`) what codex added to the file since the last save is
  appended, as one chunk (only whole lines: a line codex is still writing waits for the next
  save); a file that no longer starts with what was stored (rewritten, shorter) is stored
  whole again, as is one of more than `MAX_CHUNKS` chunks (so reading one back stays a few
  rows) — but a file that is only the start of what is stored ("behind": the thread went on
  on another node) never replaces it. An append is a compare-and-set on the stored size and
  digest (sha256), so the chunks always add up to the digest, whoever wrote last;
- **before ``thread/resume``** (`restore_rollout`) a rollout missing from the local CODEX_HOME,
  or one that is not the stored one or a continuation of it (the thread went on elsewhere), is
  written back at its recorded relative path; a local file that continues the stored one is
  kept (the daemon was killed before its last save). A thread the local codex has loaded
  (``thread/loaded/list``) is never touched: codex holds its file open for writing and would
  give the model the history it has in memory, not the file's. One whose memory is older than
  the store's ("stale": the conversation ran on another node within the minute codex keeps a
  thread loaded after its last client unsubscribed) is not resumed: the turn is refused with
  `RolloutStale`, and the conversation asks codex to unload it (``thread/unsubscribe``), as it
  does whenever its actor stops.

Codex's rollout layout, resuming from a copied file and its one-writer lock are internals of
codex (measured with 0.169.0): `tests/agents/test_codex_rollouts.py` fails loudly if an
upgrade changes them.

The daemon reads and writes these files outside codex's namespace, where Piano's state is
visible, and the agent may be able to write inside CODEX_HOME (``danger-full-access``). So a
rollout is read and written only as a regular file reached through no symbolic link (a link
planted at the rollout's place cannot make the daemon store ``piano.db``, or write anywhere
but CODEX_HOME: `piano._fs`), its relative path must have codex's shape and end with its
thread's id, and what is written is owner-only, through a temporary file renamed into place.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal, Protocol

import apsw

from piano._fs import UnsafePath, read_from, save_into
from piano.store import Database, PostgresPool, Tables, register

__all__ = [
    "MAX_CHUNKS",
    "ROLLOUT_LOST",
    "ROLLOUT_TABLES",
    "MemoryRollouts",
    "PostgresRollouts",
    "RolloutError",
    "RolloutHead",
    "RolloutStale",
    "RolloutStore",
    "SqliteRollouts",
    "relative_rollout_path",
    "restore_rollout",
    "save_rollout",
]

_V1: Final = """
CREATE TABLE rollouts (
    codex_thread_id  TEXT PRIMARY KEY,
    thread_id        TEXT NOT NULL,
    path             TEXT NOT NULL,
    size             INTEGER NOT NULL,
    digest           TEXT NOT NULL,
    chunks           INTEGER NOT NULL,
    updated_at       REAL NOT NULL
) STRICT;

CREATE TABLE rollout_chunks (
    codex_thread_id  TEXT NOT NULL,
    seq              INTEGER NOT NULL,
    data             BLOB NOT NULL,
    PRIMARY KEY (codex_thread_id, seq)
) STRICT;
"""

ROLLOUT_TABLES: Final = register(Tables("codex", (_V1,)))
"""The Codex backend's tables in Piano's database (owner ``codex``)."""

ROLLOUT_LOST: Final = "no rollout found"
"""What codex's error says when ``thread/resume`` finds no rollout of the thread."""

MAX_CHUNKS: Final = 64
"""A rollout stored in more chunks than this is stored whole again at its next save."""

_THREAD_ID = re.compile(r"[0-9A-Za-z][0-9A-Za-z-]{7,63}")
_RELATIVE = re.compile(r"sessions/\d{4}/\d{2}/\d{2}/rollout-[0-9A-Za-z:.T-]+\.jsonl")


class RolloutStale(RuntimeError):
    """The local codex has the thread loaded with an older history than the store's; its
    message is the sentence its user reads."""


class RolloutError(ValueError):
    """A rollout path or file Piano will not read or write (not codex's shape, outside
    CODEX_HOME, reached through a link, not a regular file, or stored content that does not
    match its digest)."""


@dataclass(frozen=True, slots=True)
class RolloutHead:
    """What the store holds of a thread's rollout: its path relative to CODEX_HOME, its size
    in bytes, the sha256 (hex) of its content and the number of chunks it is stored in."""

    path: str
    size: int
    digest: str
    chunks: int


class RolloutStore(Protocol):
    """Where rollouts are kept: `SqliteRollouts`, `PostgresRollouts`, `MemoryRollouts`."""

    async def head(self, codex_thread_id: str) -> RolloutHead | None:
        """The stored rollout's head, None if none is stored."""
        ...

    async def content(self, codex_thread_id: str) -> tuple[RolloutHead, bytes] | None:
        """The stored rollout, whole."""
        ...

    async def replace(
        self, codex_thread_id: str, thread_id: str, path: str, data: bytes, digest: str
    ) -> None:
        """Store `data` (whose sha256 is `digest`) as the whole rollout."""
        ...

    async def append(
        self, codex_thread_id: str, after: RolloutHead, data: bytes, digest: str
    ) -> bool:
        """Add `data` to the rollout if it still is `after` (then `digest` is the whole new
        content's); False, nothing written, if it has changed meanwhile."""
        ...

    async def forget(self, codex_thread_id: str) -> None:
        """Drop the stored rollout."""
        ...

    def close(self) -> None: ...


# -- paths and files -----------------------------------------------------------------------------


def relative_rollout_path(home: str | Path, path: str | Path, codex_thread_id: str) -> str:
    """`path` (codex's ``thread.path``) relative to CODEX_HOME `home`, checked to be a rollout
    of `codex_thread_id` in codex's layout; `RolloutError` otherwise."""
    given = Path(path)
    try:  # the file itself is not resolved: a link there is refused when it is read
        relative = (given.parent.resolve() / given.name).relative_to(Path(home).resolve())
    except ValueError:
        raise RolloutError(f"rollout {path} is not under CODEX_HOME {home}") from None
    _check(relative.as_posix(), codex_thread_id)
    return relative.as_posix()


def _check(relative: str, codex_thread_id: str) -> None:
    if not _THREAD_ID.fullmatch(codex_thread_id):
        raise RolloutError(f"{codex_thread_id!r} is not a codex thread id")
    if not _RELATIVE.fullmatch(relative) or not relative.endswith(f"-{codex_thread_id}.jsonl"):
        raise RolloutError(f"{relative!r} is not the path of a rollout of {codex_thread_id}")


def _read(home: str | Path, relative: str) -> bytes | None:
    """The rollout's whole lines, None if there is none; `RolloutError` if a link stands on
    the way or it is not a regular file (`piano._fs.read_from`)."""
    folder, _, name = relative.rpartition("/")
    try:
        data = read_from(home, folder, name)
    except UnsafePath as exc:
        raise RolloutError(f"rollout {relative} cannot be read safely: {exc}") from None
    return None if data is None else data[: data.rfind(b"\n") + 1]


def _write(home: str | Path, relative: str, data: bytes) -> None:
    """Replace the rollout by `data`, owner-only, renamed into place; a link where the
    rollout goes is replaced, one on its folders refused (`piano._fs.save_into`)."""
    folder, _, name = relative.rpartition("/")
    Path(home).mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        save_into(home, folder, name, data)
    except UnsafePath as exc:
        raise RolloutError(f"rollout {relative} cannot be written safely: {exc}") from None


def _continues(local: bytes, head: RolloutHead) -> hashlib._Hash | None:
    """The sha256 state of `local`'s first `head.size` bytes if they are the stored rollout."""
    if len(local) < head.size:
        return None
    digest = hashlib.sha256(local[: head.size])
    return digest if digest.hexdigest() == head.digest else None


# -- saving and restoring ------------------------------------------------------------------------

Saved = Literal["unchanged", "appended", "replaced", "behind", "empty"]
Restored = Literal["loaded", "stale", "not stored", "kept", "written"]


async def save_rollout(
    store: RolloutStore, home: str | Path, codex_thread_id: str, thread_id: str, path: str | Path
) -> tuple[Saved, int]:
    """Store what codex added to the rollout at `path` since the last save (see the module
    documentation); what was done and how many bytes were written."""
    relative = relative_rollout_path(home, path, codex_thread_id)
    local = await asyncio.to_thread(_read, home, relative)
    if not local:
        return "empty", 0
    head = await store.head(codex_thread_id)
    if head is not None and head.path == relative:
        prefix = _continues(local, head)
        if prefix is not None and len(local) == head.size:
            return "unchanged", 0
        if prefix is not None and head.chunks < MAX_CHUNKS:
            added = local[head.size :]
            prefix.update(added)
            if await store.append(codex_thread_id, head, added, prefix.hexdigest()):
                return "appended", len(added)
        elif prefix is None and len(local) < head.size:
            found = await store.content(codex_thread_id)
            if found is not None and found[1].startswith(local):
                return "behind", 0  # the thread went on elsewhere: never shrink it here
    digest = hashlib.sha256(local).hexdigest()
    await store.replace(codex_thread_id, thread_id, relative, local, digest)
    return "replaced", len(local)


async def restore_rollout(
    store: RolloutStore, home: str | Path, codex_thread_id: str, *, loaded: bool
) -> tuple[Restored, int]:
    """Make the local CODEX_HOME hold the thread's rollout before ``thread/resume`` (see the
    module documentation): what was done and how many bytes were written. `loaded`: the local
    codex has the thread loaded, so its file is left alone: "loaded" if it continues the
    stored one, "stale" if not (the thread went on elsewhere, and this codex would resume the
    old history it holds in memory)."""
    head = await store.head(codex_thread_id)
    if head is None:
        return ("loaded" if loaded else "not stored"), 0
    _check(head.path, codex_thread_id)
    try:
        local = await asyncio.to_thread(_read, home, head.path)
    except RolloutError:  # a link or some other thing in its place: replaced, not followed
        local = None
    current = local is not None and _continues(local, head) is not None
    if loaded:
        return ("loaded" if current else "stale"), 0
    if current:
        return "kept", 0
    found = await store.content(codex_thread_id)
    if found is None:  # forgotten meanwhile
        return "not stored", 0
    head, data = found
    if len(data) != head.size or hashlib.sha256(data).hexdigest() != head.digest:
        raise RolloutError(f"the stored rollout of {codex_thread_id} does not match its digest")
    _check(head.path, codex_thread_id)
    await asyncio.to_thread(_write, home, head.path, data)
    return "written", len(data)


# -- the stores ----------------------------------------------------------------------------------


@dataclass
class MemoryRollouts:
    """A `RolloutStore` in memory (tests)."""

    heads: dict[str, RolloutHead] = field(default_factory=dict)
    chunks: dict[str, list[bytes]] = field(default_factory=dict)

    async def head(self, codex_thread_id: str) -> RolloutHead | None:
        return self.heads.get(codex_thread_id)

    async def content(self, codex_thread_id: str) -> tuple[RolloutHead, bytes] | None:
        head = self.heads.get(codex_thread_id)
        return None if head is None else (head, b"".join(self.chunks[codex_thread_id]))

    async def replace(
        self, codex_thread_id: str, thread_id: str, path: str, data: bytes, digest: str
    ) -> None:
        self.heads[codex_thread_id] = RolloutHead(path, len(data), digest, 1)
        self.chunks[codex_thread_id] = [data]

    async def append(
        self, codex_thread_id: str, after: RolloutHead, data: bytes, digest: str
    ) -> bool:
        if self.heads.get(codex_thread_id) != after:
            return False
        self.heads[codex_thread_id] = RolloutHead(
            after.path, after.size + len(data), digest, after.chunks + 1
        )
        self.chunks[codex_thread_id].append(data)
        return True

    async def forget(self, codex_thread_id: str) -> None:
        self.heads.pop(codex_thread_id, None)
        self.chunks.pop(codex_thread_id, None)

    def close(self) -> None:
        pass


def _head(row: tuple[object, ...] | None) -> RolloutHead | None:
    if row is None:
        return None
    path, size, digest, chunks = row
    return RolloutHead(str(path), int(str(size)), str(digest), int(str(chunks)))


# One spelling of each statement for both databases (PostgreSQL's placeholders: `_pg`).
_HEAD: Final = "SELECT path, size, digest, chunks FROM rollouts WHERE codex_thread_id = ?"
_CHUNKS: Final = "SELECT data FROM rollout_chunks WHERE codex_thread_id = ? ORDER BY seq"
_STORE_HEAD: Final = (
    "INSERT INTO rollouts (codex_thread_id, thread_id, path, size, digest, chunks, updated_at) "
    "VALUES (?, ?, ?, ?, ?, 1, ?) ON CONFLICT (codex_thread_id) DO UPDATE SET "
    "thread_id = excluded.thread_id, path = excluded.path, size = excluded.size, "
    "digest = excluded.digest, chunks = 1, updated_at = excluded.updated_at"
)
_GROW: Final = (
    "UPDATE rollouts SET size = ?, digest = ?, chunks = chunks + 1, updated_at = ? "
    "WHERE codex_thread_id = ? AND size = ? AND digest = ? AND chunks = ? RETURNING chunks"
)
_ADD_CHUNK: Final = "INSERT INTO rollout_chunks (codex_thread_id, seq, data) VALUES (?, ?, ?)"
_DROP_CHUNKS: Final = "DELETE FROM rollout_chunks WHERE codex_thread_id = ?"
_DROP_HEAD: Final = "DELETE FROM rollouts WHERE codex_thread_id = ?"


def _pg(statement: str) -> str:
    return statement.replace("?", "%s")


def _store_head(
    codex_thread_id: str, thread_id: str, path: str, data: bytes, digest: str
) -> tuple[object, ...]:
    return (codex_thread_id, thread_id, path, len(data), digest, time.time())


def _grow(codex_thread_id: str, after: RolloutHead, data: bytes, digest: str) -> tuple[object, ...]:
    size = after.size + len(data)
    return (size, digest, time.time(), codex_thread_id, after.size, after.digest, after.chunks)


class SqliteRollouts:
    """A `RolloutStore` in the store's SQLite database (`ROLLOUT_TABLES`), written through the
    process's one write connection."""

    def __init__(self, database: str | Path) -> None:
        self.database = Database(database, ROLLOUT_TABLES)

    def close(self) -> None:
        self.database.close()

    async def head(self, codex_thread_id: str) -> RolloutHead | None:
        def read(db: apsw.Connection) -> RolloutHead | None:
            return _head(db.execute(_HEAD, (codex_thread_id,)).fetchone())

        return await self.database.read(read)

    async def content(self, codex_thread_id: str) -> tuple[RolloutHead, bytes] | None:
        def read(db: apsw.Connection) -> tuple[RolloutHead, bytes] | None:
            head = _head(db.execute(_HEAD, (codex_thread_id,)).fetchone())
            if head is None:
                return None
            chunks = db.execute(_CHUNKS, (codex_thread_id,)).fetchall()
            return head, b"".join(bytes(data) for (data,) in chunks)  # type: ignore[arg-type]

        return await self.database.read(read)

    async def replace(
        self, codex_thread_id: str, thread_id: str, path: str, data: bytes, digest: str
    ) -> None:
        def write(db: apsw.Connection) -> None:
            db.execute(_DROP_CHUNKS, (codex_thread_id,))
            db.execute(_STORE_HEAD, _store_head(codex_thread_id, thread_id, path, data, digest))
            db.execute(_ADD_CHUNK, (codex_thread_id, 0, data))

        self.database.write(write)

    async def append(
        self, codex_thread_id: str, after: RolloutHead, data: bytes, digest: str
    ) -> bool:
        def write(db: apsw.Connection) -> bool:
            if db.execute(_GROW, _grow(codex_thread_id, after, data, digest)).fetchone() is None:
                return False
            db.execute(_ADD_CHUNK, (codex_thread_id, after.chunks, data))
            return True

        return self.database.write(write)

    async def forget(self, codex_thread_id: str) -> None:
        def write(db: apsw.Connection) -> None:
            db.execute(_DROP_CHUNKS, (codex_thread_id,))
            db.execute(_DROP_HEAD, (codex_thread_id,))

        self.database.write(write)


class PostgresRollouts:
    """A `RolloutStore` in a PostgreSQL store (the same tables, owner ``codex``), on the
    process's shared connections; each write is one transaction."""

    def __init__(self, pool: PostgresPool) -> None:
        self.pool = pool

    def close(self) -> None:
        """The pool is the daemon's: it closes it."""

    async def head(self, codex_thread_id: str) -> RolloutHead | None:
        async with self.pool.connection() as connection:
            cursor = await connection.execute(_pg(_HEAD), (codex_thread_id,))
            return _head(await cursor.fetchone())

    async def content(self, codex_thread_id: str) -> tuple[RolloutHead, bytes] | None:
        async with self.pool.connection() as connection, connection.transaction():
            cursor = await connection.execute(_pg(_HEAD), (codex_thread_id,))
            head = _head(await cursor.fetchone())
            if head is None:
                return None
            cursor = await connection.execute(_pg(_CHUNKS), (codex_thread_id,))
            chunks = await cursor.fetchall()
        return head, b"".join(bytes(data) for (data,) in chunks)

    async def replace(
        self, codex_thread_id: str, thread_id: str, path: str, data: bytes, digest: str
    ) -> None:
        async with self.pool.connection() as connection, connection.transaction():
            await connection.execute(
                _pg(_STORE_HEAD), _store_head(codex_thread_id, thread_id, path, data, digest)
            )
            await connection.execute(_pg(_DROP_CHUNKS), (codex_thread_id,))
            await connection.execute(_pg(_ADD_CHUNK), (codex_thread_id, 0, data))

    async def append(
        self, codex_thread_id: str, after: RolloutHead, data: bytes, digest: str
    ) -> bool:
        async with self.pool.connection() as connection, connection.transaction():
            cursor = await connection.execute(
                _pg(_GROW), _grow(codex_thread_id, after, data, digest)
            )
            if await cursor.fetchone() is None:
                return False
            await connection.execute(_pg(_ADD_CHUNK), (codex_thread_id, after.chunks, data))
            return True

    async def forget(self, codex_thread_id: str) -> None:
        async with self.pool.connection() as connection, connection.transaction():
            await connection.execute(_pg(_DROP_CHUNKS), (codex_thread_id,))
            await connection.execute(_pg(_DROP_HEAD), (codex_thread_id,))
