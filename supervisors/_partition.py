"""PartitionSupervisor: N copies of one child, a message routed to one of them by a key.

```python
shards = PartitionSupervisor(lambda index: Cache(index), partitions=4)
ref = await system.spawn(shards)
which_partition(ref, key="user:42").cast(("put", "user:42", data))
```

As Elixir's: an integer key goes to partition ``abs(key) % partitions``; any other key to
``hash(key) % partitions`` (stable for the life of the process; the routing is not part of the
contract). Children are ordinary one_for_one children with ids 0..N-1, so a crashed partition
is restarted and keeps its index. An unhashable key raises `TypeError`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Literal

from actors import Actor, ActorExited, ActorRef
from supervisors._children import Clock, monotonic
from supervisors._spec import Backoff, ChildSpec, ShutdownPolicy
from supervisors._supervisor import Supervisor

__all__ = ["PartitionSupervisor", "partition_for", "which_partition"]


class PartitionSupervisor(Supervisor):
    """Supervise `partitions` copies of ``start(index)``; see the module documentation."""

    def __init__(
        self,
        start: Callable[[int], Actor],
        *,
        partitions: int | None = None,
        restart: Literal["permanent", "transient", "temporary"] = "permanent",
        shutdown: ShutdownPolicy | Literal["default"] = "default",
        backoff: Backoff | None = None,
        max_restarts: int = 3,
        max_seconds: float = 5.0,
        clock: Clock = monotonic,
    ) -> None:
        count = partitions if partitions is not None else (os.cpu_count() or 1)
        if not isinstance(count, int) or count < 1:
            raise ValueError(f"partitions must be a positive integer, got {partitions!r}")
        specs = [
            ChildSpec(
                index,
                start=functools.partial(start, index),
                restart=restart,
                shutdown=shutdown,
                backoff=backoff,
            )
            for index in range(count)
        ]
        super().__init__(
            specs,
            strategy="one_for_one",
            max_restarts=max_restarts,
            max_seconds=max_seconds,
            clock=clock,
        )
        self.partitions = count

    def describe(self) -> str:
        return f"partition x{self.partitions}, {self._describe_intensity()}"


def partition_for(key: object, partitions: int) -> int:
    """The partition index for `key` among `partitions`."""
    if type(key) is int:
        return abs(key) % partitions
    try:
        return hash(key) % partitions
    except TypeError:
        raise TypeError(f"a partition key must be hashable, got {key!r}") from None


def which_partition(supervisor: ActorRef, key: object) -> ActorRef:
    """The live child serving `key` (read directly, like an ETS lookup, without a call).

    Raises `ActorExited` if the supervisor is not alive or that partition is restarting.
    """
    sup = supervisor._actor
    if not isinstance(sup, PartitionSupervisor):
        raise TypeError(f"{supervisor!r} is not a PartitionSupervisor")
    if not supervisor.alive:
        raise ActorExited(supervisor, supervisor._actor._exit_reason)
    index = partition_for(key, sup.partitions)
    children = sup.children
    child = children[index] if index < len(children) and children[index].spec.id == index else None
    if child is None:
        child = next((c for c in children if c.spec.id == index), None)
    if child is None or child.ref is None or not child.ref.alive:
        raise ActorExited(supervisor, f"partition {index} is not running")
    return child.ref
