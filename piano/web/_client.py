"""One stream connection: its subscriptions and a bounded queue drained by a writer task.

The surface never waits for a client: it puts encoded frames on the client's queue
(`push`), and the client's own writer task sends them. When a client reads too slowly its
queue fills and the next `push` fails; the surface then `drop`s it with a reason, so one slow
client costs the others nothing. Dropping cancels the writer, then tries (for a few seconds)
to send the error frame and a close frame with that reason before cutting the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools

import structlog
from aiohttp import WSMsgType, web

from piano.web._stream import encode_control
from schemas.stream import ALL_THREADS, CLOSE_CODES, StreamError

__all__ = ["StreamClient"]

log = structlog.get_logger("piano.web.access")
_ids = itertools.count(1)

CLOSE_GRACE = 5.0
"""Seconds a dropped client gets to take its error and close frames."""


class StreamClient:
    """A connected, authenticated stream client; see the module documentation."""

    def __init__(self, ws: web.WebSocketResponse, request: web.Request, bound: int) -> None:
        self.id = next(_ids)
        self.ws = ws
        self.request = request
        self.peer = request.remote
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(bound)
        self.threads: set[str] = set()
        self.dashboard = False
        self.sent = 0
        self.token = ""
        self.closing: str | None = None
        self.writer: asyncio.Task[None] | None = None

    def wants(self, thread_id: str) -> bool:
        threads = self.threads
        return ALL_THREADS in threads or thread_id in threads

    def start(self) -> None:
        self.writer = asyncio.create_task(self._write(), name=f"web-client-{self.id}")

    def push(self, frame: bytes) -> bool:
        """Queue a frame; False when the queue is full (the caller drops the client)."""
        if self.closing is not None:
            return True
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            return False
        return True

    async def _write(self) -> None:
        queue, ws = self.queue, self.ws
        while True:
            frame = await queue.get()
            await ws.send_frame(frame, WSMsgType.TEXT)
            self.sent += 1

    def drop(self, error: StreamError) -> asyncio.Task[None] | None:
        """Stop sending events and close with `error` (sent first when the client reads)."""
        if self.closing is not None:
            return None
        self.closing = error.code
        if self.writer is not None:
            self.writer.cancel()
        log.warning(
            "web.stream.dropped", client=self.id, peer=self.peer, code=error.code, why=error.message
        )
        return asyncio.create_task(self._close(error), name=f"web-close-{self.id}")

    async def _close(self, error: StreamError) -> None:
        if self.writer is not None:
            with contextlib.suppress(BaseException):
                await self.writer
        code = CLOSE_CODES.get(error.code, 1008)
        reason = f"{error.code}: {error.message}".encode()[:120]
        try:
            async with asyncio.timeout(CLOSE_GRACE):
                await self.ws.send_frame(encode_control(error), WSMsgType.TEXT)
                await self.ws.close(code=code, message=reason)
        except (TimeoutError, ConnectionError, RuntimeError):
            transport = self.request.transport
            if transport is not None:
                transport.abort()
