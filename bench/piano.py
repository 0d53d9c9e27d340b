"""Piano end to end: Codex events through the pipeline into SQLite and out to a surface.

- ``codex_turns``: N threads x M turns against the real codex and the fake model provider
  (which answers at once, streaming `deltas` text deltas per turn): 1 thread x 10 turns, then
  8 threads x 5 turns (all 8 stream at once). Reports events per second
  stored, and the latency added by Piano from a notification's line being read from codex's
  stdout to (a) the surface callback and (b) its batch being committed to SQLite — median and
  p99. Per-thread order is verified: the store's journal for each thread must hold exactly the
  events the surface saw, in the same order, numbered 1..n.
- ``turn_cost``: what Piano adds to a Codex turn, end to end: the same turns sent through Piano
  (`send_message` to the surface's ``TurnCompleted``) and straight to a second `codex
  app-server` (``turn/start`` to the ``turn/completed`` notification), alternated turn by turn
  in one run against the same fake provider, after one warm-up turn each (which starts the
  thread). Reports both medians and their ratio (target ≤ 1.10, issue #21), and Piano's tail:
  from the turn/completed line read from codex's stdout to the surface callback (median). A
  third path runs in the same alternation: a user's POST to the web surface's SSE endpoint
  (`piano_sse`, its own conversation) until the stream's ``done`` event is read.
- ``pipeline_to_store``: the same pipeline and store without Codex: synthetic events for 100
  threads pushed as fast as the pipeline takes them, to measure its capacity (events/s
  persisted, order verified the same way).
- ``pipeline_to_store_postgres``: the same on SQLite and on a PostgreSQL store (the tests'
  server, a database of its own per round), alternated in one run; both rates and their ratio.

Targets (issue #5): ≤ 1 ms median added per event; ≥ 20k events/s persisted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import structlog

from actors import ActorRef, ActorSystem, Registry
from bench.harness import Options
from piano.agents.codex import CodexBackend
from piano.codex import CODEX, CodexClient, codex_process, codex_provider_id
from piano.config import AgentConfig, CodexConfig, Config, DaemonConfig, ProviderConfig
from piano.events import EVENTS, event_pipeline, publisher
from piano.store import (
    STORE,
    CreateThread,
    StoreLocation,
    StoreWriter,
    UpsertAgent,
    UpsertSurface,
    open_reader,
)
from piano.surfaces import ALL_THREADS, Surface, subscribe
from piano.threads import (
    THREAD_SUPERVISOR,
    THREADS,
    StoreDirectory,
    ThreadKey,
    Threads,
    send_message,
)
from piano.web import WebConfig, stream_address
from piano.web import child_spec as web_child_spec
from schemas import events as ev
from schemas.codex import TextInput, ThreadStartParams, TurnStartParams
from supervisors import DynamicSupervisor
from tests.fakes.responses_provider import CodexDirs, make_codex_dirs

__all__ = ["run"]

REPO = Path(__file__).resolve().parents[1]
_WEB_TOKEN = "bench-web-token"  # a local test server's token, not a secret


class _Surface(Surface):
    """Records when each event reaches a surface callback (`Surface.on_event`)."""

    def __init__(self) -> None:
        self.seen: dict[str, list[tuple[str, float]]] = defaultdict(list)
        self.latency: list[float] = []
        self.completed: dict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self.completed_at: dict[str, float] = {}
        self.tail: dict[str, float] = {}
        """Per interaction: from its turn/completed line read from codex to this callback."""

    def on_event(self, message: ev.ThreadEvent) -> None:
        now = time.time()
        self.seen[message.thread_id].append((type(message).__name__, now))
        if message.at:
            self.latency.append(now - message.at)
        if isinstance(message, ev.TurnCompleted) and message.interaction_id:
            self.completed_at[message.interaction_id] = time.perf_counter()
            self.tail[message.interaction_id] = now - message.at
            self.completed[message.interaction_id].set()


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] * 1e6


def _check_order(database: Path | StoreLocation, seen: dict[str, list[tuple[str, float]]]) -> bool:
    with open_reader(database) as reader:
        for thread_id, received in seen.items():
            journal = reader.events_since(thread_id, 0)
            if [entry.seq for entry in journal] != list(range(1, len(journal) + 1)):
                return False
            if [type(entry.event).__name__ for entry in journal] != [kind for kind, _ in received]:
                return False
    return True


_PROVIDER = """
import asyncio, sys
from tests.fakes.responses_provider import FakeResponsesProvider, Text

