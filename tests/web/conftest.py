"""Fixtures for the web surface: a `WebSurface` on a free port, stream clients, and a full core.

- `web`: the surface alone in an ActorSystem (no Codex); tests publish events themselves.
- `web_core`: the daemon's tree in small — the real codex against the fake provider, threads,
  and the web surface under a "surfaces" supervisor — with every event also collected.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import msgspec
import pytest
from aiohttp import ClientSession, ClientWebSocketResponse, WSMsgType

from actors import ActorRef, ActorSystem, Registry
from piano.daemon import SURFACES
from piano.surfaces import deliver
from piano.threads import MemoryDirectory
from piano.web import WEB, WebConfig, child_spec, stream_address
from schemas import events as ev
from schemas import stream as st
from supervisors import ChildSpec, Supervisor
from tests.fakes.responses_provider import CodexDirs, FakeResponsesProvider
from tests.piano.conftest import Events, core_children, fan_out, make_config

TOKEN = "test-token-0123456789"
_decoder = msgspec.json.Decoder(st.Envelope)


class StreamClosed(Exception):
    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"closed {code}: {reason}")
        self.code = code
        self.reason = reason


class Client:
    """A test client of /stream: every envelope received, and ways to wait for one."""

    def __init__(self, ws: ClientWebSocketResponse) -> None:
        self.ws = ws
        self.received: list[st.Envelope] = []

    async def send(self, frame: dict[str, Any] | str | bytes) -> None:
        if isinstance(frame, dict):
            await self.ws.send_str(msgspec.json.encode(frame).decode())
        elif isinstance(frame, bytes):
            await self.ws.send_bytes(frame)
        else:
            await self.ws.send_str(frame)

    async def recv(self, timeout: float = 10) -> st.Envelope:
        msg = await self.ws.receive(timeout=timeout)
        if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
            raise StreamClosed(self.ws.close_code, str(msg.extra or ""))
        envelope = _decoder.decode(msg.data)
        self.received.append(envelope)
        return envelope

    async def until(
        self, predicate: Callable[[st.Envelope], bool], timeout: float = 10
    ) -> st.Envelope:
        async with asyncio.timeout(timeout):
            while True:
                envelope = await self.recv(timeout)
                if predicate(envelope):
                    return envelope

    async def of_type(self, kind: str, timeout: float = 10) -> Any:
        return (await self.until(lambda e: e.type == kind, timeout)).data

    async def closed(self, timeout: float = 10) -> StreamClosed:
        """Read until the server closes; the close code and reason."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    await self.recv(timeout)
        except StreamClosed as closed:
            return closed

    def errors(self) -> list[st.StreamError]:
        return [e.data for e in self.received if isinstance(e.data, st.StreamError)]


@dataclass
class Web:
    system: ActorSystem
    subscriptions: Registry
    directory: MemoryDirectory
    session: ClientSession
    surface_name: str

    @property
    def surface(self) -> ActorRef:
        ref = self.system.whereis(self.surface_name)
        assert ref is not None, "the web surface is not running"
        return ref

    async def base(self) -> str:
        host, port = await stream_address(self.surface)
        return f"http://{host}:{port}"

    def publish(self, event: ev.ThreadEvent) -> None:
        deliver(self.subscriptions, event)

    async def connect(
        self,
        token: str | None = TOKEN,
        *,
        subscribe: str | None = None,
        origin: str | None = None,
        header: bool = True,
    ) -> Client:
        """A stream client, authenticated (header or first frame) and welcomed."""
        headers = {}
        if token is not None and header:
            headers["Authorization"] = f"Bearer {token}"
        if origin is not None:
            headers["Origin"] = origin
        ws = await self.session.ws_connect(f"{await self.base()}/stream", headers=headers)
        client = Client(ws)
        if token is not None and not header:
            await client.send({"type": "auth", "token": token})
        if token is not None:
            await client.of_type("welcome")
        if subscribe is not None:
            await client.send({"type": "subscribe", "thread_id": subscribe})
            await client.of_type("ack")
        return client


def config(**overrides: Any) -> WebConfig:
    return WebConfig(enabled=True, port=0, heartbeat=30.0, **overrides)


@pytest.fixture
def web_options() -> dict[str, Any]:
    return {}


@pytest.fixture
async def web(web_options: dict[str, Any]) -> AsyncIterator[Web]:
    async with ActorSystem() as system, ClientSession() as session:
        subscriptions = Registry(keys="duplicate")
        directory = MemoryDirectory()
        spec = child_spec(
            config(**web_options), subscriptions=subscriptions, directory=directory, token=TOKEN
        )
        await system.spawn(Supervisor([spec]), name="piano")
        yield Web(system, subscriptions, directory, session, WEB)


@dataclass
class WebCore(Web):
    events: Events
    provider: FakeResponsesProvider

    async def thread_id(self, conversation: str = "default") -> str:
        from piano.threads import ThreadKey

        thread_id, _ = await self.directory.thread_for(ThreadKey("web", conversation, "default"))
        return thread_id


@pytest.fixture
async def web_core(dirs: CodexDirs, web_options: dict[str, Any]) -> AsyncIterator[WebCore]:
    async with (
        FakeResponsesProvider() as provider,
        ActorSystem() as system,
        ClientSession() as session,
    ):
        core_config = make_config(dirs, provider)
        events = Events()
        sessions = Registry(keys="unique")
        subscriptions = Registry(keys="duplicate")
        directory = MemoryDirectory()

        publish = fan_out(events, subscriptions)
        web_spec = child_spec(
            config(**web_options), subscriptions=subscriptions, directory=directory, token=TOKEN
        )
        children = [
            *core_children(core_config, directory, publish, sessions),
            ChildSpec(
                SURFACES, start=lambda: Supervisor([web_spec]), type="supervisor", name=SURFACES
            ),
        ]
        await system.spawn(Supervisor(children, max_restarts=10, max_seconds=5), name="piano")
        yield WebCore(system, subscriptions, directory, session, WEB, events, provider)
