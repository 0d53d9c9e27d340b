"""`Membership`: this node's place in the cluster and the leases of the conversations it runs.

**Joining.** On a connection of its own (autocommit, never shared), the node draws a fresh
`lock_key` from the ``cluster_lock_keys`` sequence, takes the session advisory lock
``(CLUSTER_LOCK_CLASS, lock_key)`` and writes its row in ``nodes``. The lock is the node's
life: PostgreSQL drops it the moment the node's socket closes (SIGKILL, a crash, a cut
cable), so "alive" is "its lock is in ``pg_locks``", decided by PostgreSQL, not by a clock.
A second daemon with the same `node_id` while the first is alive is refused (`NodeIdTaken`).

**Leases.** `claim` (a `Claim` call) takes a thread's lease by one upsert on PostgreSQL's
clock: a new row at epoch 1; this node's own row (same lock_key) renewed at the same epoch;
anyone else's row taken, epoch + 1, only if it expired (``renewed_at`` older than `lease_ttl`)
or its holder's lock is gone. Otherwise `NotOwner` names the live holder. The epoch granted is
recorded in the store's `Fence`, which the writer checks in each batch's transaction.

**Heartbeats.** Every `heartbeat` seconds the node renews its row and every lease it holds in
one round trip each; a lease missing from the answer was taken by another node (this node was
paused or cut off past `lease_ttl`): it is revoked from the fence and its conversation's actor
stopped. A lease whose conversation has no live actor here any more is released (marked
expired, so the next owner takes it at once) — but stays in the fence until another node
takes it, so the last events of the stopped actor are still written.

**Self-fencing.** If a heartbeat fails (the server unreachable, the connection dropped) the
node retries on a new connection, taking its same lock again if PostgreSQL already let it
go; if it has not renewed for `lease_ttl` minus `heartbeat` seconds it gives up every lease
(revoked, actors stopped: their turns end interrupted) before any other node may take them,
and joins again under a new lock key when the server answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import AsyncIterator, Callable, Hashable
from dataclasses import dataclass
from typing import Any, Final

import psycopg
from psycopg.rows import TupleRow

from actors import NOREPLY, Actor, ActorRef, Caller, Registry, Shutdown
from piano.cluster._ring import owners
from piano.config import ClusterConfig
from piano.store import CLUSTER_LOCK_CLASS, Fence, StoreUnavailable, connect_pg, pg_problem
from piano.threads import NotHere

__all__ = [
    "Claim",
    "Members",
    "Membership",
    "NodeIdTaken",
    "NodeInfo",
    "NotOwner",
    "Release",
    "Status",
]

Connection = psycopg.AsyncConnection[TupleRow]

_ALIVE: Final = """
EXISTS (SELECT 1 FROM pg_locks k
        WHERE k.locktype = 'advisory' AND k.granted AND k.objsubid = 2
          AND k.database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND k.classid = %(class)s::integer::oid AND k.objid = {key}::oid)
"""
_JOIN_CHECK: Final = f"""
SELECT n.lock_key, {_ALIVE.format(key="n.lock_key")} FROM nodes n WHERE n.node_id = %(node)s
"""
_JOIN: Final = """
INSERT INTO nodes (node_id, lock_key, pid, host, started_at, heartbeat_at)
VALUES (%(node)s, %(key)s, %(pid)s, %(host)s, now(), now())
ON CONFLICT (node_id) DO UPDATE SET lock_key = excluded.lock_key, pid = excluded.pid,
    host = excluded.host, started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at
