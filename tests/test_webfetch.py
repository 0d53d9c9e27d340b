"""The web-fetch tool against a real aiohttp server on 127.0.0.1: extraction with metadata,
empty/unextractable/non-HTML pages, size, time and redirect limits, large results saved to the
workspace. ``LocalSite`` is shared with tests/test_webfetch_guard.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import Self

import anyio
import pytest
from aiohttp import web

from piano.tools.webfetch import (
    FetchConfig,
    FetchErrorKind,
    FetchResult,
    OutputFormat,
    WebFetcher,
)

DATA = Path(__file__).parent / "data" / "webfetch"
ARTICLE = (DATA / "article.html").read_bytes()
LOCAL = ("127.0.0.1/32",)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class LocalSite:
    """A real HTTP server on 127.0.0.1 with a route table; ``release`` frees waiting handlers."""

    def __init__(self) -> None:
        self.app = web.Application()
        self.release = asyncio.Event()
        self.entered = asyncio.Event()
        self.hits: list[str] = []
        self.port = 0
        self._runner: web.AppRunner | None = None

    def route(self, path: str, handler: Handler) -> None:
        async def logged(request: web.Request) -> web.StreamResponse:
            self.hits.append(request.path_qs)
            return await handler(request)

        self.app.router.add_get(path, logged)

    def page(self, path: str, body: bytes | str, content_type: str | None = "text/html") -> None:
        data = body.encode() if isinstance(body, str) else body

        async def handler(_request: web.Request) -> web.StreamResponse:
            headers = {"Content-Type": content_type} if content_type else {}
            response = web.Response(body=data, headers=headers)
            if content_type is None:
                response.headers.popall("Content-Type", None)
            return response

        self.route(path, handler)

    def redirect(self, path: str, location: str, status: int = 302) -> None:
        async def handler(_request: web.Request) -> web.StreamResponse:
            return web.Response(status=status, headers={"Location": location})

        self.route(path, handler)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def __aenter__(self) -> Self:
        self._runner = web.AppRunner(self.app, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release.set()
        if self._runner is not None:
            await self._runner.cleanup()


def large_article(copies: int) -> bytes:
    """The fixture article with its paragraphs repeated: a long page with real structure."""
    start, end = ARTICLE.index(b"<h2>Why the docks?</h2>"), ARTICLE.index(b"</article>")
    return ARTICLE[:start] + ARTICLE[start:end] * copies + ARTICLE[end:]


async def _slow_headers(site: LocalSite) -> web.StreamResponse:
    site.entered.set()
    await site.release.wait()
    return web.Response(text="<html><body><p>late</p></body></html>", content_type="text/html")


async def _slow_body(site: LocalSite, request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/html"})
    await response.prepare(request)
    await response.write(b"<html><body><p>The first part arrives at once")
    site.entered.set()
    await site.release.wait()
    await response.write(b" and the rest never does.</p></body></html>")
    return response


async def _huge(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/html"})
    await response.prepare(request)
    await response.write(b"<html><body>")
    paragraph = b"<p>" + b"Endless filler text for a page without end. " * 40 + b"</p>\n"
    for _ in range(2_000):
        await response.write(paragraph)
    return response


@pytest.fixture
async def site() -> AsyncIterator[LocalSite]:
    local = LocalSite()
    local.page("/article", ARTICLE, "text/html; charset=utf-8")
    local.page("/large", large_article(40))
    local.page("/empty", b"")
    local.page("/blank", "<!DOCTYPE html><html><head></head><body>\n</body></html>")
    local.page(
        "/app",
        "<html><head><title>Dashboard</title></head><body><div id='root'></div>"
        "<script src='/bundle.js'></script></body></html>",
    )
    local.page("/binary", bytes(range(256)) * 8, "application/zip")
    local.page("/image.png", b"\x89PNG\r\n\x1a\n" + bytes(512), "image/png")
    local.page("/untyped-binary", b"\x00\x01\x02" * 100, "application/octet-stream")
    local.page(
        "/untyped-html",
        "<!DOCTYPE html><html><body><p>Served as octet-stream.</p></body></html>",
        "application/octet-stream",
    )
    local.page("/fragment", "<p>Only a fragment of HTML, served as a page.</p>")
    local.page("/notes.txt", "Plain notes.\nSecond line.\n", "text/plain; charset=utf-8")
    local.page(
        "/latin1",
        "<html><body><p>Caf\xe9 cr\xe8me</p></body></html>".encode("latin-1"),
        "text/html; charset=iso-8859-1",
    )
    local.page("/declared-huge", b"x" * 300_000)
    local.route("/huge", _huge)
    local.route("/slow-headers", lambda _r: _slow_headers(local))
    local.route("/slow-body", lambda r: _slow_body(local, r))

    async def missing(_request: web.Request) -> web.StreamResponse:
        return web.Response(status=404, text="<html><body><p>Not found</p></body></html>")

    local.route("/missing", missing)
    for n in range(1, 8):
        local.redirect(f"/r/{n}", f"/r/{n - 1}" if n > 1 else "/article")
    local.redirect("/loop", "/loop", status=301)

    async def to_absolute(request: web.Request) -> web.StreamResponse:
        location = str(request.url.with_path("/article"))
        return web.Response(status=307, headers={"Location": location})

    local.route("/to-absolute", to_absolute)
    async with local:
        yield local


def config(**overrides: object) -> FetchConfig:
    values: dict[str, object] = {"allowed_networks": LOCAL, "timeout": 10.0}
    values.update(overrides)
    return FetchConfig(**values)  # type: ignore[arg-type]


async def fetch(url: str, workspace: Path | None = None, **overrides: object) -> FetchResult:
    async with WebFetcher(config(**overrides)) as fetcher:
        return await fetcher.fetch(url, workspace=workspace)


@pytest.mark.anyio
async def test_an_article_comes_back_as_markdown_without_boilerplate_and_with_its_metadata(
    site: LocalSite,
) -> None:
    result = await fetch(site.url("/article"))
    assert result.ok, result.error_message
    assert result.status == 200
    assert result.content_type == "text/html"
    assert result.title == "Harbour Town Turns Its Old Ferry Docks Into a Tidal Energy Lab"
    assert result.author == "Marta Okonkwo-Reyes"
    assert result.date == "2026-03-09"
    assert result.sitename == "The Coastal Ledger"
    assert result.canonical_url == "https://news.coastal-ledger.example/energy/2026/03/tidal-docks"
    assert result.final_url == site.url("/article")
    assert "## Why the docks?" in result.content
    assert "- A fourth turbine will be added in the summer" in result.content
    assert "41 megawatt hours" in result.content
    for boilerplate in (
        "cookies",
        "ADVERTISEMENT",
        "SPONSORED",
        "Subscribe",
        "seadog77",
        "Most read",
        "Related stories",
        "All rights reserved",
        "Share on",
    ):
        assert boilerplate not in result.content, boilerplate
    assert result.saved_path is None
    assert not result.truncated
    assert result.content_chars == len(result.content)


@pytest.mark.anyio
async def test_text_format_has_no_markdown_markup(site: LocalSite) -> None:
    result = await fetch(site.url("/article"), output_format=OutputFormat.TEXT)
    assert result.ok
    assert result.format == "text"
    assert "Why the docks?" in result.content
    assert "## " not in result.content
    assert "# Harbour Town" not in result.content


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/empty", FetchErrorKind.EMPTY),
        ("/blank", FetchErrorKind.EMPTY),
        ("/app", FetchErrorKind.UNEXTRACTABLE),
        ("/binary", FetchErrorKind.NOT_HTML),
        ("/image.png", FetchErrorKind.NOT_HTML),
        ("/untyped-binary", FetchErrorKind.NOT_HTML),
        ("/missing", FetchErrorKind.HTTP_ERROR),
    ],
)
async def test_pages_without_readable_content_give_a_clear_result_not_a_crash(
    site: LocalSite, path: str, kind: FetchErrorKind
) -> None:
    result = await fetch(site.url(path))
    assert result.error_kind is kind
    assert result.error_message
    assert result.content == ""
    assert not result.ok


@pytest.mark.anyio
async def test_an_unextractable_page_still_reports_its_title(site: LocalSite) -> None:
    result = await fetch(site.url("/app"))
    assert result.error_kind is FetchErrorKind.UNEXTRACTABLE
    assert result.title == "Dashboard"


@pytest.mark.anyio
async def test_a_non_html_content_type_is_refused_before_the_body_is_read(site: LocalSite) -> None:
    result = await fetch(site.url("/binary"))
    assert result.error_kind is FetchErrorKind.NOT_HTML
    assert result.content_type == "application/zip"
    assert result.status == 200


@pytest.mark.anyio
async def test_plain_text_and_html_served_as_octet_stream_are_accepted_and_charsets_honoured(
    site: LocalSite,
) -> None:
    text = await fetch(site.url("/notes.txt"))
    assert text.ok
    assert text.content == "Plain notes.\nSecond line."
    untyped = await fetch(site.url("/untyped-html"))
    assert untyped.ok
    assert "Served as octet-stream." in untyped.content
    fragment = await fetch(site.url("/fragment"))
    assert fragment.ok, fragment.error_message
    assert fragment.content == "Only a fragment of HTML, served as a page."
    latin1 = await fetch(site.url("/latin1"))
    assert latin1.ok
    assert "Caf\u00e9 cr\u00e8me" in latin1.content


@pytest.mark.anyio
async def test_a_body_larger_than_max_bytes_is_cut_off_while_streaming(site: LocalSite) -> None:
    result = await fetch(site.url("/huge"), max_bytes=64 * 1024)
    assert result.error_kind is FetchErrorKind.TOO_LARGE
    assert "65536" in (result.error_message or "")


@pytest.mark.anyio
async def test_a_declared_length_over_the_limit_is_refused_before_reading(
    site: LocalSite,
) -> None:
    result = await fetch(site.url("/declared-huge"), max_bytes=100_000)
    assert result.error_kind is FetchErrorKind.TOO_LARGE
    assert "declared 300000" in (result.error_message or "")


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["/slow-headers", "/slow-body"])
async def test_a_page_that_never_finishes_times_out(site: LocalSite, path: str) -> None:
    with anyio.fail_after(10):
        result = await fetch(site.url(path), timeout=0.3)
    assert site.entered.is_set()
    assert result.error_kind is FetchErrorKind.TIMEOUT
    assert result.final_url == site.url(path)


@pytest.mark.anyio
async def test_redirects_are_followed_hop_by_hop_up_to_the_limit(site: LocalSite) -> None:
    result = await fetch(site.url("/r/5"), max_redirects=5)
    assert result.ok
    assert result.redirects == 5
    assert result.final_url == site.url("/article")
    assert result.url == site.url("/r/5")
    assert site.hits == ["/r/5", "/r/4", "/r/3", "/r/2", "/r/1", "/article"]
    absolute = await fetch(site.url("/to-absolute"))
    assert absolute.ok
    assert absolute.final_url == site.url("/article")


@pytest.mark.anyio
async def test_a_redirect_chain_longer_than_the_limit_is_stopped(site: LocalSite) -> None:
    result = await fetch(site.url("/r/5"), max_redirects=3)
    assert result.error_kind is FetchErrorKind.TOO_MANY_REDIRECTS
    assert result.redirects == 3
    assert site.hits == ["/r/5", "/r/4", "/r/3", "/r/2"]
    looping = await fetch(site.url("/loop"), max_redirects=4)
    assert looping.error_kind is FetchErrorKind.TOO_MANY_REDIRECTS


@pytest.mark.anyio
async def test_a_large_article_is_written_to_the_workspace_and_a_preview_returned(
    site: LocalSite, tmp_path: Path
) -> None:
    result = await fetch(site.url("/large"), tmp_path, inline_limit=4_000, preview_chars=500)
    assert result.ok
    assert result.truncated
    assert result.saved_path is not None
    saved = Path(result.saved_path)
    assert saved.parent == Path(await anyio.Path(tmp_path).resolve()) / "webfetch"
    assert saved.suffix == ".md"
    full = await anyio.Path(saved).read_text(encoding="utf-8")
    assert len(full) == result.content_chars > 4_000
    assert len(result.content) == 500
    assert full.startswith(result.content)
    assert full.count("## What comes next") == 40
    assert result.title == "Harbour Town Turns Its Old Ferry Docks Into a Tidal Energy Lab"


@pytest.mark.anyio
async def test_a_large_article_without_a_workspace_is_cut_to_the_inline_limit(
    site: LocalSite,
) -> None:
    result = await fetch(site.url("/large"), inline_limit=4_000, preview_chars=500)
    assert result.ok
    assert result.truncated
    assert result.saved_path is None
    assert len(result.content) == 4_000 < result.content_chars


@pytest.mark.anyio
async def test_a_missing_workspace_and_an_unstarted_fetcher_are_misuse_and_raise(
    site: LocalSite, tmp_path: Path
) -> None:
    with pytest.raises(RuntimeError, match="not started"):
        await WebFetcher(config()).fetch(site.url("/article"))
    async with WebFetcher(config()) as fetcher:
        with pytest.raises(ValueError, match="not a directory"):
            await fetcher.fetch(site.url("/article"), workspace=tmp_path / "absent")


@pytest.mark.parametrize(
    "overrides",
    [
        {"max_bytes": 0},
        {"timeout": 0},
        {"max_redirects": -1},
        {"allowed_networks": ("not-a-network",)},
        {"allowed_networks": ("10.0.0.1/8",)},
        {"output_format": "pdf"},
        {"inline_limit": 100, "preview_chars": 200},
        {"user_agent": "bad\r\nHeader: injected"},
        {"resolver": object()},
    ],
)
def test_misconfiguration_raises_at_construction(overrides: dict[str, object]) -> None:
    with pytest.raises((ValueError, TypeError)):
        FetchConfig(**overrides)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_an_unreachable_port_is_a_connection_error_result() -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    await listener.aclose()
    result = await fetch(f"http://127.0.0.1:{port}/")
    assert result.error_kind is FetchErrorKind.CONNECTION_ERROR


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("not a url", FetchErrorKind.INVALID_URL),
        ("/relative/path", FetchErrorKind.INVALID_URL),
        ("http://[::1", FetchErrorKind.INVALID_URL),
        ("http://", FetchErrorKind.INVALID_URL),
        ("ftp://127.0.0.1/file", FetchErrorKind.BLOCKED_SCHEME),
        ("file:///etc/passwd", FetchErrorKind.BLOCKED_SCHEME),
    ],
)
async def test_malformed_and_non_http_urls_are_results(url: str, kind: FetchErrorKind) -> None:
    result = await fetch(url)
    assert result.error_kind is kind
