"""Use actors from synchronous code, with a thread actor doing blocking work.

Run it with ``.venv/bin/python examples/embed_sync.py``. `run_in_thread` starts an actor system
on a background event-loop thread; this plain synchronous script talks to it through blocking
references. `Notes` is a `ThreadActor` owning a sqlite3 connection, a blocking library whose
connection may only be used on the thread that created it: every callback of a thread actor runs
on that one thread. It reports each note to `Stats`, an ordinary async actor, through a
`BlockingRef`.
"""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

from actors import Actor, ActorExited, ActorRef, BlockingRef, Caller, ThreadActor, run_in_thread


class Stats(Actor):
    """An async actor: counts what it is told about."""

    def __init__(self) -> None:
        self.notes = 0

    def handle_call(self, message: Any, caller: Caller) -> Any:
        if message == "notes":
            return self.notes
        return Actor.handle_call(self, message, caller)

    def handle_cast(self, message: Any) -> None:
        if message == "note added":
            self.notes += 1


class Notes(ThreadActor):
    """A thread actor: sqlite3 calls block, so they run on this actor's own thread."""

    def __init__(self, stats: ActorRef) -> None:
        self.stats = BlockingRef(stats)
        self.db: sqlite3.Connection | None = None

    def init(self) -> None:
        self.db = sqlite3.connect(":memory:")
        self.db.execute("create table notes (text text)")
        print(f"notes: connected on thread {threading.current_thread().name}")

    def handle_call(self, message: Any, caller: Caller) -> Any:
        assert self.db is not None
        match message:
            case ("add", text):
                self.db.execute("insert into notes values (?)", (text,))
                self.stats.cast("note added")
                return "added"
            case "all":
                return [text for (text,) in self.db.execute("select text from notes")]
            case ("query", sql):
                return self.db.execute(sql).fetchall()
        return super().handle_call(message, caller)

    def terminate(self, reason: object) -> None:
        if self.db is not None:
            self.db.close()
        print(f"notes: closed the database ({reason!r})")


def main() -> None:
    with run_in_thread() as actors:
        stats = actors.spawn(Stats())
        notes = actors.spawn(Notes(stats.ref), name="notes")
        for text in ["buy milk", "call mum", "water plants"]:
            print(f"add {text!r}: {notes.call(('add', text))}")
        print(f"all notes: {notes.call('all')}")
        print(f"stats: {stats.call('notes')} notes")
        try:
            notes.call(("query", "select * from nowhere"))
        except ActorExited as exc:
            reason = exc.reason
        exit_reason = notes.join(timeout=5)  # the crash answers the caller before terminate runs
        print(f"notes crashed: {reason!r}")
        print(f"notes exited with {exit_reason!r}; alive: {notes.alive}")
    print(f"threads left: {[thread.name for thread in threading.enumerate()]}")


if __name__ == "__main__":
    main()
