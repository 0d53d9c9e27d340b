"""`Fence`: which threads this process may write, checked inside the store's batch transaction.

A cluster (`piano.cluster`) runs each conversation's thread on one node at a time, under a lease
``(node_id, lock_key, epoch)`` in ``thread_leases``. The node's membership actor records what it
holds here (`grant`, `revoke`); the PostgreSQL writer, given the fence, reads the leases of the
batch's threads with ``SELECT … FOR SHARE`` in the batch's own transaction and writes only the
events of threads whose row is still this node's, at the epoch granted. The events of any other
thread are dropped, not written (their seq in the reply is 0), and `on_fenced` is told which
threads they were, so their actors stop. A takeover updates the same row, so it waits for a
batch in flight to commit, and a batch waits for a takeover: a node paused past its lease (a
SIGSTOP, a long GC, a network partition) cannot write after another node took the thread.

Without a cluster there is no fence and nothing changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

__all__ = ["Fence"]


class Fence:
    """The leases this process holds: thread id → epoch, for node `node_id` whose advisory
    lock is `lock_key` (0 while it is not a member)."""

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        self.lock_key = 0
        self.epochs: dict[str, int] = {}
        self.on_fenced: Callable[[list[str]], None] | None = None

    def grant(self, thread_id: str, epoch: int) -> None:
        self.epochs[thread_id] = epoch

    def revoke(self, thread_ids: Iterable[str]) -> None:
        for thread_id in thread_ids:
            self.epochs.pop(thread_id, None)

    def allows(self, thread_id: str, node_id: str, lock_key: int, epoch: int) -> bool:
        """Whether a lease row (`node_id`, `lock_key`, `epoch`) is this node's current one."""
        return (
            node_id == self.node_id
            and lock_key == self.lock_key
            and self.epochs.get(thread_id) == epoch
        )

    def fenced(self, thread_ids: list[str]) -> None:
        """Tell the owner of the fence that these threads' events were dropped."""
        if thread_ids and self.on_fenced is not None:
            self.on_fenced(thread_ids)
