"""The browser's guard proxy: every destination is vetted as web fetch vets it. Loopback,
private, link-local and metadata addresses are refused (403 with the reason) unless allowed,
names are resolved once and refused if any answer points inside, CONNECT tunnels and plain HTTP
alike; and real Chromium sessions go through it, so a page cannot reach inside either."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import structlog
from aiohttp import web

from actors import ActorSystem, get_state
from piano.tools import BROWSERS, Toolbox, browser_name
from piano.tools.browser import ReadText, Visit
from piano.tools.browser._proxy import GuardProxy, ProxyStatistics
from piano.tools.webfetch import AddressPolicy, HostResolver, StaticResolver, SystemResolver
from supervisors import DynamicSupervisor
from tests.test_webfetch import LocalSite
from tests.tools.conftest import require_binaries, tools_config

pytestmark = pytest.mark.anyio

LOOPBACK_ALLOWED = AddressPolicy(["127.0.0.1/32"])


class Proxy(GuardProxy):
    """A started proxy that knows its port."""

    port = 0


async def _proxy(policy: AddressPolicy, resolver: HostResolver | None = None) -> Proxy:
    proxy = Proxy(policy, resolver or SystemResolver())
    proxy.port = await proxy.start()
    return proxy


@pytest.fixture
async def page() -> AsyncIterator[LocalSite]:
    local = LocalSite()
    local.page("/", "<html><head><title>Inside</title></head><body>secret</body></html>")
    # 127.0.0.2 is loopback too, but outside the tests' allowed 127.0.0.1/32
    local.page("/embeds", '<html><body><img src="http://127.0.0.2:8999/x"><p>host page</p></body>')
    async with local:
        yield local


@pytest.fixture
async def browsers() -> AsyncIterator[ActorSystem]:
    """An actor system with the browser sessions' supervisor (Chromium must be installed)."""
    require_binaries()
    async with ActorSystem() as system:
        await system.spawn(DynamicSupervisor(), name=BROWSERS)
        yield system


async def _get(proxy: Proxy, url: str) -> tuple[int, str, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, proxy=f"http://127.0.0.1:{proxy.port}") as response,
    ):
        return response.status, await response.text(), response.headers.get("Connection", "")


async def _raw(proxy: Proxy, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(request)
    async with asyncio.timeout(10):
        answer = await reader.read()
    writer.close()
    return answer


async def test_plain_http_to_an_allowed_address_is_forwarded_one_request_per_connection(
    page: LocalSite,
) -> None:
    proxy = await _proxy(LOOPBACK_ALLOWED)
    try:
        status, body, connection = await _get(proxy, page.url("/"))
    finally:
        proxy.close()
    assert (status, "secret" in body, connection.lower()) == (200, True, "close")
    assert page.hits == ["/"]
    assert proxy.statistics().connections == 1


async def test_a_request_body_is_forwarded_while_the_response_is_awaited() -> None:
    async def echo(request: web.Request) -> web.Response:
        return web.Response(text=(await request.text()).upper())

    app = web.Application()
    app.router.add_post("/echo", echo)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    proxy = await _proxy(LOOPBACK_ALLOWED)
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"http://127.0.0.1:{port}/echo",
                data=b"x" * 100_000,
                proxy=f"http://127.0.0.1:{proxy.port}",
                timeout=aiohttp.ClientTimeout(total=10),
            ) as response,
        ):
            status, body = response.status, await response.text()
    finally:
        proxy.close()
        await runner.cleanup()
    assert (status, body) == (200, "X" * 100_000)


async def test_loopback_is_refused_by_default_and_the_server_never_sees_the_request(
    page: LocalSite,
) -> None:
    proxy = await _proxy(AddressPolicy())
    try:
        with structlog.testing.capture_logs() as logs:
            status, body, _ = await _get(proxy, page.url("/"))
    finally:
        proxy.close()
    assert status == 403
    assert "127.0.0.1" in body
    assert "loopback" in body
    assert page.hits == []
    assert proxy.statistics().blocked == 1
    assert [entry["host"] for entry in logs if entry["event"] == "browser.blocked"] == ["127.0.0.1"]


@pytest.mark.parametrize(
    ("host", "answers"),
    [
        ("inside.test", ["10.0.0.5"]),
        ("metadata.test", ["169.254.169.254"]),
        ("rebind.test", ["93.184.216.34", "127.0.0.1"]),  # one inside answer refuses the name
        ("mapped.test", ["::ffff:192.168.1.1"]),
    ],
)
async def test_a_name_whose_answers_point_inside_is_refused(host: str, answers: list[str]) -> None:
    proxy = await _proxy(AddressPolicy(), StaticResolver({host: answers}))
    try:
        status, body, _ = await _get(proxy, f"http://{host}/")
    finally:
        proxy.close()
    assert status == 403, body
    assert host in body
    assert proxy.statistics() == ProxyStatistics(connections=0, blocked=1, failed=0)


