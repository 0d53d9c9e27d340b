"""Embed the actor runtime in a plain asyncio program: a small TCP ledger service.

Run it with ``.venv/bin/python examples/embed_asyncio.py``. It starts an `ActorSystem` inside
``asyncio.run``, serves a line protocol on 127.0.0.1 whose connection handlers talk to a `Ledger`
actor, links a `Journal` to the ledger and has an `Auditor` monitor it, then crashes the ledger
to show what links and monitors do with the exit reason.
"""

from __future__ import annotations

import asyncio
from typing import Any

from actors import Actor, ActorExited, ActorRef, ActorSystem, Caller, Down


class Ledger(Actor):
    """Account balances. A withdrawal larger than the balance is a bug here: it crashes."""

    def __init__(self) -> None:
        self.balances: dict[str, int] = {}

    def handle_call(self, message: Any, caller: Caller) -> Any:
        match message:
            case ("balance", who):
                return self.balances.get(who, 0)
            case ("withdraw", who, amount):
                if self.balances.get(who, 0) < amount:
                    raise ValueError(f"{who} cannot withdraw {amount}")
                self.balances[who] -= amount
                return self.balances[who]
        return Actor.handle_call(self, message, caller)

    def handle_cast(self, message: Any) -> None:
        match message:
            case ("deposit", who, amount):
                self.balances[who] = self.balances.get(who, 0) + amount


class Journal(Actor):
    """Linked to the ledger: it has no reason to live without it."""

    def __init__(self, ledger: ActorRef) -> None:
        self.ledger = ledger

    async def init(self) -> None:
        self.link(self.ledger)

    def handle_cast(self, message: Any) -> None:
        print(f"journal: {message}")


class Auditor(Actor):
    """Monitors the ledger and reports how it ended."""

    def __init__(self, ledger: ActorRef, reported: asyncio.Event) -> None:
        self.ledger = ledger
        self.reported = reported

    async def init(self) -> None:
        self.monitor(self.ledger)

    def handle_info(self, message: Any) -> None:
        if isinstance(message, Down):
            print(f"auditor: ledger went down with {message.reason!r}")
            self.reported.set()


async def serve(ledger: ActorRef, journal: ActorRef) -> asyncio.Server:
    async def execute(command: list[str]) -> str:
        match command:
            case ["deposit", who, amount]:
                ledger.cast(("deposit", who, int(amount)))
                journal.cast(f"deposit {who} {amount}")
                return "ok"
            case ["withdraw", who, amount]:
                return str(await ledger.call(("withdraw", who, int(amount))))
            case ["balance", who]:
                return str(await ledger.call(("balance", who)))
        return "error: unknown command"

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while command := (await reader.readline()).decode().split():
            try:
                answer = await execute(command)
            except ActorExited as exc:
                answer = f"error: the ledger exited with {exc.reason!r}"
            writer.write(answer.encode() + b"\n")
            await writer.drain()
        writer.close()

    return await asyncio.start_server(session, "127.0.0.1", 0)


async def client(port: int, commands: list[str]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for command in commands:
        writer.write(command.encode() + b"\n")
        await writer.drain()
        print(f"client: {command} -> {(await reader.readline()).decode().strip()}")
    writer.close()
    await writer.wait_closed()


async def main() -> None:
    async with ActorSystem() as system:
        ledger = await system.spawn(Ledger(), name="ledger")
        journal = await system.spawn(Journal(ledger))
        reported = asyncio.Event()
        await system.spawn(Auditor(ledger, reported))

        server = await serve(ledger, journal)
        port = server.sockets[0].getsockname()[1]
        async with server:
            await client(port, ["deposit alice 30", "withdraw alice 10", "balance alice"])
            await client(port, ["withdraw alice 100", "balance alice"])
        await asyncio.wait_for(reported.wait(), 5)
        print(f"journal exited with {await journal.join(5)!r}")
        print(f"still alive: {[type(ref._actor).__name__ for ref in system.processes()]}")
    print("system shut down")


if __name__ == "__main__":
    asyncio.run(main())
