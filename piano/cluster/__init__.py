"""Piano on several machines: daemons sharing one PostgreSQL store and one RabbitMQ broker.

Without a ``[cluster]`` section (`piano.config.ClusterConfig`) none of this runs and Piano is
one process. With one, every daemon is a **node**: any node accepts a message from any
surface, exactly one node at a time runs each conversation, and a node's death moves its
conversations to the survivors. The guide for operators is docs/cluster.md; the design it
follows is summed up here, part by part.

**Partitions** (`_ring`, pure functions). A conversation (its surface and its conversation
there, `conversation_key`) hashes into one of P partitions (`partition_of`: BLAKE2b, the same
on every machine). Each partition's nodes are ranked by rendezvous hashing
(`rendezvous_rank`); `owners` gives every partition an owner so that each node owns ⌊P/N⌋ or
⌈P/N⌉, and `consumed` is what a node subscribes to: the partitions where its rank (`ranks`) is
at most `standby`. Every node computes the same answer from the same member list: no
coordinator.

**Ingress: doorbells on the broker, the truth in PostgreSQL** (designed, not built yet: today
a message runs on the node whose surface got it, if that node can take the lease). An accepted
message is first an `inbox` row (a unique source key, so a surface's retry is one row), then
a small doorbell
``{inbox_id, conversation_key}`` published with a confirm to the partition's quorum queue
``<prefix>.p.NN`` (single active consumer); only then is the surface answered. The consumer
takes the conversation's pending rows in id order under its lease and acks the doorbell at once;
a duplicated or reordered doorbell finds nothing pending, and a periodic sweep rings for rows
whose doorbell was lost.

**Membership and fencing** (`_membership`, `_node`; the store's `piano.store.Fence`). A node's
row in `nodes` is renewed every `heartbeat`, and it holds
a session advisory lock on a dedicated connection, which PostgreSQL drops the moment the
node's socket closes. A conversation's thread runs under a lease ``(node, epoch)`` in
`thread_leases`, taken by an upsert that bumps the epoch only if the lease is free, expired on
PostgreSQL's clock, or held by a node that is not alive; the store's batch transaction checks
the lease of every thread it writes and drops what a stale epoch writes. A node that cannot
renew within `lease_ttl` stops its conversations (fences itself) and rejoins when healthy.

**Live events between nodes** (`_fanout`, the ``cluster:fanout`` actor `Fanout`). What a
node's store commits it publishes to the topic exchange ``<prefix>.events`` (routing key: the
thread id); every node consumes one bounded queue of its own and delivers the others' events
to its local subscriptions, as its own are (`piano.surfaces.deliver`), in journal order per
thread, once: a gap (a dropped message, a reconnect) is read back from the store.

Guarantees: per-conversation order (one node, one epoch at a time); each accepted message
answered once; a turn cut off by a node's death is marked interrupted and its user told (turns
are at most once, never run twice).
"""

from piano.cluster._fanout import (
    FANOUT,
    Committed,
    Fanout,
    FanoutStatistics,
    WaitConnected,
    fanout_child_spec,
    fanout_publisher,
)
from piano.cluster._membership import (
    Claim,
    Members,
    Membership,
    NodeIdTaken,
    NodeInfo,
    NotOwner,
    Release,
)
from piano.cluster._node import (
    CLUSTER,
    MEMBERSHIP,
    claimer,
    cluster_child_spec,
    cluster_status,
)
from piano.cluster._ring import (
    consumed,
    conversation_key,
    owners,
    partition_of,
    ranks,
    rendezvous_rank,
)

__all__ = [
    "CLUSTER",
    "FANOUT",
    "MEMBERSHIP",
    "Claim",
    "Committed",
    "Fanout",
    "FanoutStatistics",
    "Members",
    "Membership",
    "NodeIdTaken",
    "NodeInfo",
    "NotOwner",
    "Release",
    "WaitConnected",
    "claimer",
    "cluster_child_spec",
    "cluster_status",
    "consumed",
    "conversation_key",
    "fanout_child_spec",
    "fanout_publisher",
    "owners",
    "partition_of",
    "ranks",
    "rendezvous_rank",
]
