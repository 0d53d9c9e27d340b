"""The terminator: the last child of the pipeline supervisor, so it is the first one stopped.

When the pipeline itself stops (not when a rest_for_one restart takes the terminator down), its
`terminate` drains the pipeline, as Broadway's Terminator does:

1. the pipeline stops accepting: new pushes raise `PipelineStopped`, pushers waiting for room
   get it too, and the producer's `produce` is cancelled;
2. messages waiting for the rate limit are released, pending chunks are sent, and batchers emit
   their open batches at once (and any batch they open from now on);
3. it waits until every accepted message has been acked or failed, up to `shutdown_timeout`.

A stage that dies meanwhile is restarted by its own group (see `Stages` in
`actors.pipeline._pipeline`), so the drain goes on. Then the supervisor stops the other stages,
newest first. Whatever is still in flight after the deadline is ended by the pipeline itself
(`Topology.abandon`): what a processor had already handled is acked (failed if it had batchers
still to reach), the rest failed with `PipelineStopped`. Nothing accepted is lost.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from actors import Actor, ActorError

if TYPE_CHECKING:
    from actors.pipeline._topology import Topology

__all__ = ["Terminator"]


class Terminator(Actor):
    """Drains the pipeline on shutdown; see the module documentation."""

    def __init__(self, topology: Topology, timeout: float) -> None:
        self.topology = topology
        self.timeout = timeout

    def describe(self) -> str:
        state = "draining" if self.topology.draining else "ready"
        return f"terminator ({state}, shutdown within {self.timeout:g}s)"

    def init(self) -> None:
        self.trap_exits = True

    async def terminate(self, reason: object) -> None:
        topology = self.topology
        if not topology.stopping:
            return
        loop = topology.loop
        assert loop is not None
        deadline = loop.time() + self.timeout
        topology.stop_accepting()
        producer = topology.producer.ref
        if producer is not None and producer.alive:
            try:
                await producer.call("drain", timeout=self.timeout)
            except ActorError as exc:
                self.log.warning("pipeline.producer_drain_failed", reason=repr(exc))
        topology.release()
        topology.flush()
        left = max(0.001, deadline - loop.time())
        drained = await topology.drained(left)
        log = self.log.info if drained else self.log.error
        log(
            "pipeline.drained" if drained else "pipeline.drain_timeout",
            pipeline=topology.name,
            in_flight=topology.in_flight,
            acked=topology.acked,
            failed=topology.failed,
        )
