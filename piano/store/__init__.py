"""Piano's store: threads, interactions, every item Codex reported, usage and approvals in SQLite.

One database file in WAL mode (apsw). One writer applies thread events in batches, one
transaction per batch, and returns only once a batch has committed; readers query on their own
connections, concurrently, and always see whole batches.

```python
writer = await system.spawn(StoreWriter(path), name=STORE)       # opens and migrates
await writer.call(UpsertSurface("telegram", "telegram"))
await writer.call(UpsertAgent("codex", "codex", model="gpt-5"))
await writer.call(CreateThread("t1", "telegram", "chat:42", "codex"))
seqs = await writer.call(WriteBatch(events))                      # committed = acknowledged

reader = StoreReader(path)
await asyncio.to_thread(reader.interactions, "t1")
markdown = await asyncio.to_thread(reader.export_transcript, "t1")
```

Guarantees:
- acknowledged means committed: a batch `WriteBatch` returned for is on disk and survives the
  process being killed at any moment (synchronous=NORMAL: a power loss may roll back the last
  batches, never corrupt the file);
- a batch is atomic: one invalid event (unknown thread or interaction, a broken constraint)
  rolls it all back and raises `BatchRejected` naming the event; the writer carries on;
- every event is journaled with a per-thread sequence number (1, 2, 3...) in the order applied,
  and the tables reflect the journal (see piano.store._apply for how each event applies);
- idempotent by construction: `WriteBatch(events, seqs)` with the seqs its caller assigned once
  (the event pipeline does, before it may retry) changes nothing when the batch was already
  committed: only events whose journal rows are inserted are applied to the tables;
- the writer is one `StoreBackend` (SQLite here, `SqliteBackend`; another database is another
  implementation of the same protocol, ``StoreWriter(opener)``);
- a full disk refuses the write with `StoreFull` (nothing of it written), not a crash: the
  writer keeps running and writes succeed again once there is space;
- one owner per table: each feature declares its tables and migrations once (`Tables`,
  `register`: the journal's are `JOURNAL`; Telegram, the OpenAI backend and the jail register
  theirs), versions are kept per owner in ``schema_versions``, and every owner writes through
  the process's one write connection, `Writer.open(path)`. A database from before (one
  ``user_version`` sequence) is taken over with its rows; one from a newer Piano is refused
  with `SchemaTooNew`, untouched;
- in a cluster (`piano.cluster`), the PostgreSQL writer given the node's `Fence` writes a
  thread's events only while the node holds its lease, checked in the batch's transaction.
"""

from __future__ import annotations

from piano.store._actor import (
    STORE,
    CreateThread,
    LastSeqs,
    RecordInteraction,
    SetCodexThreadId,
    SetConversationSettings,
    SetThreadStatus,
    StoreWrite,
    StoreWriter,
    UpsertAgent,
    UpsertSurface,
    UpsertUser,
    WriteBatch,
)
from piano.store._backend import Opener, SqliteBackend, StoreBackend, sqlite_writer
from piano.store._connection import (
    BatchRejected,
    SchemaTooNew,
    SeqTaken,
    StoreError,
    StoreFull,
    StoreUnavailable,
    open_connection,
)
from piano.store._database import Database
from piano.store._fence import Fence
from piano.store._location import PostgresPool, StoreLocation, location_of, open_reader
from piano.store._pg_queries import PostgresReader, SqliteDialect
from piano.store._pg_schema import (
    CLUSTER_LOCK_CLASS,
    PG_SCHEMA_VERSIONS,
    migrate_pg,
    pg_versions,
)
from piano.store._postgres import PostgresBackend, connect_pg, pg_problem, safe_dsn
from piano.store._queries import StoreReader
from piano.store._records import (
    AgentRecord,
    ApprovalRecord,
    ConversationSettings,
    InteractionRecord,
    ItemRecord,
    JournalEntry,
    SurfaceRecord,
    ThreadRecord,
    TurnCount,
    UsageRow,
    UsageTotals,
    UserRecord,
)
from piano.store._schema import (
    JOURNAL,
    SCHEMA_VERSION,
    Tables,
    migrate,
    owner_versions,
    register,
    registered,
)
from piano.store._transcript import render_transcript
from piano.store._writer import ThreadStatus, Writer

__all__ = [
    "CLUSTER_LOCK_CLASS",
    "JOURNAL",
    "PG_SCHEMA_VERSIONS",
    "SCHEMA_VERSION",
    "STORE",
    "AgentRecord",
    "ApprovalRecord",
    "BatchRejected",
    "ConversationSettings",
    "CreateThread",
    "Database",
    "Fence",
    "InteractionRecord",
    "ItemRecord",
    "JournalEntry",
    "LastSeqs",
    "Opener",
    "PostgresBackend",
    "PostgresPool",
    "PostgresReader",
    "RecordInteraction",
    "SchemaTooNew",
    "SeqTaken",
    "SetCodexThreadId",
    "SetConversationSettings",
    "SetThreadStatus",
    "SqliteBackend",
    "SqliteDialect",
    "StoreBackend",
    "StoreError",
    "StoreFull",
    "StoreLocation",
    "StoreReader",
    "StoreUnavailable",
    "StoreWrite",
    "StoreWriter",
    "SurfaceRecord",
    "Tables",
    "ThreadRecord",
    "ThreadStatus",
    "TurnCount",
    "UpsertAgent",
    "UpsertSurface",
    "UpsertUser",
    "UsageRow",
    "UsageTotals",
    "UserRecord",
    "WriteBatch",
    "Writer",
    "connect_pg",
    "location_of",
    "migrate",
    "migrate_pg",
    "open_connection",
    "open_reader",
    "owner_versions",
    "pg_problem",
    "pg_versions",
    "register",
    "registered",
    "render_transcript",
    "safe_dsn",
    "sqlite_writer",
]
