"""One cluster node for the lease tests, in a process of its own: a store writer fenced by the
node's `Membership`, driven by lines on stdin.

``python -m tests.cluster.lease_node DSN NODE_ID HEARTBEAT LEASE_TTL`` prints ``ready LOCK``
once it is a member, then answers each command with one line:

- ``claim T`` → ``epoch N`` | ``elsewhere`` | ``unavailable``
- ``write T TEXT`` → ``seqs S`` (a Notice written to thread T; S is 0 if the store fenced it)
  | ``unavailable``
- ``held`` → ``held T:EPOCH ...`` (the fence's leases)
"""

from __future__ import annotations

import asyncio
import sys

import structlog

from actors import ActorSystem
from piano.cluster import Claim, Membership, NotOwner
from piano.config import ClusterConfig
from piano.store import Fence, PostgresBackend, StoreUnavailable, StoreWriter, WriteBatch
from schemas.events import Notice


async def main(dsn: str, node_id: str, heartbeat: float, lease_ttl: float) -> None:
    config = ClusterConfig(node_id=node_id, heartbeat=heartbeat, lease_ttl=lease_ttl)
    fence = Fence(node_id)
    async with ActorSystem() as system:
        writer = await system.spawn(StoreWriter(PostgresBackend.opener(dsn, fence=fence)))
        membership = await system.spawn(Membership(config, dsn, fence))
        print(f"ready {fence.lock_key}", flush=True)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := (await reader.readline()).decode().strip():
            command, _, rest = line.partition(" ")
            if command == "claim":
                try:
                    epoch = await membership.call(Claim(rest, rest), timeout=30)
                    answer = f"epoch {epoch}"
                except NotOwner:
                    answer = "elsewhere"
                except StoreUnavailable:
                    answer = "unavailable"
            elif command == "write":
                thread_id, _, text = rest.partition(" ")
                event = Notice(level="info", message=text, thread_id=thread_id)
                try:
                    seqs = await writer.call(WriteBatch([event]), timeout=30)
                    answer = f"seqs {' '.join(map(str, seqs))}"
                except StoreUnavailable:  # a server restarted since: the next call reconnects
                    answer = "unavailable"
            elif command == "held":
                answer = "held " + " ".join(f"{t}:{e}" for t, e in sorted(fence.epochs.items()))
            else:
                answer = f"unknown {command}"
            print(answer, flush=True)


if __name__ == "__main__":
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])))
