"""The pipeline: a supervisor over the stages, and the functions that push into it.

```python
pipeline = Pipeline(
    "events",
    processors=Processors(handle_event, concurrency=4, partition_by=lambda m: m.data.thread),
    batchers={"store": Batchers(store_batch, batch_size=100, batch_timeout=0.1)},
)
ref = await system.spawn(pipeline)            # registered as "events"
await push(ref, event)                        # waits while max_in_flight messages are in flight
await ref.stop()                              # drains: everything accepted ends acked or failed
```

The supervision tree reproduces Broadway's (see `docs/pipeline.md` for the diagram): a
rest_for_one pipeline supervisor over the rate limiter, the producers (one_for_one), the
processors (one_for_all, no restarts: one processor's death restarts the group through the
pipeline's rest_for_one), the batchers (one_for_one, each a rest_for_one of a batcher and its
batch processors under one_for_all without restarts) and the terminator, which drains.

Back-pressure: at most `max_in_flight` messages are accepted and not yet acked or failed.
`push` and `push_many` wait for room (in FIFO order with other waiting pushers); `push_nowait`
raises `PipelineFull` instead. Once a pusher has accepted `CHUNK` (256) messages that no stage
has seen yet, it sends them on and yields to the loop once per stage, so the stages keep up
with a pusher that never has to wait for room. `push_many` validates every key first, so it
accepts all of its items or (on `PartitionKeyError`) none. After the pipeline
starts draining, pushes raise `PipelineStopped`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable, Iterable
from typing import Any

from actors import ActorRef
from actors import statistics as actor_statistics
from actors.pipeline._batchers import Batcher, BatchProcessor
from actors.pipeline._message import Acknowledger, Message, PipelineStopped
from actors.pipeline._options import Batchers, Processors, RateLimit, positive_int
from actors.pipeline._options import positive_seconds as _seconds
from actors.pipeline._processors import Processor
from actors.pipeline._producer import InMemoryProducer, Producer, ProducerStage
from actors.pipeline._rate_limiter import RateLimiter
from actors.pipeline._statistics import PipelineStatistics, Telemetry
from actors.pipeline._terminator import Terminator
from actors.pipeline._topology import Topology
from supervisors import ChildSpec, Supervisor

__all__ = [
    "Pipeline",
    "accept_many",
    "push",
    "push_many",
    "push_nowait",
    "statistics",
    "update_rate_limit",
]


class Pipeline(Supervisor):
    """A partitioned, ordered message pipeline; see the module documentation."""

    def __init__(
        self,
        name: str,
        *,
        processors: Processors,
        producer: Producer | None = None,
        batchers: dict[str, Batchers] | None = None,
        handle_failed: Callable[[list[Message]], Any] | None = None,
        max_in_flight: int = 10_000,
        rate_limit: RateLimit | None = None,
        shutdown_timeout: float = 30.0,
        max_restarts: int = 3,
        max_seconds: float = 5.0,
        telemetry: Telemetry | None = None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"a pipeline name must be a non-empty string, got {name!r}")
        if not isinstance(processors, Processors):
            raise TypeError(f"processors must be a Processors, got {processors!r}")
        producer = producer if producer is not None else InMemoryProducer()
        if not isinstance(producer, Producer):
            raise TypeError(f"producer must be a Producer, got {producer!r}")
        batchers = dict(batchers or {})
        for batcher, spec in batchers.items():
            if not isinstance(batcher, str) or not batcher:
                raise ValueError(f"batcher names must be non-empty strings, got {batcher!r}")
            if not isinstance(spec, Batchers):
                raise TypeError(f"batcher {batcher!r} must be a Batchers, got {spec!r}")
        if handle_failed is not None and not callable(handle_failed):
            raise TypeError(f"handle_failed must be callable, got {handle_failed!r}")
        if telemetry is not None and not callable(telemetry):
            raise TypeError(f"telemetry must be callable, got {telemetry!r}")
        if rate_limit is not None and not isinstance(rate_limit, RateLimit):
            raise TypeError(f"rate_limit must be a RateLimit, got {rate_limit!r}")
        positive_int("max_in_flight", max_in_flight)
        _seconds("shutdown_timeout", shutdown_timeout)
        self.name = name
        self.topology = topology = Topology(
            name, processors, batchers, handle_failed, max_in_flight, rate_limit, telemetry
        )
        children = [
            ChildSpec(
                "rate_limiter", start=lambda: RateLimiter(topology), name=f"{name}.rate_limiter"
            ),
            _group(
                topology,
                f"{name}.producers",
                [
                    ChildSpec(
                        0,
                        start=lambda: ProducerStage(topology, producer),
                        name=f"{name}.producer",
                        shutdown=shutdown_timeout,
                    )
                ],
                "one_for_one",
                2,
            ),
            _group(
                topology,
                f"{name}.processors",
                [
                    ChildSpec(
                        index,
                        start=functools.partial(Processor, topology, index),
                        name=f"{name}.processor_{index}",
                    )
                    for index in range(processors.concurrency)
                ],
                "one_for_all",
                0,
            ),
        ]
        if batchers:
            children.append(
                _group(
                    topology,
                    f"{name}.batchers",
                    [_batcher_group(topology, batcher) for batcher in batchers],
                    "one_for_one",
                    3,
                )
            )
        children.append(
            ChildSpec(
                "terminator",
                start=lambda: Terminator(topology, shutdown_timeout),
                name=f"{name}.terminator",
                shutdown=shutdown_timeout + 5.0,
            )
        )
        super().__init__(
            children, strategy="rest_for_one", max_restarts=max_restarts, max_seconds=max_seconds
        )

    def statistics(self) -> PipelineStatistics:
        return self.topology.statistics()

    def describe(self) -> str:
        stats = self.statistics()
        state = "draining, " if stats.draining else ""
        return (
            f"pipeline {self.name!r}: {state}{stats.in_flight}/{stats.max_in_flight} in "
            f"flight, {stats.acked} acked, {stats.failed} failed; {super().describe()}"
        )

    async def init(self) -> None:
        self.topology.bind(self._loop)
        if self.ref.name is None:
            self.system.register(self.name, self.ref)
        await super().init()

    async def terminate(self, reason: object) -> None:
        self.topology.stopping = True
        try:
            await super().terminate(reason)
        finally:
            self.topology.abandon(
                PipelineStopped(f"pipeline {self.name!r} stopped before this message ended")
            )


class Stages(Supervisor):
    """A group of stages (producers, processors, batchers, batch processors).

    While the pipeline drains, its own supervisor is terminating and cannot restart a group
    that gave up; so then a stage that dies is restarted here without counting toward the
    group's intensity, and the drain goes on instead of waiting for its deadline. This cannot
    loop without progress: a restarted stage ends the message (or batch) it was interrupted in
    and goes on with the rest, and the drain's deadline bounds it anyway.
    """

    def __init__(
        self, topology: Topology, children: list[ChildSpec], strategy: Any, max_restarts: int
    ) -> None:
        super().__init__(children, strategy=strategy, max_restarts=max_restarts)
        self.topology = topology

    def counts_toward_intensity(self, child_id: object) -> bool:
        if self.topology.draining:
            self.log.warning(
                "pipeline.stage_restarted_while_draining",
                pipeline=self.topology.name,
                child=repr(child_id),
            )
            return False
        return True


def _group(
    topology: Topology, name: str, children: list[ChildSpec], strategy: Any, max_restarts: int
) -> ChildSpec:
    return ChildSpec(
        name,
        start=lambda: Stages(topology, children, strategy, max_restarts),
        type="supervisor",
        name=name,
    )


def _batcher_group(topology: Topology, batcher: str) -> ChildSpec:
    prefix = f"{topology.name}.batcher.{batcher}"
    processors = [
        ChildSpec(
            index,
            start=functools.partial(BatchProcessor, topology, batcher, index),
            name=f"{prefix}.processor_{index}",
        )
        for index in range(topology.batchers[batcher].concurrency)
    ]
    return _group(
        topology,
        prefix,
        [
            ChildSpec(
                "batcher", start=lambda: Batcher(topology, batcher), name=f"{prefix}.batcher"
            ),
            _group(topology, f"{prefix}.processors", processors, "one_for_all", 0),
        ],
        "rest_for_one",
        4,
    )


def _topology(pipeline: ActorRef) -> Topology:
    actor = pipeline._actor
    if not isinstance(actor, Pipeline):
        raise TypeError(f"{pipeline!r} is not a Pipeline")
    return actor.topology


async def push(
    pipeline: ActorRef,
    data: Any,
    *,
    key: Hashable = None,
    metadata: dict[str, Any] | None = None,
    acknowledger: Acknowledger | None = None,
) -> Message:
    """Push one message, waiting while the pipeline is full. Returns the accepted message.

    Raises `PartitionKeyError` if its key cannot be computed, `PipelineStopped` once draining.
    """
    topology = _topology(pipeline)
    message = Message(data, key=key, metadata=metadata, acknowledger=acknowledger)
    messages = topology.prepare((message,))
    await topology.room(1)
    topology.accept(messages)
    await topology.pause()
    return message


def push_nowait(
    pipeline: ActorRef,
    data: Any,
    *,
    key: Hashable = None,
    metadata: dict[str, Any] | None = None,
    acknowledger: Acknowledger | None = None,
) -> Message:
    """Push one message or raise `PipelineFull` at once (also `PartitionKeyError`,
    `PipelineStopped`)."""
    topology = _topology(pipeline)
    message = Message(data, key=key, metadata=metadata, acknowledger=acknowledger)
    topology.accept_nowait(topology.prepare((message,)))
    return message


async def push_many(pipeline: ActorRef, items: Iterable[Any]) -> list[Message]:
    """Push data items (or `Message` objects) in order, waiting for room as needed.

    Every key is computed before anything is accepted: a `PartitionKeyError` accepts none.
    """
    return await accept_many(_topology(pipeline), items)


async def accept_many(topology: Topology, items: Iterable[Any]) -> list[Message]:
    messages = topology.prepare(items)
    start, total = 0, len(messages)
    while start < total:
        count = await topology.room(total - start)
        topology.accept(messages[start : start + count] if start or count < total else messages)
        start += count
        await topology.pause()
    return messages


def statistics(pipeline: ActorRef) -> PipelineStatistics:
    """A snapshot of the pipeline's counters (read directly, without a call): its
    `Pipeline.statistics`, as `actors.statistics(pipeline)` reads it, typed; `TypeError` if
    `pipeline` is not a pipeline."""
    stats = actor_statistics(pipeline, PipelineStatistics)
    if stats is None:
        raise TypeError(f"{pipeline!r} is not a Pipeline")
    return stats


async def update_rate_limit(pipeline: ActorRef, rate_limit: RateLimit | None) -> None:
    """Change the rate limit of a running pipeline (None removes it)."""
    if rate_limit is not None and not isinstance(rate_limit, RateLimit):
        raise TypeError(f"rate_limit must be a RateLimit or None, got {rate_limit!r}")
    topology = _topology(pipeline)
    limiter = pipeline._actor.system.whereis(f"{topology.name}.rate_limiter")
    if limiter is None:
        raise PipelineStopped(f"pipeline {topology.name!r} has no running rate limiter")
    await limiter.call(("update", rate_limit))
