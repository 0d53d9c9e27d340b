"""Live events across cluster nodes: how long an event takes from a thread on node A to a surface
on node B (`piano.cluster.Fanout`), beside the same event's local delivery on A.

Two nodes in one process (two actor systems), the real broker (``PIANO_RABBITMQ_URL``, else
127.0.0.1:5672) and a SQLite store: events are pushed into A's event pipeline, which delivers
them to A's surface, commits them and hands them to A's fan-out, which publishes them to B.
Each event's ``at`` is when it was pushed; each surface records when it got it.

- ``paced``: one event at a time, the next once B has it (the latency of a quiet system);
- ``burst``: N events of 8 threads pushed at once (the latency under load, and the rate).

Run: ``python -m bench.fanout [N]``; prints medians and p95/p99 in milliseconds.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aio_pika

from actors import NOREPLY, ActorSystem, Caller, Registry
from actors.pipeline import push_many
from piano.cluster import FANOUT, Fanout, WaitConnected, fanout_publisher
from piano.events import EVENTS, event_pipeline
from piano.store import STORE, CreateThread, StoreReader, StoreWriter, UpsertAgent, UpsertSurface
from piano.surfaces import ALL_THREADS, Surface, subscribe
from schemas.events import Notice, ThreadEvent

URL = os.environ.get("PIANO_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
THREADS = [f"t{n}" for n in range(8)]


class Clock(Surface):
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.waiters: list[tuple[int, Caller]] = []

    def on_event(self, message: ThreadEvent) -> None:
        self.latencies.append(time.time() - message.at)
        ready = [(n, c) for n, c in self.waiters if len(self.latencies) >= n]
        for n, caller in ready:
            caller.reply(None)
            self.waiters.remove((n, caller))

    async def handle_call(self, message: Any, caller: Caller) -> Any:
        n = int(message)
        if len(self.latencies) >= n:
            return None
        self.waiters.append((n, caller))
        return NOREPLY


def _summary(name: str, values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)

    def p(q: float) -> float:
        return ms[min(len(ms) - 1, int(q * len(ms)))]

    return (
        f"{name}: n={len(ms)} median {statistics.median(ms):.2f} ms, "
        f"p95 {p(0.95):.2f}, p99 {p(0.99):.2f}, max {ms[-1]:.2f}"
    )


async def main(total: int) -> None:
    prefix = f"piano-bench.{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as directory:
        database = Path(directory) / "piano.db"
        async with ActorSystem() as a, ActorSystem() as b:
            store = await a.spawn(StoreWriter(database), name=STORE)
            await store.call(UpsertSurface("web", "web"))
            await store.call(UpsertAgent("codex", "codex"))
            for thread in THREADS:
                await store.call(CreateThread(thread, "web", thread, "codex"))
            clocks = []
            for system, node in ((a, "a"), (b, "b")):
                subscriptions = Registry(keys="duplicate")
                clock = await system.spawn(Clock())
                subscribe(subscriptions, ALL_THREADS, clock)
                fanout = await system.spawn(
                    Fanout(
                        URL,
                        node_id=node,
                        exchange=f"{prefix}.events",
                        subscriptions=subscriptions,
                        reader=lambda: StoreReader(database),
                    ),
                    name=FANOUT,
                )
                await fanout.call(WaitConnected())
                clocks.append((clock, subscriptions))
            pipeline = await a.spawn(
                event_pipeline(
                    clocks[0][1], lambda: a.whereis(STORE), committed=fanout_publisher(lambda: a)
                ),
                name=EVENTS,
            )
            clock_a, clock_b = clocks[0][0], clocks[1][0]
            for n in range(1, total + 1):
                event = Notice(thread_id="t0", level="info", message="x", at=time.time())
                await push_many(pipeline, [event])
                await clock_b.call(n, timeout=30)
            local = list((await _state(clock_a)).latencies)
            remote = list((await _state(clock_b)).latencies)
            print(_summary("paced, local (A's surface)", local))
            print(_summary("paced, remote (B's surface)", remote))
            started = time.time()
            events = [
                Notice(thread_id=THREADS[n % 8], level="info", message="x", at=started)
                for n in range(total * 10)
            ]
            for start in range(0, len(events), 100):
                batch = [
                    Notice(thread_id=e.thread_id, level="info", message="x", at=time.time())
                    for e in events[start : start + 100]
                ]
                await push_many(pipeline, batch)
            await clock_b.call(total + len(events), timeout=120)
            elapsed = time.time() - started
            remote = (await _state(clock_b)).latencies[total:]
            print(_summary(f"burst of {len(events)}, remote", remote))
            print(f"burst: {len(events) / elapsed:.0f} events/s reached B")
            await pipeline.stop(timeout=30)
        connection = await aio_pika.connect(URL)
        async with connection:
            channel = await connection.channel()
            await channel.exchange_delete(f"{prefix}.events")


async def _state(ref: Any) -> Any:
    from actors import get_state

    state = await get_state(ref)
    return type("S", (), state)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000))