async def main():
    async with FakeResponsesProvider(default=Text("x" * {deltas}, deltas={deltas})) as provider:
        print(provider.base_url, flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

asyncio.run(main())
"""


@contextlib.asynccontextmanager
async def _provider_process(deltas: int) -> AsyncIterator[str]:
    """The fake model provider in a process of its own, as a real provider would be: in-process
    its streaming would compete with Piano for the event loop and inflate the latency."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _PROVIDER.format(deltas=deltas),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=REPO,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        yield line.decode().strip()
    finally:
        assert process.stdin is not None
        process.stdin.close()
        await asyncio.wait_for(process.wait(), 30)


def _config(dirs: CodexDirs, base_url: str) -> Config:
    """One Codex agent, "default", on the fake provider at `base_url`, state in `dirs`."""
    return Config(
        daemon=DaemonConfig(state_dir=str(dirs.root)),
        codex=CodexConfig(home=str(dirs.home)),
        providers={"fake": ProviderConfig(base_url=base_url)},
        agents={"default": AgentConfig(model="gpt-5.5", provider="fake", workspace=str(dirs.work))},
    )


@dataclass
class _Piano:
    """The assembly `_piano` yields."""

    system: ActorSystem
    router: ActorRef
    surface: _Surface
    subscriptions: Registry
    directory: StoreDirectory


@contextlib.asynccontextmanager
async def _piano(
    config: Config, database: Path, stored: Callable[[list[ev.ThreadEvent]], None] | None = None
) -> AsyncIterator[_Piano]:
    """Piano's actors as the daemon wires them for a Codex agent (store, event pipeline, codex
    client, thread router), with a recording surface subscribed to every thread."""
    async with ActorSystem() as system:
        subscriptions = Registry(keys="duplicate")
        sessions = Registry(keys="unique")
        await system.spawn(StoreWriter(database), name=STORE)
        pipeline = event_pipeline(subscriptions, lambda: system.whereis(STORE), stored=stored)
        await system.spawn(pipeline, name=EVENTS)
        await system.spawn(CodexClient(config, sessions), name=CODEX)
        await system.spawn(DynamicSupervisor(), name=THREAD_SUPERVISOR)
        directory = StoreDirectory(lambda: system.whereis(STORE), database)
        router = await system.spawn(
            Threads(
                config, directory, publisher(lambda: system), {"codex": CodexBackend(sessions)}
            ),
            name=THREADS,
        )
        surface = _Surface()
        surface_ref = await system.spawn(surface)
        subscribe(subscriptions, ALL_THREADS, surface_ref)
        yield _Piano(system, router, surface, subscriptions, directory)
    directory.close()  # after the threads stopped: they read through it until then


async def _codex_turns(threads_n: int, turns: int, deltas: int) -> dict[str, Any]:
    dirs = make_codex_dirs()
    stored_latency: list[float] = []

    def stored(events: list[ev.ThreadEvent]) -> None:
        now = time.time()
        stored_latency.extend(now - event.at for event in events if event.at)

    try:
        async with _provider_process(deltas) as base_url:
            config = _config(dirs, base_url)
            database = dirs.root / "piano.db"
            async with _piano(config, database, stored) as piano:
                system, router, surface = piano.system, piano.router, piano.surface

                async def conversation(index: int) -> None:
                    key = ThreadKey("bench", f"c{index}", "default")
                    for turn in range(turns):
                        interaction = ev.Interaction(id=f"{index}-{turn}", text="go")
                        await send_message(router, key, interaction)
                        await asyncio.wait_for(surface.completed[interaction.id].wait(), 60)

                started = time.perf_counter()
                await asyncio.gather(*(conversation(i) for i in range(threads_n)))
                await system.whereis(EVENTS).stop(timeout=60)  # type: ignore[union-attr]
                elapsed = time.perf_counter() - started
                total = sum(len(events) for events in surface.seen.values())
                ordered = _check_order(database, surface.seen)
        return {
            "events": total,
            "events_per_s": total / elapsed,
            "surface_median_us": statistics.median(surface.latency) * 1e6,
            "surface_p99_us": _percentile(surface.latency, 0.99),
            "stored_median_us": statistics.median(stored_latency) * 1e6,
            "stored_p99_us": _percentile(stored_latency, 0.99),
            "order_verified": ordered,
        }
    finally:
        shutil.rmtree(dirs.root, ignore_errors=True)


async def _turn_cost(turns: int, deltas: int) -> dict[str, Any]:
    """`turns` turns through Piano (its actors; its web surface's SSE endpoint) and `turns`
    straight to codex, alternated; seconds each."""
    dirs = make_codex_dirs()
    try:
        async with _provider_process(deltas) as base_url:
            config = _config(dirs, base_url)
            database = dirs.root / "piano.db"
            completed: dict[str, float] = {}
            done: dict[str, asyncio.Event] = defaultdict(asyncio.Event)

            def on_notification(thread_id: str | None, method: str, params: Any) -> None:
                if method == "turn/completed" and thread_id is not None:
                    completed[thread_id] = time.perf_counter()
                    done[thread_id].set()

            direct = codex_process(config, on_notification=on_notification)
            await direct.start()
            agent = config.agents["default"]
            # The parameters Piano's thread actor starts its Codex thread with (`_attach`).
            common: dict[str, Any] = {
                "cwd": agent.workspace,
                "model": agent.model,
                "model_provider": codex_provider_id("fake"),
                "approval_policy": agent.approval_policy,
                "sandbox": agent.sandbox,
                "developer_instructions": agent.instructions,
            }
            started = await direct.call(ThreadStartParams(**common))
            codex_thread = started.thread.id

            async def straight() -> float:
                done[codex_thread].clear()
                begin = time.perf_counter()
                await direct.call(
                    TurnStartParams(thread_id=codex_thread, input=[TextInput(text="go")])
                )
                await asyncio.wait_for(done[codex_thread].wait(), 60)
                return completed[codex_thread] - begin

            piano_s: list[float] = []
            codex_s: list[float] = []
            tail_s: list[float] = []
            sse_s: list[float] = []
            try:
                async with _piano(config, database) as piano:
                    router, surface = piano.router, piano.surface
                    key = ThreadKey("bench", "turn-cost", "default")

                    async def through_piano(turn: int) -> float:
                        interaction = ev.Interaction(id=f"cost-{turn}", text="go")
                        begin = time.perf_counter()
                        await send_message(router, key, interaction)
                        await asyncio.wait_for(surface.completed[interaction.id].wait(), 60)
                        return surface.completed_at[interaction.id] - begin

                    web = await piano.system.spawn(
                        web_child_spec(
                            WebConfig(enabled=True, port=0),
                            subscriptions=piano.subscriptions,
                            directory=piano.directory,
                            token=_WEB_TOKEN,
                        ).start()
                    )
                    host, port = await stream_address(web)
                    url = f"http://{host}:{port}/api/messages/stream"
                    async with aiohttp.ClientSession() as session:

                        async def through_sse() -> float:
                            """A user's POST to the web surface's SSE endpoint until its
                            ``done`` event is read."""
                            begin = time.perf_counter()
                            async with session.post(
                                url,
                                json={"text": "go", "conversation": "turn-cost-sse"},
                                headers={"Authorization": f"Bearer {_WEB_TOKEN}"},
                            ) as response:
                                async for line in response.content:
                                    if line.startswith(b"event: done"):
                                        return time.perf_counter() - begin
                            raise AssertionError("the SSE stream ended without a done event")

                        await through_piano(-1)
                        await through_sse()
                        await straight()
                        for turn in range(turns):
                            piano_s.append(await through_piano(turn))
                            sse_s.append(await through_sse())
                            codex_s.append(await straight())
                    tail_s = [surface.tail[f"cost-{turn}"] for turn in range(turns)]
            finally:
                await direct.close()
        return {"piano": piano_s, "codex": codex_s, "tail": tail_s, "sse": sse_s}
    finally:
        shutil.rmtree(dirs.root, ignore_errors=True)


async def _pipeline_to_store(
    threads_n: int, per_thread: int, postgres: str | None = None
) -> dict[str, Any]:
    """The pipeline into the store: SQLite, or the PostgreSQL database `postgres` (a DSN)."""
    dirs = make_codex_dirs()
    try:
        database: Path | StoreLocation = dirs.root / "piano.db"
        target: Any = database
        if postgres is not None:
            database = StoreLocation.postgres(postgres)
            target = database.opener()
        async with ActorSystem() as system:
            subscriptions = Registry(keys="duplicate")
            writer = await system.spawn(StoreWriter(target), name=STORE)
            await writer.call(UpsertSurface("bench", "bench"))
            await writer.call(UpsertAgent("default", "codex"))
            for index in range(threads_n):
                await writer.call(CreateThread(f"t{index}", "bench", f"c{index}", "default"))
            await system.spawn(
                event_pipeline(subscriptions, lambda: system.whereis(STORE)), name=EVENTS
            )
            surface = _Surface()
            subscribe(subscriptions, ALL_THREADS, await system.spawn(surface))
            publish = publisher(lambda: system)

            async def thread(index: int) -> None:
                for n in range(per_thread):
                    event = ev.Notice(
                        thread_id=f"t{index}", level="info", message=str(n), at=time.time()
                    )
                    await publish([event])

            started = time.perf_counter()
            await asyncio.gather(*(thread(i) for i in range(threads_n)))
            await system.whereis(EVENTS).stop(timeout=120)  # type: ignore[union-attr]
            elapsed = time.perf_counter() - started
            total = threads_n * per_thread
            ordered = _check_order(database, surface.seen)
            with open_reader(database) as reader:
                stored = sum(reader.last_seq(f"t{i}") for i in range(threads_n))
        return {
            "events": total,
            "stored": stored,
            "events_per_s": stored / elapsed,
            "order_verified": ordered and stored == total,
        }
    finally:
        shutil.rmtree(dirs.root, ignore_errors=True)


def run(options: Options) -> Iterator[dict[str, Any]]:
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        cache_logger_on_first_use=True,
    )
    if options.wants("codex_turns"):
        shapes = [(1, 2, 20), (2, 2, 20)] if options.quick else [(1, 10, 200), (8, 5, 200)]
        for n, m, deltas in shapes:
            rounds = [asyncio.run(_codex_turns(n, m, deltas)) for _ in range(options.rounds)]
            line = {
                key: round(statistics.median(r[key] for r in rounds), 1)
                for key in rounds[0]
                if key != "order_verified"
            }
            yield {
                "bench": "piano",
                "workload": "codex_turns",
                "threads": n,
                "turns": m,
                "deltas_per_turn": deltas,
                **line,
                "order_verified": all(r["order_verified"] for r in rounds),
                "target": {"max_surface_median_us": 1000, "max_stored_median_us": 1000},
                "met": line["surface_median_us"] <= 1000 and line["stored_median_us"] <= 1000,
            }
    if options.wants("turn_cost"):
        turns, deltas = (3, 20) if options.quick else (20, 20)
        piano_s: list[float] = []
        codex_s: list[float] = []
        tail_s: list[float] = []
        sse_s: list[float] = []
        for _ in range(options.rounds):
            sample = asyncio.run(_turn_cost(turns, deltas))
            piano_s += sample["piano"]
            codex_s += sample["codex"]
            tail_s += sample["tail"]
            sse_s += sample["sse"]
        sse_ms = statistics.median(sse_s) * 1e3
        piano_ms = statistics.median(piano_s) * 1e3
        codex_ms = statistics.median(codex_s) * 1e3
        ratio = piano_ms / codex_ms
        yield {
            "bench": "piano",
            "workload": "turn_cost",
            "unit": "ms per turn",
            "turns": len(piano_s),
            "deltas_per_turn": deltas,
            "piano": round(piano_ms, 2),
            "codex_alone": round(codex_ms, 2),
            "ratio_vs_codex": round(ratio, 3),
            "piano_tail_ms": round(statistics.median(tail_s) * 1e3, 3),
            "piano_sse": round(sse_ms, 2),
            "sse_ratio_vs_codex": round(sse_ms / codex_ms, 3),
            "spread": {
                "piano": [round(min(piano_s) * 1e3, 2), round(max(piano_s) * 1e3, 2)],
                "codex_alone": [round(min(codex_s) * 1e3, 2), round(max(codex_s) * 1e3, 2)],
                "piano_sse": [round(min(sse_s) * 1e3, 2), round(max(sse_s) * 1e3, 2)],
            },
            "target": {"max_ratio_vs_codex": 1.1},
            "met": ratio <= 1.1,
        }
    if options.wants("pipeline_to_store"):
        n, per = (10, 100) if options.quick else (100, 2000)
        rounds = [asyncio.run(_pipeline_to_store(n, per)) for _ in range(options.rounds)]
        rate = statistics.median(r["events_per_s"] for r in rounds)
        yield {
            "bench": "piano",
            "workload": "pipeline_to_store",
            "threads": n,
            "events": n * per,
            "events_per_s": round(rate, 1),
            "order_verified": all(r["order_verified"] for r in rounds),
            "target": {"min_events_per_s": 20_000},
            "met": rate >= 20_000,
        }
    if options.wants("pipeline_to_store_postgres"):
        from bench.pg_store import pg_database

        n, per = (10, 100) if options.quick else (100, 2000)
        pairs = []
        for _ in range(options.rounds):
            with pg_database() as dsn:
                on_postgres = asyncio.run(_pipeline_to_store(n, per, dsn))
            pairs.append((asyncio.run(_pipeline_to_store(n, per)), on_postgres))
        sqlite_rate = statistics.median(s["events_per_s"] for s, _ in pairs)
        pg_rate = statistics.median(p["events_per_s"] for _, p in pairs)
        yield {
            "bench": "piano",
            "workload": "pipeline_to_store_postgres",
            "threads": n,
            "events": n * per,
            "sqlite_events_per_s": round(sqlite_rate, 1),
            "postgres_events_per_s": round(pg_rate, 1),
            "postgres_vs_sqlite": round(pg_rate / sqlite_rate, 3),
            "order_verified": all(s["order_verified"] and p["order_verified"] for s, p in pairs),
            "load_average": round(os.getloadavg()[0], 2),
            "target": {"min_postgres_events_per_s": 20_000},
            "met": pg_rate >= 20_000,
        }
