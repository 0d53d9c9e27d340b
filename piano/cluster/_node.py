"""The cluster's part of the daemon's tree: the `cluster` supervisor and the lease hook of
`piano.threads.Threads`.

```
cluster                Supervisor, one_for_one, intensity 5 in 30 s
└── membership         Membership: this node's row and lock, heartbeats, leases, self-fencing
```

It stands right after `storage` in the daemon's rest_for_one order: everything after it (the
pipeline, the thread actors) writes only what the node's leases allow, and if it fails past
its intensity everything after it restarts with it — with no lease held, no conversation runs.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

from actors import ActorSystem, Registry
from piano.cluster._membership import Claim, Membership, Status
from piano.config import ClusterConfig
from piano.store import Fence, StoreUnavailable
from piano.threads import Claim as ClaimHook
from supervisors import ChildSpec, Supervisor

__all__ = ["CLAIM_TIMEOUT", "CLUSTER", "MEMBERSHIP", "claimer", "cluster_child_spec"]

CLUSTER = "cluster"
"""The registered name of the cluster's supervisor."""
MEMBERSHIP = "membership"
"""The registered name of this node's `Membership`."""
CLAIM_TIMEOUT = 30.0
"""Seconds a lease may take to claim (it may wait on a batch in flight holding the row)."""


def cluster_child_spec(
    config: ClusterConfig,
    dsn: str,
    fence: Fence,
    conversations: Registry,
    *,
    connect_timeout: float = 10.0,
) -> ChildSpec:
    """The `cluster` supervisor of a node whose store writer was given `fence`."""
    membership = ChildSpec(
        MEMBERSHIP,
        start=lambda: Membership(
            config, dsn, fence, conversations, connect_timeout=connect_timeout
        ),
        name=MEMBERSHIP,
        shutdown=10.0,
    )
    return ChildSpec(
        CLUSTER,
        start=lambda: Supervisor([membership], max_restarts=5, max_seconds=30),
        name=CLUSTER,
        type="supervisor",
    )


def claimer(system: Callable[[], ActorSystem | None]) -> ClaimHook:
    """`Threads`' lease hook: a `Claim` call to this node's `Membership`."""

    async def claim(thread_id: str, key: Hashable) -> object:
        running = system()
        membership = running.whereis(MEMBERSHIP) if running is not None else None
        if membership is None:
            raise StoreUnavailable("the cluster's membership is not running")
        return await membership.call(Claim(thread_id, key), timeout=CLAIM_TIMEOUT)

    return claim


async def cluster_status(system: ActorSystem) -> list[str]:
    """What `piano status` shows of the cluster (the console's ``cluster_status()``): members,
    partition owners, conversations' lease holders; one line saying so when not a node."""
    membership = system.whereis(MEMBERSHIP)
    if membership is None:
        return ["cluster: not a cluster node (no [cluster] section)"]
    lines: list[str] = await membership.call(Status(), timeout=CLAIM_TIMEOUT)
    return lines