"""
_BEAT: Final = """
UPDATE nodes SET heartbeat_at = now() WHERE node_id = %(node)s AND lock_key = %(key)s
"""
_RENEW: Final = """
UPDATE thread_leases SET renewed_at = now()
WHERE node_id = %(node)s AND lock_key = %(key)s AND renewed_at > '-infinity'
RETURNING thread_id, epoch
"""
_HELD: Final = """
SELECT thread_id, node_id, lock_key, epoch FROM thread_leases WHERE thread_id = ANY(%(threads)s)
"""
_RELEASE: Final = """
UPDATE thread_leases SET renewed_at = '-infinity'
WHERE thread_id = ANY(%(threads)s) AND node_id = %(node)s AND lock_key = %(key)s
"""
_CLAIM: Final = f"""
INSERT INTO thread_leases AS l (thread_id, node_id, lock_key, epoch, renewed_at)
VALUES (%(thread)s, %(node)s, %(key)s, 1, now())
ON CONFLICT (thread_id) DO UPDATE SET
    node_id = excluded.node_id, lock_key = excluded.lock_key, renewed_at = now(),
    epoch = CASE WHEN l.node_id = excluded.node_id AND l.lock_key = excluded.lock_key
                 THEN l.epoch ELSE l.epoch + 1 END
WHERE (l.node_id = excluded.node_id AND l.lock_key = excluded.lock_key)
   OR l.renewed_at < now() - make_interval(secs => %(ttl)s)
   OR NOT {_ALIVE.format(key="l.lock_key")}
RETURNING epoch
"""
_MEMBERS: Final = f"""
SELECT n.node_id, n.host, n.pid, extract(epoch FROM n.started_at),
       extract(epoch FROM now() - n.heartbeat_at)
FROM nodes n WHERE {_ALIVE.format(key="n.lock_key")} ORDER BY n.node_id
"""


_LEASES: Final = """
SELECT l.thread_id, l.node_id, l.epoch, l.renewed_at > '-infinity', t.surface, t.conversation,
       t.agent
FROM thread_leases l LEFT JOIN threads t ON t.id = l.thread_id
ORDER BY t.surface, t.conversation, t.agent, l.thread_id
"""


class NodeIdTaken(Exception):
    """Another live daemon already is this node id."""


class NotOwner(NotHere):
    """The thread's lease is held by another live node (named in the message)."""


@dataclass(frozen=True, slots=True)
class Claim:
    """Take (or keep) the lease of `thread_id`, the thread of conversation `key`. Reply: the
    epoch; fails with `NotOwner` if another live node holds it, `StoreUnavailable` if this node
    is not a member now."""

    thread_id: str
    key: Hashable


@dataclass(frozen=True, slots=True)
class Release:
    """Let the leases of `thread_ids` go (their conversations stopped here)."""

    thread_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Members:
    """Reply: the live members, as `NodeInfo`s (their advisory lock held), by node id."""


@dataclass(frozen=True, slots=True)
class Status:
    """Reply: what `piano status` shows of the cluster, as lines: the live members, each
    partition's owner (`owners` of the live members) and each conversation's lease holder."""


@dataclass(frozen=True, slots=True)
class NodeInfo:
    node_id: str
    host: str
    pid: int
    started_at: float
    heartbeat_age: float
    """Seconds since its last heartbeat, on PostgreSQL's clock."""


@dataclass(frozen=True, slots=True)
class _Fenced:
    thread_ids: tuple[str, ...]


