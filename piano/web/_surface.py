"""`WebSurface`: the actor behind the web surface (pages, JSON API and event stream).

It subscribes to every thread (`ALL_THREADS`) and, for each event, updates its in-memory
view of the thread (for snapshots), numbers and encodes the event once (`Stream`) and puts the
frame on the queue of every client subscribed to that thread. It owns the aiohttp server,
started in `init` on the daemon's loop and stopped in `terminate`. A crash restarts it under
the surfaces supervisor with a new stream name: reconnecting clients then get a snapshot.

It answers the frozen messages of `piano.web._messages`; its owner's operations are the
functions there, exported by `piano.web`: `stream_address` -> (host, port), `stream_stats` ->
`StreamStats`, `rotate_token` -> the new token, `accept_streams` (refuse new stream
connections with 503, for maintenance), and `drop_clients` -> how many were closed (code 1012;
they reconnect and resume).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web

from actors import Caller, Registry
from piano.commands import Commands
from piano.config import PriceConfig, WebConfig
from piano.media import Media
from piano.store import StoreLocation
from piano.surfaces import ALL_THREADS, Surface, subscribe
from piano.threads import ThreadDirectory, ThreadKey
from piano.web._api import Api
from piano.web._auth import Tokens
from piano.web._client import StreamClient
from piano.web._dashboard import Observer
from piano.web._embed import Embed
from piano.web._messages import (
    AcceptStreams,
    Attach,
    ClientFrame,
    Detach,
    DropClients,
    GetActivity,
    GetAddress,
    GetKey,
    GetStats,
    GetViews,
    NameThread,
    Reply,
    RotateToken,
)
from piano.web._server import WebServer
from piano.web._sse import add_sse_routes, token_check
from piano.web._stream import Stream, encode_control
from piano.web._view import ThreadViews
from schemas import events as ev
from schemas import stream as st
from schemas.alerts import Alert

log = structlog.get_logger(__name__)

__all__ = ["WebSurface"]


class WebSurface(Surface):
    """The web surface; see the module documentation."""

    def __init__(
        self,
        config: WebConfig,
        subscriptions: Registry,
        directory: ThreadDirectory,
        *,
        default_agent: str = "default",
        store_path: str | StoreLocation | None = None,
        root: str = "piano",
        token: str | None = None,
        media: Media | None = None,
        clock: Callable[[], float] = time.time,
        tokens_path: str | None = None,
        commands: Commands | None = None,
        prices: Mapping[str, PriceConfig] | None = None,
    ) -> None:
        self.commands = commands
        self.prices = prices
        self.config = config
        self.media = media
        self.subscriptions = subscriptions
        self.directory = directory
        self.default_agent = default_agent
        self.store_path = store_path
        self.root = root
        self.clock = clock
        self.tokens = Tokens(
            token or os.environ.get(config.token_env, "") or "-",
            clock=clock,
            path=Path(tokens_path) if tokens_path else None,
        )
        self._has_token = bool(token or os.environ.get(config.token_env))
        self.stream = Stream(config.replay_buffer)
        self.views = ThreadViews(config.max_threads, config.max_interactions)
        self.keys: dict[str, ThreadKey] = {}
        """Each thread's conversation, so snapshots name threads any surface opened."""
        self.naming: set[str] = set()
        """Threads whose conversation is being looked up."""
        self.api: Api | None = None
        self.clients: dict[int, StreamClient] = {}
        self.dropped = 0
        self.dashboard: st.Dashboard | None = None
        self.server: WebServer | None = None
        self.observer: Observer | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._closing: set[asyncio.Task[None]] = set()
        self._rate = (time.monotonic(), 0)
        self.tokens_total = 0
        self.thread_events: dict[str, int] = {}
        """Events per thread since the last dashboard (its per-conversation activity)."""

    def describe(self) -> str:
        port = self.server.port if self.server else self.config.port
        return (
            f"http://{self.config.host}:{port}, {len(self.clients)} clients, "
            f"seq {self.stream.seq}, {self.dropped} dropped"
        )

    def format_status(self, state: dict[str, Any]) -> dict[str, Any]:
        return {**state, "tokens": "<redacted>"}

    async def init(self) -> None:
        if not self._has_token:
            raise ValueError(
                f"the web surface needs an access token: set the environment variable "
                f"{self.config.token_env}"
            )
        self.trap_exits = True
        self.observer = Observer(self.system, self.root)
        api = self.api = Api(
            self.system,
            self.ref,
            self.tokens,
            self.directory,
            self.store_path,
            self.config.default_agent or self.default_agent,
            self.config.rotation_grace,
            self.observer,
            self.media,
            (self.config.host, self.config.port),
            self.commands,
            self.prices,
        )
        default_agent = self.config.default_agent or self.default_agent
        self.server = WebServer(
            self.config,
            self.ref,
            self.tokens,
            api,
            default_agent,
            extra_routes=lambda app: self._routes(app, api, default_agent),
        )
        await self.server.start()
        subscribe(self.subscriptions, ALL_THREADS, self.ref)
        self._ticker = asyncio.create_task(self._tick(), name="web-dashboard")

    def _routes(self, app: web.Application, api: Api, default_agent: str) -> None:
        add_sse_routes(
            app,
            system=self.system,
            subscriptions=self.subscriptions,
            directory=self.directory,
            default_agent=default_agent,
            check_token=token_check(self.tokens),
        )
        embed = self.config.embed
        token = os.environ.get(embed.token_env, "")
        if not token:
            return
        if self.tokens.check(token) != "invalid":
            log.error(
                "web.embed_refused",
                why=f"${embed.token_env} must differ from the web token; the embed is off",
            )
            return
        Embed(self.config, api, token, embed.agent or default_agent).routes(app)

    async def terminate(self, reason: object) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
        for client in self.clients.values():
            if client.writer is not None:
                client.writer.cancel()
        if self.server is not None:
            await self.server.close()

    # -- events ---------------------------------------------------------------------------------

    def handle_info(self, message: Any) -> Any:
        match message:
            case ("dashboard", st.Dashboard() as dashboard):
                self.dashboard = dashboard
                frame = encode_control(dashboard)
                for client in list(self.clients.values()):
                    if client.dashboard:
                        self._push(client, frame)
            case "tick":
                for client in list(self.clients.values()):
                    if self.tokens.check(client.token) == "expired":
                        self._drop(client, "token_expired", "the token has expired")
            case _:
                return super().handle_info(message)
        return None

    def on_event(self, message: ev.ThreadEvent) -> None:
        self._forward(message)

    def alert(self, alert: Alert) -> None:
        """Every stream client holds the web token, so each is the owner: tell them all."""
        frame = encode_control(st.Alerted(alert=alert))
        for client in list(self.clients.values()):
            self._push(client, frame)

    def _forward(self, event: ev.ThreadEvent) -> None:
        self.views.apply(event)
        if isinstance(event, ev.TokenUsage):
            self.tokens_total += event.total_tokens
        self.thread_events[event.thread_id] = self.thread_events.get(event.thread_id, 0) + 1
        thread_id = event.thread_id
        if thread_id not in self.keys and thread_id not in self.naming and self.api is not None:
            self.naming.add(thread_id)
            self._background(self._look_up_conversation(self.api, thread_id))
        frame = self.stream.append(event)
        slow = [
            client
            for client in self.clients.values()
            if client.wants(thread_id) and not client.push(frame)
        ]
        for client in slow:
            self._drop(
                client, "too_slow", f"more than {self.config.client_queue} frames were waiting"
            )

    def _push(self, client: StreamClient, frame: bytes) -> None:
        if not client.push(frame):
            self._drop(
                client, "too_slow", f"more than {self.config.client_queue} frames were waiting"
            )

    def _drop(self, client: StreamClient, code: st.ErrorCode, message: str) -> None:
        if self.clients.pop(client.id, None) is None:
            return
        self.dropped += 1
        task = client.drop(st.StreamError(code=code, message=message, fatal=True))
        if task is not None:
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _look_up_conversation(self, api: Api, thread_id: str) -> None:
        """Look up the conversation of a thread another surface opened (the store, else the
        live threads) and record it, so snapshots say which conversation it is."""
        try:
            key = await api.known_key(thread_id)
        except Exception as exc:
            log.warning("web.thread_unnamed", thread=thread_id, error=repr(exc))
            return
        finally:
            self.naming.discard(thread_id)
        self.ref.cast(NameThread(thread_id, key))

    # -- calls ----------------------------------------------------------------------------------

    async def handle_call(self, message: Any, caller: Caller) -> Any:
        match message:
            case Attach(client=client):
                self.clients[client.id] = client
                client.start()
                self._push(
                    client, encode_control(st.Welcome(stream=self.stream.name, seq=self.stream.seq))
                )
                return None
            case ClientFrame(client=client, frame=frame):
                if client.id in self.clients:
                    self._frame(client, frame)
                return None
            case GetViews(thread_id=thread_id):
                return self.views.snapshot([thread_id])
            case GetKey(thread_id=thread_id):
                return self.keys.get(thread_id)
            case GetStats():
                return self._stats()
            case GetActivity():
                return self._activity(self.stream.seq, consume=False)
            case GetAddress():
                assert self.server is not None
                return self.config.host, self.server.port
            case RotateToken(grace=grace, token=token):
                return self.tokens.rotate(
                    self.config.rotation_grace if grace is None else grace, token
                )
            case AcceptStreams(accepting=accepting):
                assert self.server is not None
                self.server.accepting = accepting
                return None
            case DropClients(reason=reason):
                clients = list(self.clients.values())
                for client in clients:
                    self._drop(client, "dropped", reason)
                return len(clients)
        return await super().handle_call(message, caller)

    def handle_cast(self, message: Any) -> Any:
        match message:
            case Detach(client=client):
                self.clients.pop(client.id, None)
                if client.writer is not None:
                    client.writer.cancel()
            case Reply(client=client, payload=payload):
                if client.id in self.clients:
                    self._push(client, encode_control(payload))
            case NameThread(thread_id=thread_id, key=key):
                self.keys[thread_id] = key
                self.views.name(thread_id, key.surface, key.conversation, key.agent)
            case _:
                return super().handle_cast(message)
        return None

    def _frame(self, client: StreamClient, frame: st.ClientFrame) -> None:
        match frame:
            case st.Subscribe(thread_id=thread_id, snapshot=snapshot):
                client.threads.add(thread_id)
                if snapshot:
                    self._snapshot(client, "subscribed", [thread_id])
            case st.Unsubscribe(thread_id=thread_id):
                client.threads.discard(thread_id)
            case st.Resume(stream=name, last_seq=last_seq):
                self._resume(client, name, last_seq)
            case st.WatchDashboard(on=on):
                client.dashboard = on
                if on:
                    if self.dashboard is not None:
                        self._push(client, encode_control(self.dashboard))
                    self._wake.set()
        self._push(client, encode_control(st.Ack(of=_tag(frame), ref=frame.ref)))

    def _snapshot(self, client: StreamClient, reason: Any, threads: list[str]) -> None:
        payload = st.Snapshot(
            stream=self.stream.name,
            seq=self.stream.seq,
            reason=reason,
            threads=self.views.snapshot(threads),
        )
        self._push(client, encode_control(payload))

    def _resume(self, client: StreamClient, name: str, last_seq: int) -> None:
        if name != self.stream.name:
            self._snapshot(client, "new_stream", sorted(client.threads))
            return
        missed = self.stream.since(last_seq)
        wanted = (
            None if missed is None else [frame for _, tid, frame in missed if client.wants(tid)]
        )
        room = client.queue.maxsize - client.queue.qsize() - 2
        if wanted is None or len(wanted) > room:
            self._snapshot(client, "gap", sorted(client.threads))
            return
        for frame in wanted:
            client.push(frame)
        resumed = st.Resumed(after=last_seq, seq=self.stream.seq, replayed=len(wanted))
        self._push(client, encode_control(resumed))

    def _stats(self) -> st.StreamStats:
        now, seq = time.monotonic(), self.stream.seq
        then, before = self._rate
        self._rate = (now, seq)
        return st.StreamStats(
            stream=self.stream.name,
            seq=seq,
            oldest_seq=self.stream.oldest_seq,
            buffered=self.stream.buffered,
            clients=len(self.clients),
            dropped=self.dropped,
            events_per_second=round((seq - before) / (now - then), 1) if now > then else 0.0,
        )

    async def _tick(self) -> None:
        observer = self.observer
        assert observer is not None
        while True:
            try:
                async with asyncio.timeout(self.config.dashboard_interval):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            self.ref.send("tick")
            if any(client.dashboard for client in self.clients.values()):
                stats = self._stats()
                dashboard = await observer.collect(stats, self._activity(stats.seq))
                self.ref.send(("dashboard", dashboard))

    def _activity(self, events_total: int, *, consume: bool = True) -> st.Activity:
        """Turns running, tokens so far and each conversation's events since the last stream
        frame: the one producer of `Activity`, for the frames (which `consume` the counts) and
        for `GET /api/dashboard` (which only reads them, so a snapshot taken between two frames
        takes nothing from the next one)."""
        counts = self.thread_events
        if consume:
            self.thread_events = {}
        threads: dict[str, int] = {}
        for thread_id, count in counts.items():
            key = self.keys.get(thread_id)
            label = f"{key.surface}:{key.conversation}" if key else thread_id[:12]
            threads[label] = threads.get(label, 0) + count
        return st.Activity(
            turns_running=self.views.running(),
            tokens_total=self.tokens_total,
            events_total=events_total,
            threads=threads,
        )


def _tag(frame: Any) -> str:
    return str(frame.__struct_config__.tag)
