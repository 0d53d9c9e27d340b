"""The aiohttp application: static pages, the JSON API and the ``/stream`` WebSocket.

`WebServer` runs on the daemon's event loop inside the `WebSurface` actor (started in its
`init`, stopped in its `terminate`). A stream connection goes: origin check (403 before the
upgrade), upgrade, authentication (``Authorization: Bearer`` on the upgrade, or an `Auth`
frame within `auth_timeout`), then frames until either side closes. Every bad frame is
answered by a `StreamError` naming what was wrong, and the connection carries on; only
authentication failures, a frame above the hard size limit and a client too slow to read are
fatal. Whatever a client does, the server and the other clients carry on.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import structlog
from aiohttp import WSMsgType, web

from actors import ActorRef
from piano.config import WebConfig
from piano.threads import ThreadKey, decide, interrupt
from piano.web._api import Api, ApiError, json_errors
from piano.web._auth import Tokens, access_log, allowed_origin, bearer
from piano.web._client import StreamClient
from piano.web._messages import TIMEOUT, Attach, ClientFrame, Detach, Reply
from piano.web._names import SURFACE
from piano.web._render import highlight_css
from piano.web._stream import encode_control
from schemas import stream as st

__all__ = ["WebServer"]

log = structlog.get_logger("piano.web.access")

STATIC = Path(__file__).parent / "static"
HARD_LIMIT = 16
"""A frame over `max_frame` * this is refused by aiohttp itself, closing the socket (1009)."""

_FRAME_TYPES = frozenset(str(t.__struct_config__.tag) for t in st.ClientFrame.__args__)
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; connect-src 'self'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class FrameError(Exception):
    def __init__(self, code: st.ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code: st.ErrorCode = code
        self.message = message


def decode_frame(data: str | bytes) -> st.ClientFrame:
    """A client frame, or `FrameError` saying whether it was not JSON, of an unknown type, or
    not the shape its type requires (with msgspec's message naming the field)."""
    try:
        raw = msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        raise FrameError("bad_json", f"not valid JSON: {exc}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
        raise FrameError("bad_frame", 'a frame is a JSON object with a string "type"')
    if raw["type"] not in _FRAME_TYPES:
        known = ", ".join(sorted(_FRAME_TYPES))
        raise FrameError("unknown_type", f"unknown frame type {raw['type']!r} (known: {known})")
    try:
        frame: st.ClientFrame = msgspec.convert(raw, st.ClientFrame)
    except msgspec.ValidationError as exc:
        raise FrameError("bad_frame", f"bad {raw['type']!r} frame: {exc}") from None
    return frame


class WebServer:
    """Serves one `WebSurface`; see the module documentation."""

    def __init__(
        self,
        config: WebConfig,
        surface: ActorRef,
        tokens: Tokens,
        api: Api,
        default_agent: str,
        extra_routes: Callable[[web.Application], None] | None = None,
    ) -> None:
        self.config = config
        self.extra_routes = extra_routes
        self.surface = surface
        self.tokens = tokens
        self.api = api
        self.default_agent = config.default_agent or default_agent
        self.accepting = True
        self.runner: web.AppRunner | None = None
        self.port = config.port
        self.connections: set[web.WebSocketResponse] = set()

    def app(self) -> web.Application:
        app = web.Application(
            middlewares=[access_log, json_errors], client_max_size=self.config.max_frame
        )
        app.router.add_get("/", self._index)
        app.router.add_get("/chat", self._page("chat.html"))
        app.router.add_get("/dashboard", self._page("dashboard.html"))
        app.router.add_get("/static/highlight.css", self._highlight_css)
        app.router.add_get("/static/{name}", self._static)
        app.router.add_get("/stream", self._stream)
        self.api.routes(app)
        if self.extra_routes is not None:
            self.extra_routes(app)
        app.on_response_prepare.append(self._headers)
        return app

    async def start(self) -> None:
        self.runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=2.0)
        await self.runner.setup()
        site = web.TCPSite(self.runner, self.config.host, self.config.port)
        await site.start()
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = sockets[0].getsockname()[1]
        log.info("web.listening", host=self.config.host, port=self.port)

    async def close(self) -> None:
        for ws in list(self.connections):
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await ws.close(code=1001, message=b"shutting_down: the server is stopping")
        if self.runner is not None:
            await self.runner.cleanup()

    # -- pages ----------------------------------------------------------------------------------

    async def _headers(self, request: web.Request, response: web.StreamResponse) -> None:
        framed = "frame-ancestors" in response.headers.get("Content-Security-Policy", "")
        for name, value in _SECURITY_HEADERS.items():
            if not (framed and name == "X-Frame-Options"):  # the embed says who may frame it
                response.headers.setdefault(name, value)

    async def _index(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("/chat")

    def _page(self, name: str) -> Any:
        async def page(request: web.Request) -> web.StreamResponse:
            return web.FileResponse(STATIC / name)

        return page

    async def _highlight_css(self, request: web.Request) -> web.StreamResponse:
        return web.Response(text=highlight_css(), content_type="text/css")

    async def _static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        path = STATIC / name
        if "/" in name or name.startswith(".") or not path.is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(path)

    # -- the stream -----------------------------------------------------------------------------

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if not allowed_origin(origin, self.config.host, self.port, self.config.allowed_origins):
            log.warning("web.stream.refused", peer=request.remote, why="origin", origin=origin)
            raise web.HTTPForbidden(text=f"origin {origin} may not open the stream")
        if not self.accepting:
            raise web.HTTPServiceUnavailable(text="the stream is not accepting connections")
        ws = web.WebSocketResponse(
            heartbeat=self.config.heartbeat,
            max_msg_size=self.config.max_frame * HARD_LIMIT,
            compress=False,
        )
        await ws.prepare(request)
        self.connections.add(ws)
        started = time.perf_counter()
        client: StreamClient | None = None
        log.info("web.stream.open", peer=request.remote, origin=origin)
        try:
            token = bearer(request) or await self._auth_frame(ws)
            if token is not None and await self._authorize(ws, token):
                client = StreamClient(ws, request, self.config.client_queue)
                client.token = token
                await self.surface.call(Attach(client), timeout=TIMEOUT)
                await self._serve(ws, client)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.connections.discard(ws)
            if client is not None and self.surface.alive:
                self.surface.cast(Detach(client))
            if not ws.closed:
                with contextlib.suppress(Exception):
                    await ws.close()
            log.info(
                "web.stream.closed",
                peer=request.remote,
                client=client.id if client else None,
                code=ws.close_code,
                why=client.closing if client else None,
                sent=client.sent if client else 0,
                seconds=round(time.perf_counter() - started, 3),
            )
        return ws

    async def _fatal(self, ws: web.WebSocketResponse, code: st.ErrorCode, message: str) -> None:
        await ws.send_frame(
            encode_control(st.StreamError(code=code, message=message, fatal=True)), WSMsgType.TEXT
        )
        await ws.close(code=st.CLOSE_CODES[code], message=f"{code}: {message}".encode()[:120])

    async def _auth_frame(self, ws: web.WebSocketResponse) -> str | None:
        try:
            async with asyncio.timeout(self.config.auth_timeout):
                msg = await ws.receive()
        except TimeoutError:
            await self._fatal(ws, "auth_timeout", "no auth frame in time")
            return None
        if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
            return None
        try:
            frame = decode_frame(msg.data)
        except FrameError as exc:
            await self._fatal(ws, "unauthorized", f"the first frame must be auth ({exc.message})")
            return None
        if not isinstance(frame, st.Auth):
            await self._fatal(ws, "unauthorized", "the first frame must be auth")
            return None
        return frame.token

    async def _authorize(self, ws: web.WebSocketResponse, token: str) -> bool:
        verdict = self.tokens.check(token)
        if verdict == "ok":
            return True
        log.warning("web.stream.refused", why=verdict)
        if verdict == "expired":
            await self._fatal(ws, "token_expired", "this token has expired; use the current one")
        else:
            await self._fatal(ws, "unauthorized", "invalid token")
        return False

    async def _serve(self, ws: web.WebSocketResponse, client: StreamClient) -> None:
        async for msg in ws:
            if client.closing is not None:
                break
            if msg.type == WSMsgType.ERROR:
                log.warning("web.stream.error", client=client.id, error=repr(ws.exception()))
                break
            if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                continue
            data: str | bytes = msg.data
            ref = None
            try:
                if len(data) > self.config.max_frame:
                    raise FrameError(
                        "frame_too_large",
                        f"frame of {len(data)} bytes; the limit is {self.config.max_frame}",
                    )
                frame = decode_frame(data)
                ref = frame.ref
                await self._handle(client, frame)
            except (FrameError, ApiError) as exc:
                self._reply(client, st.StreamError(code=exc.code, message=exc.message, ref=ref))
            except Exception as exc:
                log.warning("web.stream.frame_failed", client=client.id, error=repr(exc))
                self._reply(
                    client, st.StreamError(code="internal", message=f"failed: {exc}", ref=ref)
                )

    def _reply(self, client: StreamClient, payload: st.Payload) -> None:
        self.surface.cast(Reply(client, payload))

    async def _handle(self, client: StreamClient, frame: st.ClientFrame) -> None:
        surface = self.surface
        match frame:
            case st.Auth(token=token):
                verdict = self.tokens.check(token)
                if verdict != "ok":
                    raise FrameError("unauthorized", f"token {verdict}")
                client.token = token
                self._reply(client, st.Ack(of="auth", ref=frame.ref))
            case st.Subscribe() | st.Unsubscribe() | st.Resume() | st.WatchDashboard():
                await surface.call(ClientFrame(client, frame), timeout=TIMEOUT)
            case st.SendMessage():
                await self._message(client, frame)
            case st.Decide(thread_id=thread_id, approval_id=approval_id, decision=decision):
                thread = await self.api.thread(thread_id)
                if not await decide(thread, approval_id, decision, SURFACE):
                    raise FrameError("not_found", f"no pending approval {approval_id!r}")
                self._reply(client, st.Ack(of="decide", ref=frame.ref))
            case st.Interrupt(thread_id=thread_id):
                thread = await self.api.thread(thread_id)
                if not await interrupt(thread):
                    raise FrameError("not_found", "nothing to interrupt")
                self._reply(client, st.Ack(of="interrupt", ref=frame.ref))

    async def _message(self, client: StreamClient, frame: st.SendMessage) -> None:
        if frame.thread_id is not None:
            key = await self.api.known_key(frame.thread_id)
        else:
            key = ThreadKey(SURFACE, frame.conversation, frame.agent or self.default_agent)
        sent = await self.api.send(key, frame.text, frame.user)
        self._reply(client, st.Accepted(**sent, ref=frame.ref))