class Membership(Actor):
    """This node's membership and leases; see the module documentation."""

    def __init__(
        self,
        config: ClusterConfig,
        dsn: str,
        fence: Fence,
        conversations: Registry | None = None,
        *,
        connect_timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.node_id = config.node()
        self.dsn = dsn
        self.fence = fence
        self.conversations = conversations
        self.connect_timeout = connect_timeout
        self.clock = clock
        self.connection: Connection | None = None
        self.last_key = 0  # the lock key of this process's last membership
        self.renewed = 0.0  # clock() when the last heartbeat that renewed everything was sent
        self.keys: dict[str, Hashable] = {}  # thread id → its conversation, for stopping it
        self.released: set[str] = set()
        self.stopping: set[asyncio.Task[None]] = set()

    def describe(self) -> str:
        state = f"lock {self.fence.lock_key}" if self.fence.lock_key else "not a member"
        return f"node {self.node_id} ({state}), {len(self.fence.epochs)} leases"

    async def init(self) -> None:
        self.trap_exits = True
        self.fence.node_id = self.node_id
        if self.fence.epochs or self.fence.lock_key:  # a restart: what we held is gone with us
            self.fence.revoke(list(self.fence.epochs))
            self.fence.lock_key = 0
            for key, ref, _ in self.conversations.entries() if self.conversations else []:
                self.log.warning("cluster.restarted_stops", conversation=repr(key))
                self._stop_ref(ref, "this node's cluster membership restarted")
        self.fence.on_fenced = lambda threads: self.ref.cast(_Fenced(tuple(threads)))
        try:
            await self._join()
        except StoreUnavailable as exc:
            self.log.error("cluster.unavailable", node=self.node_id, error=str(exc))
        self.send_after(self.config.heartbeat, "beat")

    # -- joining --------------------------------------------------------------------------------

    async def _connection(self) -> Connection:
        if self.connection is None or self.connection.closed or self.connection.broken:
            self.connection = await connect_pg(self.dsn, timeout=self.connect_timeout)
        return self.connection

    @contextlib.asynccontextmanager
    async def _database(self, doing: str) -> AsyncIterator[Connection]:
        """The node's connection for one exchange: a server error or a statement past its
        timeout drops the connection and is `StoreUnavailable` saying what was being done."""
        try:
            yield await self._connection()
        except (psycopg.Error, TimeoutError) as exc:
            await self._drop()
            raise StoreUnavailable(f"cluster: {doing}: {pg_problem(exc)}") from None

    async def _join(self) -> None:
        """Become a member: a lock of our own (the same as before if PostgreSQL let it go after
        a dropped connection, else a new one) and our row in ``nodes``."""
        async with self._database("joining") as connection:
            key = self.fence.lock_key
            if key and await self._lock(connection, key):
                await self._execute(connection, _BEAT, {"node": self.node_id, "key": key})
                self.log.info("cluster.rejoined", node=self.node_id, lock=key)
                return
            if key:  # our old session still holds it on the server: try again next beat
                raise StoreUnavailable("the previous session's lock is still held")
            rows = await self._fetch(
                connection, _JOIN_CHECK, {"node": self.node_id, "class": CLUSTER_LOCK_CLASS}
            )
            if rows and rows[0][1] and int(rows[0][0]) == self.last_key:
                raise StoreUnavailable("the previous session's lock is still held")
            if rows and rows[0][1]:
                raise NodeIdTaken(
                    f"cluster.node_id: {self.node_id!r} is already a live member of the "
                    "cluster (another daemon runs under it): give each node its own node_id"
                )
            rows = await self._fetch(connection, "SELECT nextval('cluster_lock_keys')", {})
            key = int(rows[0][0])
            if not await self._lock(connection, key):
                raise StoreUnavailable(f"advisory lock {key} is taken")  # cannot be: fresh
            params = {"node": self.node_id, "key": key, "pid": os.getpid()}
            await self._execute(connection, _JOIN, {**params, "host": socket.gethostname()})
        self.fence.lock_key = self.last_key = key
        self.renewed = self.clock()
        self.log.info("cluster.joined", node=self.node_id, lock=key)

    async def _lock(self, connection: Connection, key: int) -> bool:
        rows = await self._fetch(
            connection, "SELECT pg_try_advisory_lock(%(class)s, %(key)s)", self._lock_params(key)
        )
        return bool(rows[0][0])

    @staticmethod
    def _lock_params(key: int) -> dict[str, Any]:
        return {"class": CLUSTER_LOCK_CLASS, "key": key}

    async def _execute(self, connection: Connection, sql: Any, params: dict[str, Any]) -> int:
        async with asyncio.timeout(self.config.heartbeat):
            cursor = await connection.execute(sql, params)
        return cursor.rowcount

    async def _fetch(
        self, connection: Connection, sql: Any, params: dict[str, Any]
    ) -> list[tuple[Any, ...]]:
        async with asyncio.timeout(self.config.heartbeat):
            cursor = await connection.execute(sql, params)
            return await cursor.fetchall()

    async def _drop(self) -> None:
        connection, self.connection = self.connection, None
        if connection is not None:
            with contextlib.suppress(psycopg.Error, OSError):
                await connection.close()

    # -- requests -------------------------------------------------------------------------------

    async def handle_call(self, message: Any, caller: Caller) -> Any:
        try:
            match message:
                case Claim(thread_id=thread_id, key=key):
                    return await self._claim(thread_id, key)
                case Members():
                    return await self._members()
                case Status():
                    return await self._status()
        except (NotOwner, StoreUnavailable) as exc:  # the caller's answer, not a crash
            caller.fail(exc)
            return NOREPLY
        return await super().handle_call(message, caller)

    async def _claim(self, thread_id: str, key: Hashable) -> int:
        if not self.fence.lock_key:
            raise StoreUnavailable(f"node {self.node_id} is not a member of the cluster now")
        params = {
            "thread": thread_id,
            "node": self.node_id,
            "key": self.fence.lock_key,
            "ttl": self.config.lease_ttl,
            **self._lock_params(self.fence.lock_key),
        }
        async with self._database(f"claiming {thread_id}") as connection:
            rows = await self._fetch(connection, _CLAIM, params)
            if not rows:
                held = await self._fetch(connection, _HELD, {"threads": [thread_id]})
        if not rows:
            holder = held[0][1] if held else "?"
            raise NotOwner(f"thread {thread_id} runs on node {holder}")
        epoch = int(rows[0][0])
        if self.fence.epochs.get(thread_id) not in (None, epoch):
            self.log.info("cluster.lease_retaken", thread=thread_id, epoch=epoch)
        self.fence.grant(thread_id, epoch)
        self.keys[thread_id] = key
        self.released.discard(thread_id)
        return epoch

    async def _members(self) -> list[NodeInfo]:
        async with self._database("members") as connection:
            rows = await self._fetch(connection, _MEMBERS, {"class": CLUSTER_LOCK_CLASS})
        return [NodeInfo(str(n), str(h), int(p), float(s), float(age)) for n, h, p, s, age in rows]

    async def _status(self) -> list[str]:
        members = await self._members()
        async with self._database("leases") as connection:
            rows = await self._fetch(connection, _LEASES, {})
        partitions = self.config.partitions
        owner = owners(partitions, [m.node_id for m in members])
        lines = [f"cluster: node {self.node_id}, {len(members)} live members"]
        lines += [
            f"  member {m.node_id} ({m.host}, pid {m.pid}, heartbeat {m.heartbeat_age:.1f} s ago)"
            for m in members
        ]
        for member in members:
            mine = [str(p) for p in range(partitions) if owner[p] == member.node_id]
            lines.append(f"  partitions of {member.node_id}: {' '.join(mine) or '-'}")
        for thread_id, node_id, epoch, held, surface, conversation, agent in rows:
            where = f"{surface}:{conversation} ({agent})" if surface is not None else thread_id
            state = "" if held else ", released"
            lines.append(f"  conversation {where} -> {node_id} (epoch {epoch}{state})")
        return lines

    def handle_cast(self, message: Any) -> Any:
        match message:
            case _Fenced(thread_ids=thread_ids):
                self._lose(thread_ids, "the conversation moved to another node")
                return None
            case Release(thread_ids=thread_ids):
                self.released.update(t for t in thread_ids if t in self.fence.epochs)
                return None
        return super().handle_cast(message)

    # -- heartbeats -----------------------------------------------------------------------------

    async def handle_info(self, message: Any) -> Any:
        if message == "beat":
            try:
                await self._beat()
            finally:
                self.send_after(self.config.heartbeat, "beat")
            return None
        return await super().handle_info(message)

    async def _beat(self) -> None:
        sent = self.clock()
        try:
            if not self.fence.lock_key or self.connection is None or self.connection.broken:
                await self._join()
            await self._renew()
        except (psycopg.Error, TimeoutError, StoreUnavailable) as exc:
            await self._drop()
            overdue = sent - self.renewed >= self.config.lease_ttl - self.config.heartbeat
            self.log.warning(
                "cluster.heartbeat_failed",
                node=self.node_id,
                error=str(exc) if not isinstance(exc, psycopg.Error) else pg_problem(exc),
                fencing=overdue and bool(self.fence.lock_key),
            )
            if overdue and self.fence.lock_key:
                self._fence_self()
            return
        self.renewed = sent

    async def _renew(self) -> None:
        connection = await self._connection()
        me = {"node": self.node_id, "key": self.fence.lock_key}
        if not await self._execute(connection, _BEAT, me):
            # our row names another lock: a daemon with our id joined after ours was lost
            raise StoreUnavailable("this node's row belongs to another incarnation")
        renewed = {str(t): int(e) for t, e in await self._fetch(connection, _RENEW, me)}
        idle = self._idle()
        if idle:
            await self._execute(connection, _RELEASE, {**me, "threads": sorted(idle)})
            self.released.update(idle)
        lost = [
            t
            for t, epoch in self.fence.epochs.items()
            if t not in self.released and renewed.get(t) != epoch
        ]
        if self.released:
            rows = await self._fetch(connection, _HELD, {"threads": sorted(self.released)})
            mine = {
                str(t)
                for t, node, key, epoch in rows
                if self.fence.allows(str(t), str(node), int(key), int(epoch))
            }
            lost += [t for t in self.released if t not in mine]
        if lost:
            self._lose(lost, "the conversation moved to another node")

    def _idle(self) -> set[str]:
        """Held leases whose conversation has no live actor here (not released yet)."""
        if self.conversations is None:
            return set()
        return {
            t
            for t in self.fence.epochs
            if t not in self.released
            and t in self.keys
            and not self.conversations.lookup(self.keys[t])
        }

    def _lose(self, thread_ids: Any, why: str) -> None:
        threads = [t for t in thread_ids if t in self.fence.epochs]
        if not threads:
            return
        self.fence.revoke(threads)
        self.log.warning("cluster.leases_lost", node=self.node_id, threads=threads, why=why)
        for thread_id in threads:
            self.released.discard(thread_id)
            key = self.keys.pop(thread_id, None)
            if key is not None:
                self._stop(key, why)

    def _fence_self(self) -> None:
        """Give up every lease before another node may take one: this node could not renew."""
        self.log.error("cluster.fenced", node=self.node_id, leases=len(self.fence.epochs))
        self._lose(list(self.fence.epochs), "this node lost touch with the cluster's database")
        self.fence.lock_key = 0

    def _stop(self, key: Hashable, why: str) -> None:
        if self.conversations is None:
            return
        for ref, _ in self.conversations.lookup(key):
            self._stop_ref(ref, why)

    def _stop_ref(self, ref: ActorRef, why: str) -> None:
        task = asyncio.get_running_loop().create_task(self._stop_actor(ref, why))
        self.stopping.add(task)
        task.add_done_callback(self.stopping.discard)

    @staticmethod
    async def _stop_actor(ref: ActorRef, why: str) -> None:
        with contextlib.suppress(Exception):
            await ref.stop(Shutdown(why), timeout=30)

    async def terminate(self, reason: object) -> None:
        connection = self.connection
        if connection is not None and self.fence.lock_key and not connection.broken:
            with contextlib.suppress(psycopg.Error, TimeoutError, OSError):
                # leaving: our leases go at once instead of after lease_ttl
                await self._execute(
                    connection,
                    _RELEASE,
                    {
                        "node": self.node_id,
                        "key": self.fence.lock_key,
                        "threads": sorted(self.fence.epochs),
                    },
                )
        await self._drop()
