"""`GuardProxy`: a browser session's only way out, an HTTP proxy that vets every destination.

In a browser session the proxy listens on no address at all: it serves the connections the
sandbox's bridge hands it over a socket pair (`start_passed`), one per connection Chromium opens
to ``127.0.0.1:3128`` inside its network namespace (see `_sandbox`). Nothing else can reach it
(there is no path or port to find), and it is Chromium's only way out.
Chromium is started with ``--proxy-server`` pointing there and
``--proxy-bypass-list=<-loopback>`` (without it Chromium would try loopback directly), so
every request of the page, its frames, scripts, images and WebSockets names its host here:
``CONNECT host:port`` for HTTPS and WebSockets, an absolute URL for plain HTTP. The proxy applies
web fetch's address policy (`piano.tools.webfetch`): loopback, private, link-local, metadata and
other non-global addresses are refused unless `allowed_networks` lists them. A host name is
resolved once, every answer is vetted, and the proxy connects to exactly a vetted address, so
DNS rebinding cannot slip an inside address in between. A refused destination gets ``403
Forbidden`` with the reason (logged as ``browser.blocked``); one that cannot be reached gets
``502``.

Plain HTTP is forwarded one request per connection (``Connection: close`` to the server and
back to Chromium), so a kept-alive connection never carries a request for another host to a
server vetted for the first. Bytes only ever flow to vetted addresses.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import structlog

from piano.tools.webfetch import AddressPolicy, BlockedAddressError, HostResolver, VettingResolver

__all__ = ["GuardProxy", "ProxyStatistics"]

log = structlog.get_logger(__name__)

_HEAD_LIMIT = 64 * 1024
_HOP_BY_HOP = ("connection:", "proxy-connection:", "keep-alive:", "proxy-authorization:")


@dataclass(frozen=True, slots=True)
class ProxyStatistics:
    connections: int
    """Destinations connected to."""
    blocked: int
    """Destinations refused by the address policy."""
    failed: int
    """Requests that were malformed or whose destination could not be reached."""


class _Refused(Exception):
    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _split_authority(authority: str) -> tuple[str, int]:
    host, _, port = authority.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise _Refused("400 Bad Request", f"not a host:port: {authority!r}")
    return host.strip("[]"), int(port)


def _without_hop_by_hop(lines: list[str]) -> list[str]:
    return [line for line in lines if line and not line.lower().startswith(_HOP_BY_HOP)]


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()


async def _download(
    server: asyncio.StreamReader, client: asyncio.StreamWriter, close_head: bool
) -> None:
    if close_head:
        # The response's head goes on with ``Connection: close``, so that Chromium opens a new
        # proxy connection (vetted anew) for its next request.
        head = await server.readuntil(b"\r\n\r\n")
        status, *headers = head.decode("latin-1").split("\r\n")
        lines = [status, *_without_hop_by_hop(headers), "Connection: close", "", ""]
        client.write("\r\n".join(lines).encode("latin-1"))
    await _pipe(server, client)


async def _relay(
    client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    server: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    *,
    close_head: bool = False,
) -> None:
    """Copy bytes both ways until either side closes (the caller then closes both). The
    request's body flows while the response is awaited, so an upload cannot deadlock."""
    tasks = [
        asyncio.ensure_future(_pipe(client[0], server[1])),
        asyncio.ensure_future(_download(server[0], client[1], close_head)),
    ]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class GuardProxy:
    """The proxy; `start_passed` serves the connections passed to it over a unix socket,
    `start` listens on a free 127.0.0.1 port."""

    def __init__(
        self,
        policy: AddressPolicy,
        resolver: HostResolver,
        *,
        connect_timeout: float = 15.0,
        label: str = "",
    ) -> None:
        self.policy = policy
        self.resolver = VettingResolver(resolver, policy)
        self.connect_timeout = connect_timeout
        self.label = label
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._channel: socket.socket | None = None
        self._tasks: set[asyncio.Future[None]] = set()
        self._connections = self._blocked = self._failed = 0

    async def start(self) -> int:
        """Listen on a free port of 127.0.0.1 and return it (any local user can connect)."""
        self._loop = asyncio.get_running_loop()
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, limit=_HEAD_LIMIT)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start_passed(self, channel: socket.socket) -> None:
        """Serve every connected socket that arrives over the unix socket `channel` (as
        ``SCM_RIGHTS``, one or more per message), until the other end closes it or `close`."""
        self._loop = loop = asyncio.get_running_loop()
        channel.setblocking(False)
        self._channel = channel
        loop.add_reader(channel, self._receive, channel)

    def _receive(self, channel: socket.socket) -> None:
        try:
            message, fds, _, _ = socket.recv_fds(channel, 64, 16)
        except BlockingIOError:
            return
        except OSError:
            message, fds = b"", []
        if not message and not fds:  # the other end is gone
            self._stop_receiving()
            return
        for fd in fds:
            try:
                connection = socket.socket(fileno=fd)
            except OSError:  # not a socket: only a compromised sandbox would send that
                connection = None
            if connection is None or connection.type != socket.SOCK_STREAM:
                log.warning("browser.bad_handover", session=self.label, fd_kind="not a stream")
                if connection is not None:
                    connection.close()
                else:
                    os.close(fd)
                continue
            task = asyncio.ensure_future(self._serve_passed(connection))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _serve_passed(self, connection: socket.socket) -> None:
        try:
            reader, writer = await asyncio.open_connection(sock=connection, limit=_HEAD_LIMIT)
        except OSError:
            connection.close()
            return
        await self._serve(reader, writer)

    def _stop_receiving(self) -> None:
        channel, self._channel = self._channel, None
        if channel is not None and self._loop is not None:
            self._loop.remove_reader(channel)
            channel.close()

    def close(self) -> None:
        """Stop listening and cut every connection still open. Callable from any thread (a
        browser session closes its proxy from its own); a no-op once the loop has closed."""
        loop = self._loop
        if loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._close()
        else:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._close)

    def _close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        self._stop_receiving()
        for writer in list(self._writers):
            writer.close()

    def statistics(self) -> ProxyStatistics:
        return ProxyStatistics(self._connections, self._blocked, self._failed)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        upstream: asyncio.StreamWriter | None = None
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.connect_timeout)
            request, *headers = head.decode("latin-1").split("\r\n")
            try:
                method, target, version = request.split(" ", 2)
            except ValueError:
                raise _Refused(
                    "400 Bad Request", f"not an HTTP request: {request[:100]!r}"
                ) from None
            if method == "CONNECT":
                host, port = _split_authority(target)
                up_reader, upstream = await self._open(host, port)
                writer.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            else:
                url = urlsplit(target)
                if url.scheme != "http" or not url.hostname:
                    raise _Refused("400 Bad Request", f"not an absolute http URL: {target!r}")
                up_reader, upstream = await self._open(url.hostname, url.port or 80)
                path = (url.path or "/") + (f"?{url.query}" if url.query else "")
                forwarded = [f"{method} {path} {version}", *_without_hop_by_hop(headers)]
                upstream.write(
                    "\r\n".join([*forwarded, "Connection: close", "", ""]).encode("latin-1")
                )
            await _relay((reader, writer), (up_reader, upstream), close_head=method != "CONNECT")
        except _Refused as refused:
            if not refused.status.startswith("403"):
                self._failed += 1
            body = f"{refused.reason}\n".encode()
            writer.write(
                f"HTTP/1.1 {refused.status}\r\nContent-Type: text/plain; charset=utf-8\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, OSError):
            self._failed += 1  # a malformed head, a peer gone, a timeout (an OSError)
        except asyncio.CancelledError:
            # The loop is closing. Nothing awaits this connection's task, and ending it
            # cancelled makes Python 3.11's stream server log "Exception in callback".
            pass
        finally:
            self._writers.discard(writer)
            for stream in (writer, upstream):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()

    async def _open(
        self, host: str, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Connect to a vetted address of `host`; `_Refused` if none is allowed or reachable."""
        try:
            if self.policy.check_literal_host(host):
                addresses = [host]
            else:
                answers = await self.resolver.resolve(host, port, socket.AF_UNSPEC)
                addresses = [answer["host"] for answer in answers]
        except BlockedAddressError as exc:
            self._blocked += 1
            log.warning("browser.blocked", session=self.label, host=host, reason=str(exc))
            raise _Refused("403 Forbidden", f"Piano's browser may not connect to {exc}") from exc
        except OSError as exc:
            raise _Refused("502 Bad Gateway", f"cannot resolve {host}: {exc}") from exc
        error: Exception | None = None
        for address in addresses:
            try:
                connection = await asyncio.wait_for(
                    asyncio.open_connection(address, port, limit=_HEAD_LIMIT), self.connect_timeout
                )
            except (OSError, TimeoutError) as exc:
                error = exc
                continue
            self._connections += 1
            return connection
        raise _Refused("502 Bad Gateway", f"cannot connect to {host}:{port}: {error!r}")
