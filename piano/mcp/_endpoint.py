"""`McpEndpoint`: the MCP server, served over streamable HTTP on loopback inside the daemon's loop.

The MCP SDK's server is an ASGI app; uvicorn serves it in the daemon's own event loop (no
thread, no second process), on `McpConfig.host` (127.0.0.1), behind thread-token
authentication (`_auth`) and the SDK's DNS-rebinding protection (a request whose ``Host`` is
not 127.0.0.1/localhost gets 421). uvicorn's signal handlers are not installed: the daemon owns
SIGINT/SIGTERM, and uvicorn installs no log handlers of its own: its loggers propagate to the
daemon's, which writes every line as structured JSON (`piano.daemon.configure_logging`).

Stopping is prompt: codex keeps an SSE stream open on the endpoint for as long as it lives, and
uvicorn's graceful shutdown would wait that out and then cancel it with a traceback. So on
stop, every request still waiting for its client is told the client went away
(`_ClosingStreams`): the streams end cleanly at once and the server stops.

`McpAccess` is what the rest of Piano needs to point Codex at the endpoint: its URL (known
once the endpoint has started) and `codex_thread_config(thread_id)`, the per-thread ``config``
to pass in ``thread/start`` and ``thread/resume``. The port chosen on the first start (port 0:
any free one) is kept in `McpAccess` and bound again when the endpoint restarts, so codex
threads configured earlier keep reaching it.

If the HTTP server stops on its own, the actor crashes and its supervisor restarts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Callable, Generator, Mapping
from typing import Any

import structlog
import uvicorn

from actors import Actor, ActorSystem
from piano.mcp._auth import ThreadTokens, require_token
from piano.mcp._tools import build_server
from piano.tools import McpConfig, Notes, Toolbox

__all__ = ["McpAccess", "McpEndpoint"]

log = structlog.get_logger(__name__)

_STOP_GRACE = 3


class McpAccess:
    """How Codex reaches the endpoint: the address and the thread tokens (see module docs)."""

    def __init__(self, config: McpConfig, tokens: ThreadTokens | None = None) -> None:
        self.config = config
        self.tokens = tokens or ThreadTokens()
        self.port: int | None = config.port or None

    @classmethod
    def from_config(cls, config: McpConfig, environ: Mapping[str, str] | None = None) -> McpAccess:
        """With the token key from `config.secret_env` when set (else a random one)."""
        environ = os.environ if environ is None else environ
        if config.secret_env is None:
            return cls(config)
        secret = environ.get(config.secret_env)
        if not secret:
            raise ValueError(f"tools.mcp.secret_env: ${config.secret_env} is not set")
        return cls(config, ThreadTokens(secret.encode()))

    def __repr__(self) -> str:
        return f"McpAccess(host={self.config.host!r}, port={self.port!r})"

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("the MCP endpoint has not started yet")
        return f"http://{self.config.host}:{self.port}{self.config.path}"

    def token(self, thread_id: str) -> str:
        return self.tokens.token(thread_id)

    def codex_thread_config(self, thread_id: str) -> dict[str, Any]:
        """The ``config`` of codex's ``thread/start``/``thread/resume`` for `thread_id`: the
        endpoint as MCP server `server_name`, with the thread's token as its bearer header."""
        config = self.config
        return {
            "mcp_servers": {
                config.server_name: {
                    "url": self.url,
                    "http_headers": {"Authorization": f"Bearer {self.token(thread_id)}"},
                    "default_tools_approval_mode": config.approval_mode,
                    "tool_timeout_sec": config.tool_timeout_sec,
                }
            }
        }


class _ClosingStreams:
    """ASGI middleware: after `close()`, a request waiting for its client sees an
    ``http.disconnect`` (so the SDK's SSE streams end, as if codex had gone away), a response
    left open is finished, and a new request gets 503."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.closing = asyncio.Event()

    def close(self) -> None:
        self.closing.set()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.closing.is_set():
            await send({"type": "http.response.start", "status": 503, "headers": []})
            await send({"type": "http.response.body", "body": b"stopping"})
            return
        state = {"started": False, "finished": False}

        async def receive_until_closed() -> Any:
            if self.closing.is_set():
                return {"type": "http.disconnect"}
            message = asyncio.ensure_future(receive())
            closing = asyncio.ensure_future(self.closing.wait())
            await asyncio.wait({message, closing}, return_when=asyncio.FIRST_COMPLETED)
            closing.cancel()
            if message.done():
                return message.result()
            message.cancel()
            return {"type": "http.disconnect"}

        async def tracked_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                state["started"] = True
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                state["finished"] = True
            await send(message)

        await self.app(scope, receive_until_closed, tracked_send)
        if state["started"] and not state["finished"] and self.closing.is_set():
            await send({"type": "http.response.body", "body": b"", "more_body": False})


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers (the daemon owns the signals)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class McpEndpoint(Actor):
    """Serves the MCP tools for the life of the actor; see the module documentation."""

    def __init__(
        self,
        access: McpAccess,
        toolbox: Callable[[ActorSystem], Toolbox],
        *,
        notes: Notes | None = None,
    ) -> None:
        self.access = access
        self.make_toolbox = toolbox
        self.notes = notes
        self.server: _Server | None = None
        self.streams: _ClosingStreams | None = None
        self.task: asyncio.Task[None] | None = None
        self.stopping = False

    def describe(self) -> str:
        return f"MCP endpoint {self.access.url if self.access.port else '(starting)'}"

    async def init(self) -> None:
        self.trap_exits = True
        config = self.access.config
        mcp = build_server(
            self.make_toolbox(self.system), self.access.tokens, config.server_name, notes=self.notes
        )
        app = mcp.streamable_http_app(streamable_http_path=config.path, host=config.host)
        sock = socket.socket(socket.AF_INET6 if ":" in config.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((config.host, self.access.port or 0))
        except OSError:
            sock.close()
            raise
        self.access.port = sock.getsockname()[1]
        self.streams = _ClosingStreams(require_token(app, self.access.tokens))
        server = _Server(
            uvicorn.Config(
                self.streams,
                log_config=None,
                log_level="warning",
                lifespan="on",
                timeout_graceful_shutdown=_STOP_GRACE,
                access_log=False,
            )
        )
        server.config.load()
        server.lifespan = server.config.lifespan_class(server.config)
        try:
            await server.startup(sockets=[sock])
        except SystemExit:
            sock.close()
            raise RuntimeError("the MCP app failed to start (lifespan startup)") from None
        self.server = server
        self.task = asyncio.get_running_loop().create_task(self._serve(server, sock))
        self.task.add_done_callback(self._served)
        log.info("mcp.listening", url=self.access.url)

    async def _serve(self, server: _Server, sock: socket.socket) -> None:
        await server.main_loop()
        await server.shutdown(sockets=[sock])

    def _served(self, task: asyncio.Task[None]) -> None:
        if not self.stopping:
            self.ref.send(("http_server_stopped", None if task.cancelled() else task.exception()))

    async def handle_info(self, message: Any) -> None:
        match message:
            case ("http_server_stopped", error):
                raise RuntimeError(f"the MCP HTTP server stopped on its own: {error!r}")
        await super().handle_info(message)

    async def terminate(self, reason: object) -> None:
        self.stopping = True
        server, task = self.server, self.task
        if server is None or task is None:
            return
        if self.streams is not None:
            self.streams.close()
        server.should_exit = True
        done, _ = await asyncio.wait({task}, timeout=_STOP_GRACE + 2.0)
        if not done:
            server.force_exit = True
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
