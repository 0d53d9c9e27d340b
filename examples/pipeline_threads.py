"""A pipeline partitioned by conversation thread, as Piano routes Codex events.

Each event belongs to a thread; events of one thread must be handled in order, while threads
run concurrently. Processors (partitioned by thread) render each event, a batcher groups the
rendered events of one partition and a batch processor stores them. One event is malformed and
fails on every attempt, so after its retries it is failed (a gap, reported to handle_failed); one
thread's store write fails once and, because the
pipeline runs in strict mode, is retried before that thread moves on. Shutdown drains everything.

Run: .venv/bin/python examples/pipeline_threads.py
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict

import structlog

from actors import ActorSystem
from actors.pipeline import (
    Batchers,
    BatchInfo,
    Message,
    Pipeline,
    Processors,
    Retry,
    push,
    statistics,
)

stored: dict[str, list[int]] = defaultdict(list)
failures: list[str] = []
flaky = {"attempts": 0}


def render(message: Message) -> None:
    event = message.data
    if event["text"] is None:
        raise ValueError(f"event {event['seq']} of {event['thread']} has no text")
    message.data = {**event, "html": f"<p>{event['text']}</p>"}


async def store(messages: list[Message], info: BatchInfo) -> None:
    if any(m.data["thread"] == "t2" for m in messages) and flaky["attempts"] == 0:
        flaky["attempts"] += 1
        raise ConnectionError("store unavailable")
    for message in messages:
        stored[message.data["thread"]].append(message.data["seq"])


def report(messages: list[Message]) -> None:
    failures.extend(str(m.failure) for m in messages)


async def main() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    async with ActorSystem() as system:
        ref = await system.spawn(
            Pipeline(
                "threads",
                processors=Processors(
                    render,
                    concurrency=3,
                    partition_by=lambda m: m.data["thread"],
                    strict=Retry(max_attempts=5, initial=0.01),
                ),
                batchers={"default": Batchers(store, batch_size=4, batch_timeout=0.05)},
                handle_failed=report,
            )
        )
        for seq in range(8):
            for thread in ("t1", "t2", "t3"):
                text = None if (thread, seq) == ("t3", 5) else f"{thread} says {seq}"
                await push(ref, {"thread": thread, "seq": seq, "text": text})
        await ref.stop()
        stats = statistics(ref)
    for thread in sorted(stored):
        print(f"{thread}: {stored[thread]}")
    print(f"failed: {failures}")
    print(f"accepted={stats.accepted} acked={stats.acked} failed={stats.failed}")


if __name__ == "__main__":
    asyncio.run(main())
