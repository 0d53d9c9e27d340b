"""Which node runs which conversations: pure functions of the membership, the same on every node.

A conversation belongs to one of P partitions, ``partition_of(conversation_key(surface,
conversation), P)``: BLAKE2b of the key (`actors.pipeline.rabbitmq.partition_for`, the hash the
broker's publisher routes by), never Python's salted `hash()`. Every agent of one chat shares
its partition, so one node talks to each chat.

For each partition the nodes are ranked by rendezvous hashing (highest random weight):
`rendezvous_rank` sorts them by BLAKE2b of ``(partition, node_id)``. Plain rendezvous hashing
moves only what must move when a node joins or leaves, but its shares are random (with 16
partitions and 3 nodes one node often gets 8); `owners` keeps its order of preference and
bounds the shares: it visits every (partition, node) pair from the highest weight down and
gives the partition to the node if neither is settled and the node is below its quota (⌊P/N⌋,
or ⌈P/N⌉ for the first P mod N nodes to reach ⌊P/N⌋). So every node owns ⌊P/N⌋ or ⌈P/N⌉
partitions. The price of the bound is some extra movement: a join moves the newcomer's share
and, through the quotas, a few more (about 1.4 times what must move on average; never more than
three times plus three, `tests/cluster/test_ring.py`), and a leave likewise.

`ranks` is a partition's order of succession: its owner first, then the rest in rendezvous
order; `consumed` is what a node subscribes to, the partitions where its rank is at most
`standby`. No coordinator: each node computes the same answer from the same member list.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable

from actors.pipeline.rabbitmq import partition_for

__all__ = [
    "consumed",
    "conversation_key",
    "owners",
    "partition_of",
    "ranks",
    "rendezvous_rank",
]


def conversation_key(surface: str, conversation: str) -> str:
    """The key a conversation is partitioned by: its surface and its conversation there (not
    its agent, so every agent of one chat lives on one node)."""
    return f"{surface}\x1f{conversation}"


def partition_of(key: str, partitions: int) -> int:
    """The partition (0 ≤ n < `partitions`) of a conversation's key (`conversation_key`)."""
    return partition_for(key, partitions)


def _weight(partition: int, node_id: str) -> int:
    digest = hashlib.blake2b(f"{partition}\x1f{node_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def rendezvous_rank(partition: int, node_ids: Iterable[str]) -> list[str]:
    """The nodes in `partition`'s order of preference: highest rendezvous weight first (ties,
    which BLAKE2b makes practically impossible, by node id)."""
    return sorted(set(node_ids), key=lambda node: (-_weight(partition, node), node))


def owners(partitions: int, node_ids: Iterable[str]) -> list[str | None]:
    """Each partition's owner (rank 0), balanced: every node owns ⌊P/N⌋ or ⌈P/N⌉ partitions.
    No nodes: every owner is None."""
    nodes = sorted(set(node_ids))
    owner: list[str | None] = [None] * partitions
    if not nodes:
        return owner
    floor, extra = divmod(partitions, len(nodes))
    count = dict.fromkeys(nodes, 0)
    at_ceiling = 0
    pairs = sorted(
        ((_weight(p, node), node, p) for p in range(partitions) for node in nodes),
        key=lambda pair: (-pair[0], pair[1], pair[2]),
    )
    settled = 0
    for _, node, p in pairs:
        if owner[p] is not None:
            continue
        if count[node] < floor:
            pass
        elif count[node] == floor and at_ceiling < extra:
            at_ceiling += 1
        else:
            continue
        owner[p] = node
        count[node] += 1
        settled += 1
        if settled == partitions:
            break
    return owner


def ranks(partition: int, owner: str | None, node_ids: Iterable[str]) -> list[str]:
    """`partition`'s order of succession: its `owner` (from `owners`), then the other nodes
    in rendezvous order."""
    order = rendezvous_rank(partition, node_ids)
    if owner is None:
        return order
    return [owner, *(node for node in order if node != owner)]


def consumed(node_id: str, partitions: int, node_ids: Collection[str], standby: int) -> set[int]:
    """The partitions `node_id` subscribes to: those where its rank is at most `standby`
    (rank 0, the owner, is the one the broker should deliver to)."""
    members = set(node_ids) | {node_id}
    owner = owners(partitions, members)
    return {p for p in range(partitions) if node_id in ranks(p, owner[p], members)[: standby + 1]}