async def test_connect_tunnels_to_an_allowed_address_and_is_refused_elsewhere(
    page: LocalSite,
) -> None:
    proxy = await _proxy(LOOPBACK_ALLOWED)
    try:
        tunnel = await _raw(
            proxy,
            f"CONNECT 127.0.0.1:{page.port} HTTP/1.1\r\n\r\n"
            f"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode(),
        )
        refused = await _raw(proxy, b"CONNECT 10.1.2.3:443 HTTP/1.1\r\n\r\n")
        garbage = await _raw(proxy, b"garbage\r\n\r\n")
        unreachable = await _raw(proxy, b"CONNECT 127.0.0.1:1 HTTP/1.1\r\n\r\n")
    finally:
        proxy.close()
    assert tunnel.startswith(b"HTTP/1.1 200 Connection Established\r\n\r\nHTTP/1.1 200 OK")
    assert b"secret" in tunnel
    assert refused.startswith(b"HTTP/1.1 403 Forbidden")
    assert b"10.1.2.3" in refused
    assert garbage.startswith(b"HTTP/1.1 400 Bad Request")
    assert unreachable.startswith(b"HTTP/1.1 502 Bad Gateway")
    assert proxy.statistics() == ProxyStatistics(connections=1, blocked=1, failed=2)


async def test_a_browser_session_cannot_reach_loopback_unless_it_is_allowed(
    tmp_path: Path, page: LocalSite, browsers: ActorSystem
) -> None:
    denied = Toolbox(browsers, tools_config(tmp_path, allowed_networks=[]))
    await denied.browse("thread-a", Visit(page.url("/")))
    shown = await denied.browse("thread-a", ReadText())
    session = browsers.whereis(browser_name("thread-a"))
    assert session is not None
    blocked = (await get_state(session))["proxy"].statistics().blocked
    assert page.hits == []

    allowed = Toolbox(browsers, tools_config(tmp_path))
    await allowed.browse("thread-b", Visit(page.url("/")))
    text = await allowed.browse("thread-b", ReadText())

    assert "may not connect to 127.0.0.1" in shown
    assert blocked >= 1
    assert text == "secret"
    assert page.hits == ["/"]


async def test_a_page_cannot_load_a_subresource_from_a_refused_address(
    tmp_path: Path, page: LocalSite, browsers: ActorSystem
) -> None:
    box = Toolbox(browsers, tools_config(tmp_path))
    with structlog.testing.capture_logs() as logs:
        await box.browse("thread-a", Visit(page.url("/embeds")))
        text = await box.browse("thread-a", ReadText())
    assert text == "host page"
    assert page.hits == ["/embeds"]
    assert [entry["host"] for entry in logs if entry["event"] == "browser.blocked"] == ["127.0.0.2"]


async def test_a_handed_over_fd_that_is_no_stream_socket_is_closed_and_the_proxy_serves_on(
    page: LocalSite,
) -> None:
    """What the sandbox's bridge hands over is untrusted: a pipe or a datagram socket is
    dropped (and closed: the pipe then has no reader left), and the connection handed over
    after it is served as before."""
    proxy = GuardProxy(LOOPBACK_ALLOWED, SystemResolver())
    daemon_end, sandbox_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    await proxy.start_passed(daemon_end)
    pipe_read, pipe_write = os.pipe()
    datagram, datagram_peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    ours, theirs = socket.socketpair()
    try:
        socket.send_fds(sandbox_end, [b"c"], [pipe_read, datagram.fileno()])
        socket.send_fds(sandbox_end, [b"c"], [theirs.fileno()])
        for sent in (pipe_read, datagram.fileno(), theirs.fileno()):
            os.close(sent)  # the proxy holds its own copies now
        datagram.detach()
        theirs.detach()
        reader, writer = await asyncio.open_connection(sock=ours)
        writer.write(f"GET {page.url('/')} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        async with asyncio.timeout(30):
            answer = await reader.read()
        writer.close()
        # The messages are handled in order: the pipe's copy was closed before the answer.
        with pytest.raises(BrokenPipeError):
            os.write(pipe_write, b"x")
    finally:
        proxy.close()
        sandbox_end.close()
        datagram_peer.close()
        os.close(pipe_write)
    assert answer.split(b"\r\n")[0].endswith(b"200 OK")
    assert b"secret" in answer
