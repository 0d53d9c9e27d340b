"""An Application: a tree that runs until SIGTERM or Ctrl-C, then stops in reverse order.

    .venv/bin/python examples/supervision_application.py

A ticker sends itself a message every 100 ms through a timer; a flaky worker crashes now and
then and is restarted with back-off. Stop it with Ctrl-C: the children terminate newest first
and the process exits with status 0.
"""

from __future__ import annotations

from typing import Any

from actors import Actor
from supervisors import Application, Backoff, ChildSpec


class Ticker(Actor):
    def __init__(self) -> None:
        self.ticks = 0

    async def init(self) -> None:
        self.trap_exits = True
        self.send_after(0.1, "tick")
        print("ticker started", flush=True)

    def handle_info(self, message: Any) -> None:
        if message == "tick":
            self.ticks += 1
            self.send_after(0.1, "tick")

    async def terminate(self, reason: object) -> None:
        print(f"ticker stopping after {self.ticks} ticks ({reason})", flush=True)


class Flaky(Actor):
    async def init(self) -> None:
        self.trap_exits = True
        self.send_after(0.3, "fail")
        print("flaky started", flush=True)

    def handle_info(self, message: Any) -> None:
        if message == "fail":
            raise RuntimeError("flaky failed, as it does")

    async def terminate(self, reason: object) -> None:
        print(f"flaky stopping ({reason!r})", flush=True)


app = Application(
    [
        ChildSpec("ticker", start=Ticker),
        ChildSpec("flaky", start=Flaky, backoff=Backoff(initial=0.2, cap=2.0)),
    ],
    name="example",
    max_restarts=10,
    max_seconds=5,
)

if __name__ == "__main__":
    raise SystemExit(app.main())
