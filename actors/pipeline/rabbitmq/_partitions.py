"""Client-side partitioning: which of P queues a key belongs to.

RabbitMQ's consistent-hash exchange places queues at random points on its ring, so the share of
keys per queue is uneven and changes when queues are re-declared; hashing on the client gives an
even, fixed mapping instead. The hash is BLAKE2b (8-byte digest) of the key's UTF-8 bytes, the
same in every process and on every machine, unlike Python's salted `hash()`. P must stay fixed
for the cluster's life: changing it moves keys to other queues while their old messages are
still queued, which breaks per-key order.
"""

from __future__ import annotations

import hashlib

__all__ = ["PARTITION_KEY_HEADER", "partition_for", "partition_queues"]

PARTITION_KEY_HEADER = "partition-key"
"""The message header that carries a message's partition key from the publisher to the
consumer, where it becomes `Message.key`."""


def partition_for(key: str | bytes, partitions: int) -> int:
    """The partition (0 ≤ n < `partitions`) of `key`: BLAKE2b of its bytes modulo `partitions`."""
    if type(partitions) is not int or partitions < 1:
        raise ValueError(f"partitions must be a positive integer, got {partitions!r}")
    if isinstance(key, str):
        data = key.encode()
    elif isinstance(key, bytes):
        data = key
    else:
        raise TypeError(f"a partition key must be str or bytes, got {key!r}")
    digest = hashlib.blake2b(data, digest_size=8).digest()
    return int.from_bytes(digest, "big") % partitions


def partition_queues(prefix: str, partitions: int) -> list[str]:
    """The queue names of a partitioned set: ``prefix.00`` … ``prefix.{P-1}``."""
    if not isinstance(prefix, str) or not prefix:
        raise ValueError(f"a queue prefix must be a non-empty string, got {prefix!r}")
    if type(partitions) is not int or not 1 <= partitions <= 1000:
        raise ValueError(f"partitions must be an integer from 1 to 1000, got {partitions!r}")
    width = max(2, len(str(partitions - 1)))
    return [f"{prefix}.{index:0{width}d}" for index in range(partitions)]
