"""Pipeline benchmark: 1M events over 1,000 keys through P ordered partitions, beside raw
asyncio and pykka in the same run (interleaved rounds, medians).

Every contender does the same work per event: route it by key to one of P workers, and there
check that the key's sequence numbers arrive in increasing order (the ordering is verified in
the run; a violation fails the benchmark).

- piano: `actors.pipeline.Pipeline` with ``Processors(concurrency=P, partition_by=key)``; the
  producer pushes with `push_many` in slices of 1,000 (waiting for room: ``max_in_flight``
  10,000), then stops the pipeline, which drains it; every message is acked.
- raw_asyncio: a task and an unbounded `asyncio.Queue` per partition, ``put_nowait`` per event,
  the producer yielding to the loop every 1,000 events; no acks, no bound on memory, no
  supervision.
- pykka: P ``ThreadingActor``\\s, one ``tell`` per event, then one ``ask`` each to wait. As in
  the runtime benchmark, pykka is timed both with default scheduling and pinned to one core (its
  threads hand the GIL over per message, which costs 2-3x across this VM's two cores); the
  better median is compared against (``pykka_modes`` shows both).

Every contender calls the same handler shape per event: unpack ``(key, seq)`` and check it.

Workloads: ``ordered_p2``, ``ordered_p4``, ``ordered_p8`` (events/s); ``batched_p4``: the same
with a batcher of size 100 in front of a sink (piano: `Batchers(batch_size=100)`; raw: each
partition task collects 100 events and calls the sink; pykka: each actor does the same).
pykka runs `PYKKA_EVENTS` events (its rate does not depend on the count, and 1M tells take
long), as noted in its line.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pykka
import structlog

from actors import ActorSystem
from actors.pipeline import Batchers, BatchInfo, Message, Pipeline, Processors, push_many
from bench.harness import Options, comparison, medians, sample_rounds, spread
from bench.runtime import _one_core

__all__ = ["run"]

KEYS = 1_000
SLICE = 1_000
BATCH = 100
PYKKA_EVENTS = 200_000


class _Order:
    """Checks that each key's sequence numbers increase; counts events."""

    def __init__(self) -> None:
        self.last: dict[int, int] = {}
        self.count = 0

    def see(self, key: int, seq: int) -> None:
        if self.last.get(key, -1) >= seq:
            raise AssertionError(f"key {key}: {seq} after {self.last[key]}")
        self.last[key] = seq
        self.count += 1


def _sink(batch: list[Any]) -> None:
    """The batch's destination (a store would write it here)."""


def piano(n: int, partitions: int, batched: bool) -> float:
    async def main() -> float:
        order = _Order()

        def handle(message: Message) -> None:
            key, seq = message.data
            order.see(key, seq)

        def handle_batch(messages: list[Message], info: BatchInfo) -> None:
            _sink(messages)

        batchers = (
            {"default": Batchers(handle_batch, batch_size=BATCH, concurrency=partitions)}
            if batched
            else None
        )
        async with ActorSystem() as system:
            ref = await system.spawn(
                Pipeline(
                    "bench",
                    processors=Processors(
                        handle, concurrency=partitions, partition_by=lambda m: m.data[0]
                    ),
                    batchers=batchers,
                )
            )
            started = time.perf_counter()
            for start in range(0, n, SLICE):
                await push_many(ref, [(i % KEYS, i) for i in range(start, start + SLICE)])
            await ref.stop(timeout=60)
            rate = n / (time.perf_counter() - started)
        assert order.count == n, (order.count, n)
        return rate

    return asyncio.run(main())


def raw(n: int, partitions: int, batched: bool) -> float:
    async def main() -> float:
        order = _Order()

        def handle(item: tuple[int, int]) -> None:
            key, seq = item
            order.see(key, seq)

        queues: list[asyncio.Queue[tuple[int, int] | None]] = [
            asyncio.Queue() for _ in range(partitions)
        ]

        async def worker(queue: asyncio.Queue[tuple[int, int] | None]) -> None:
            batch: list[tuple[int, int]] = []
            while True:
                item = await queue.get()
                if item is None:
                    if batch:
                        _sink(batch)
                    return
                handle(item)
                if batched:
                    batch.append(item)
                    if len(batch) >= BATCH:
                        _sink(batch)
                        batch = []

        tasks = [asyncio.create_task(worker(queue)) for queue in queues]
        started = time.perf_counter()
        for start in range(0, n, SLICE):
            for i in range(start, start + SLICE):
                key = i % KEYS
                queues[hash(key) % partitions].put_nowait((key, i))
            await asyncio.sleep(0)
        for queue in queues:
            queue.put_nowait(None)
        await asyncio.gather(*tasks)
        rate = n / (time.perf_counter() - started)
        assert order.count == n
        return rate

    return asyncio.run(main())


class _PykkaWorker(pykka.ThreadingActor):
    def __init__(self, batched: bool) -> None:
        super().__init__()
        self.order = _Order()
        self.batched = batched
        self.batch: list[Any] = []

    def on_receive(self, message: Any) -> Any:
        if message is None:
            if self.batch:
                _sink(self.batch)
            return self.order.count
        key, seq = message
        self.order.see(key, seq)
        if self.batched:
            self.batch.append(message)
            if len(self.batch) >= BATCH:
                _sink(self.batch)
                self.batch = []
        return None


def pykka_rate(n: int, partitions: int, batched: bool) -> float:
    refs = [_PykkaWorker.start(batched) for _ in range(partitions)]
    try:
        started = time.perf_counter()
        for i in range(n):
            key = i % KEYS
            refs[hash(key) % partitions].tell((key, i))
        counts: list[int] = [ref.ask(None, block=True) for ref in refs]
        rate = n / (time.perf_counter() - started)
        assert sum(counts) == n
        return rate
    finally:
        for ref in refs:
            ref.stop()


def run(options: Options) -> Iterator[dict[str, Any]]:
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL),
        cache_logger_on_first_use=True,
    )
    logging.getLogger("pykka").setLevel(logging.CRITICAL)
    n = 20_000 if options.quick else 1_000_000
    pykka_n = 5_000 if options.quick else PYKKA_EVENTS
    workloads = [(f"ordered_p{p}", p, False) for p in (2, 4, 8)] + [("batched_p4", 4, True)]
    for workload, partitions, batched in workloads:
        if not options.wants(workload):
            continue
        contenders: dict[str, Callable[[], float] | None] = {
            "piano": partial(piano, n, partitions, batched),
            "raw_asyncio": partial(raw, n, partitions, batched),
            "pykka": partial(pykka_rate, pykka_n, partitions, batched),
            "pykka_one_core": _one_core(partial(pykka_rate, pykka_n, partitions, batched)),
        }
        samples = sample_rounds(options.rounds, contenders)
        values = medians(samples)
        modes = {"default": values.pop("pykka"), "one_core": values.pop("pykka_one_core")}
        values["pykka"] = max(value for value in modes.values() if value is not None)
        yield comparison(
            "pipeline",
            workload,
            "events/s",
            values,
            min_vs_raw=0.7,
            min_vs_pykka=5,
            spread=spread(samples),
            n=n,
            keys=KEYS,
            partitions=partitions,
            pykka_n=pykka_n,
            pykka_modes={mode: round(value or 0, 1) for mode, value in modes.items()},
            ordering_verified=True,
        )
