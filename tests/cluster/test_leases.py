"""Membership and leases on a real PostgreSQL server, nodes in processes of their own: one
conversation's thread is written by one node at a time, a dead node's leases are taken at once
(its advisory lock vanished with its socket), a paused node's late write is refused after
another node took its lease, and a node cut off from its database gives its leases up by itself
and rejoins under a new epoch."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from actors import ActorSystem
from piano.cluster import Claim, Membership
from piano.config import ClusterConfig
from piano.store import Fence, PostgresBackend, StoreUnavailable
from tests.postgres import TempCluster, fresh_database

ROOT = Path(__file__).resolve().parents[2]


class Node:
    """A `tests.cluster.lease_node` process and its line protocol."""

    def __init__(self, dsn: str, node_id: str, heartbeat: float, lease_ttl: float) -> None:
        self.node_id = node_id
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.cluster.lease_node", dsn, node_id,
             str(heartbeat), str(lease_ttl)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )  # fmt: skip
        ready = self.line()
        assert ready.startswith("ready "), ready
        self.lock_key = int(ready.split()[1])
        assert self.lock_key > 0

    def line(self) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line, f"node {self.node_id} exited ({self.process.poll()})"
        return line.strip()

    def send(self, command: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()

    def ask(self, command: str) -> str:
        self.send(command)
        return self.line()

    def claim_until_granted(self, thread_id: str, limit: int = 100_000) -> str:
        """Claim until granted: the answer may only change when PostgreSQL says so (a lock
        gone, a lease expired on its clock), so this polls a condition, bounded by count."""
        for _ in range(limit):
            answer = self.ask(f"claim {thread_id}")
            if answer.startswith("epoch"):
                return answer
            assert answer == "elsewhere", answer
        raise AssertionError(f"{self.node_id} never got {thread_id}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


async def _create_thread(dsn: str) -> str:
    """A migrated database at `dsn` holding thread t1; its id."""
    backend = await PostgresBackend.open(dsn)
    await backend.upsert_surface("web", "web")
    await backend.upsert_agent("default", "codex")
    await backend.create_thread("t1", "web", "c1", "default")
    await backend.close()
    return "t1"


@pytest.fixture
def thread(pg_dsn: str) -> tuple[str, str]:
    return pg_dsn, asyncio.run(_create_thread(pg_dsn))


def _journal(dsn: str, thread_id: str) -> list[tuple[int, str]]:
    with psycopg.connect(dsn) as connection:
        rows = connection.execute(
            "SELECT seq, body::jsonb->>'message' FROM events WHERE thread_id = %s ORDER BY seq",
            (thread_id,),
        ).fetchall()
    return [(int(seq), str(message)) for seq, message in rows]


def test_one_node_at_a_time_holds_a_thread_and_a_killed_holders_lease_is_taken_at_once(
    thread: tuple[str, str],
) -> None:
    dsn, thread_id = thread
    # an hour's lease: only the holder's death (its lock gone) can free it within the test
    a = Node(dsn, "node-a", heartbeat=0.5, lease_ttl=3600)
    b = Node(dsn, "node-b", heartbeat=0.5, lease_ttl=3600)
    try:
        assert a.ask(f"claim {thread_id}") == "epoch 1"
        assert a.ask(f"claim {thread_id}") == "epoch 1"  # its own: renewed, same epoch
        assert b.ask(f"claim {thread_id}") == "elsewhere"
        assert a.ask(f"write {thread_id} from-a") == "seqs 1"
        assert b.ask(f"write {thread_id} from-b") == "seqs 0"  # not b's: fenced, not written
        a.process.send_signal(signal.SIGKILL)
        a.process.wait()
        assert b.claim_until_granted(thread_id) == "epoch 2"
        assert b.ask(f"write {thread_id} from-b") == "seqs 2"
    finally:
        a.stop()
        b.stop()
    assert _journal(dsn, thread_id) == [(1, "from-a"), (2, "from-b")]


def test_a_paused_holders_late_write_is_refused_after_its_lease_was_taken(
    thread: tuple[str, str],
) -> None:
    dsn, thread_id = thread
    a = Node(dsn, "node-a", heartbeat=0.5, lease_ttl=2.0)
    b = Node(dsn, "node-b", heartbeat=0.5, lease_ttl=2.0)
    try:
        assert a.ask(f"claim {thread_id}") == "epoch 1"
        assert a.ask(f"write {thread_id} before-pause") == "seqs 1"
        os.kill(a.process.pid, signal.SIGSTOP)  # alive (its lock held) but silent
        assert b.claim_until_granted(thread_id) == "epoch 2"  # once its lease expired
        a.send(f"write {thread_id} stale")  # queued while a is stopped
        os.kill(a.process.pid, signal.SIGCONT)
        assert a.line() == "seqs 0"  # refused: the lease is b's now
        assert b.ask(f"write {thread_id} from-b") == "seqs 2"
        # a learns it lost the lease at its next heartbeat: the fence no longer lists it
        for _ in range(100_000):
            if a.ask("held") == "held":
                break
        else:
            raise AssertionError("node-a kept a lease it lost")
    finally:
        os.kill(a.process.pid, signal.SIGCONT) if a.process.poll() is None else None
        a.stop()
        b.stop()
    assert _journal(dsn, thread_id) == [(1, "before-pause"), (2, "from-b")]


def test_a_second_daemon_with_a_live_nodes_id_is_refused(thread: tuple[str, str]) -> None:
    dsn, _ = thread
    a = Node(dsn, "node-a", heartbeat=0.5, lease_ttl=10)
    try:
        twin = subprocess.run(
            [sys.executable, "-m", "tests.cluster.lease_node", dsn, "node-a", "0.5", "10"],
            cwd=ROOT,
            input="",
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert twin.returncode != 0
        assert "'node-a' is already a live member of the cluster" in twin.stderr
    finally:
        a.stop()


def test_a_node_that_loses_its_database_fences_itself_then_rejoins_under_a_new_epoch(
    pg_cluster: TempCluster,
) -> None:
    with fresh_database(pg_cluster.dsn) as dsn:
        asyncio.run(_create_thread(dsn))
        a = Node(dsn, "node-a", heartbeat=0.5, lease_ttl=2.0)
        try:
            assert a.ask("claim t1") == "epoch 1"
            assert a.ask("held") == "held t1:1"
            pg_cluster.stop("immediate")
            # it cannot renew: past lease_ttl - heartbeat it gives up what it held, by itself
            for _ in range(100_000):
                if a.ask("held") == "held":
                    break
            else:
                raise AssertionError("node-a kept its lease without its database")
            pg_cluster.start()
            for _ in range(100_000):  # it joins again once the server answers
                answer = a.ask("claim t1")
                if answer.startswith("epoch"):
                    break
                assert answer == "unavailable", answer
            assert answer == "epoch 2"  # its previous life's lease is not its own any more
            written = a.ask("write t1 after")
            if written == "unavailable":  # its writer's connection predates the restart
                written = a.ask("write t1 after")
            assert written == "seqs 1"
        finally:
            a.stop()


def test_a_join_that_outlasts_its_timeout_leaves_the_node_running_and_it_joins_at_a_later_beat(
    thread: tuple[str, str],
) -> None:
    dsn, thread_id = thread

    async def run() -> None:
        config = ClusterConfig(node_id="node-a", heartbeat=0.2, lease_ttl=10.0)
        fence = Fence("node-a")
        with psycopg.connect(dsn) as blocker:
            # an uncommitted row of node-a: the join's upsert of that row waits past heartbeat
            blocker.execute("INSERT INTO nodes VALUES ('node-a', 0, 0, 'elsewhere', now(), now())")
            async with ActorSystem() as system:
                membership = await system.spawn(Membership(config, dsn, fence))
                assert fence.lock_key == 0  # not a member yet, and not crashed
                with pytest.raises(StoreUnavailable, match="not a member"):
                    await membership.call(Claim(thread_id, thread_id), timeout=30)
                blocker.rollback()
                for _ in range(100_000):  # the next beats join once the row is free
                    try:
                        epoch = await membership.call(Claim(thread_id, thread_id), timeout=30)
                        break
                    except StoreUnavailable:
                        continue
                else:
                    raise AssertionError("node-a never joined")
                assert epoch == 1
                assert fence.lock_key > 0

    asyncio.run(run())
