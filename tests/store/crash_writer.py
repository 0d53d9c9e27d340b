"""A writer process for the crash-safety test: writes batches forever, reporting each commit.

``python -m tests.store.crash_writer DB`` prints ``committed K`` (flushed) after batch K has
committed. Batch K holds, for each of THREADS threads, EVENTS_PER_THREAD completed items with
ids ``b<K>-<thread>-<n>``; the test kills the process mid-write and checks what it reported.
"""

from __future__ import annotations

import sys

from piano.store import Writer
from schemas.events import Interaction, Item, ItemCompleted, ThreadEvent, TurnStarted

THREADS = 10
EVENTS_PER_THREAD = 50
BATCH = THREADS * EVENTS_PER_THREAD


def batch(k: int) -> list[ThreadEvent]:
    events: list[ThreadEvent] = []
    for n in range(EVENTS_PER_THREAD):
        for t in range(THREADS):
            item = Item(id=f"b{k}-t{t}-{n}", kind="command", output="x" * 2000, exit_code=0)
            events.append(ItemCompleted(thread_id=f"t{t}", turn_id="turn", item=item))
    return events


def main(path: str) -> None:
    with Writer(path) as writer:
        writer.upsert_surface("web", "web")
        writer.upsert_agent("codex", "codex")
        for t in range(THREADS):
            writer.create_thread(f"t{t}", "web", f"c{t}", "codex")
        writer.write_batch(
            [
                TurnStarted(
                    thread_id=f"t{t}",
                    turn_id="turn",
                    interaction=Interaction(id=f"i{t}", text="go"),
                    agent="codex",
                )
                for t in range(THREADS)
            ]
        )
        k = 0
        while True:
            writer.write_batch(batch(k))
            print(f"committed {k}", flush=True)
            k += 1


if __name__ == "__main__":
    main(sys.argv[1])
