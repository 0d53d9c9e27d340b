"""`MetricsServer`: ``GET /health`` and ``GET /metrics`` for the daemon, on its own port.

- ``/health`` answers ``200 {"ok": true, ...}`` while the application's tree, the store writer
  and the Codex client are all running, else ``503`` with ``ok: false`` and which of them is
  not (a restarting codex shows as ``"codex": false`` until it is back). Unauthenticated, so a
  systemd watchdog, a load balancer or ``curl`` can ask; it says nothing secret.
- ``/metrics`` is the Prometheus text exposition (`prometheus_client`), read at scrape time:
  live, spawned and exited actors; each named actor's mailbox length and messages handled; the
  restart count of every supervised child (``piano_child_restarts{supervisor,child}``); the
  event pipeline's accepted, acknowledged, failed and in-flight events; live conversation
  threads; whether codex is up. No metric carries a message's text or a secret.

The server listens on ``[metrics] host:port`` (loopback by default; port 0 picks a free one,
logged as ``metrics.listening``). Scrapes only read: a supervisor that does not answer within a
second is left out of that scrape rather than holding it up.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from actors import Actor, ActorRef, ActorSystem, info
from actors.pipeline import statistics as pipeline_statistics
from piano.codex import CODEX
from piano.events import EVENTS
from piano.store import STORE
from piano.threads import THREAD_SUPERVISOR
from supervisors import ChildSpec, which_children

if TYPE_CHECKING:
    from piano.config import MetricsConfig

__all__ = ["METRICS", "MetricsServer", "child_spec"]

METRICS = "metrics"
"""The server's registered name."""
CALL_TIMEOUT = 1.0


class _Families(Collector):
    """A collector that yields families gathered before the scrape (collectors are
    synchronous; the supervisors are asked asynchronously)."""

    def __init__(self, families: list[Any]) -> None:
        self.families = families

    def collect(self) -> Iterable[Any]:
        return self.families


async def _children(ref: ActorRef, label: str, out: list[tuple[str, str, int]]) -> None:
    """(supervisor, child, restarts) for every child under `ref`, depth first."""
    try:
        children = await asyncio.wait_for(which_children(ref), CALL_TIMEOUT)
    except Exception:
        return
    for child in children:
        child_label = ":".join(map(str, child.id)) if isinstance(child.id, tuple) else str(child.id)
        out.append((label, child_label, child.restarts))
        if child.type == "supervisor" and child.ref is not None:
            await _children(child.ref, child_label, out)


async def collect_families(system: ActorSystem, root: str) -> list[Any]:
    """Every metric family of one scrape (see the module documentation)."""
    stats = system.statistics()
    families: list[Any] = []
    alive = GaugeMetricFamily("piano_actors", "Live actors.")
    alive.add_metric([], stats.alive)
    spawned = CounterMetricFamily("piano_actors_spawned", "Actors spawned since start.")
    spawned.add_metric([], stats.spawned)
    exited = CounterMetricFamily("piano_actors_exited", "Actors exited since start.")
    exited.add_metric([], stats.exited)
    mailbox = GaugeMetricFamily(
        "piano_actor_mailbox_length", "Messages waiting, per named actor.", labels=["actor"]
    )
    handled = CounterMetricFamily(
        "piano_actor_messages_handled", "Messages handled, per named actor.", labels=["actor"]
    )
    for ref in system.processes():
        facts = info(ref)
        if facts.name is not None:
            mailbox.add_metric([facts.name], facts.mailbox_length)
            handled.add_metric([facts.name], facts.messages_handled)
    families += [alive, spawned, exited, mailbox, handled]
    restarts = CounterMetricFamily(
        "piano_child_restarts",
        "Restarts of each supervised child by its supervisor.",
        labels=["supervisor", "child"],
    )
    top = system.whereis(root)
    if top is not None:
        rows: list[tuple[str, str, int]] = []
        await _children(top, root, rows)
        for supervisor, child, count in rows:
            restarts.add_metric([supervisor, child], count)
    families.append(restarts)
    codex = GaugeMetricFamily("piano_codex_up", "1 while the Codex client runs.")
    codex.add_metric([], 1 if system.whereis(CODEX) is not None else 0)
    families.append(codex)
    threads = GaugeMetricFamily("piano_threads_live", "Live conversation actors.")
    thread_supervisor = system.whereis(THREAD_SUPERVISOR)
    live = 0
    if thread_supervisor is not None:
        with contextlib.suppress(Exception):
            live = len(await asyncio.wait_for(which_children(thread_supervisor), CALL_TIMEOUT))
    threads.add_metric([], live)
    families.append(threads)
    pipeline = system.whereis(EVENTS)
    if pipeline is not None:
        with contextlib.suppress(Exception):
            counters = pipeline_statistics(pipeline)
            for name, value, kind in (
                ("accepted", counters.accepted, CounterMetricFamily),
                ("acked", counters.acked, CounterMetricFamily),
                ("failed", counters.failed, CounterMetricFamily),
                ("in_flight", counters.in_flight, GaugeMetricFamily),
            ):
                family = kind(f"piano_events_{name}", f"Thread events {name} by the pipeline.")
                family.add_metric([], value)
                families.append(family)
    return families


def health(system: ActorSystem, root: str, started: float) -> dict[str, Any]:
    """The health document (see the module documentation)."""
    parts = {
        "tree": system.whereis(root) is not None,
        "store": system.whereis(STORE) is not None,
        "codex": system.whereis(CODEX) is not None,
    }
    return {
        "ok": all(parts.values()),
        **parts,
        "actors": system.statistics().alive,
        "uptime": round(time.monotonic() - started, 3),
    }


class MetricsServer(Actor):
    """Serves ``/health`` and ``/metrics``; see the module documentation."""

    def __init__(self, config: MetricsConfig, root: str = "piano") -> None:
        self.config = config
        self.root = root
        self.runner: web.AppRunner | None = None
        self.port: int | None = None
        self.started = time.monotonic()

    def describe(self) -> str:
        return f"health and metrics on http://{self.config.host}:{self.port}"

    async def init(self) -> None:
        self.trap_exits = True
        app = web.Application()
        app.router.add_get("/health", self._health)
        app.router.add_get("/metrics", self._metrics)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        sock = socket.create_server((self.config.host, self.config.port))
        self.port = sock.getsockname()[1]
        await web.SockSite(self.runner, sock).start()
        self.log.info("metrics.listening", host=self.config.host, port=self.port)

    async def terminate(self, reason: object) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    def handle_call(self, message: Any, caller: Any) -> Any:
        if message == "port":
            return self.port
        return super().handle_call(message, caller)

    async def _health(self, request: web.Request) -> web.Response:
        document = health(self.system, self.root, self.started)
        return web.json_response(document, status=200 if document["ok"] else 503)

    async def _metrics(self, request: web.Request) -> web.Response:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Families(await collect_families(self.system, self.root)))
        return web.Response(
            body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )


def child_spec(config: MetricsConfig, root: str = "piano") -> ChildSpec:
    """The server's child spec for the daemon's tree."""
    return ChildSpec(METRICS, start=lambda: MetricsServer(config, root), name=METRICS)
