"""WebFetcher: fetch one URL with aiohttp under the address guard and limits, then extract it.

Each hop of a redirect chain is requested with ``allow_redirects=False`` and vetted before any
connection is made: the scheme must be http(s), an address-literal host is checked directly, and
a host name is resolved by the ``VettingResolver`` inside the connector, which only returns
vetted addresses for the socket to connect to. Environment proxies are ignored and no cookies
are kept. The body is read in chunks and reading stops once ``max_bytes`` is exceeded; one
overall deadline (``timeout``) covers every hop, the body and extraction (an abandoned
extraction thread finishes in the background; its input is bounded by ``max_bytes``).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiohttp
import structlog
from yarl import URL

from piano._fs import UnsafePath, save_into

from ._config import FetchConfig, OutputFormat
from ._extract import ExtractedPage, PageOutcome, extract_page
from ._guard import BlockedAddressError
from ._resolve import VettingResolver
from ._result import FetchErrorKind, FetchResult

log = structlog.get_logger(__name__)

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_TEXT_TYPES = frozenset({"text/plain", "text/markdown"})
_UNTYPED = frozenset({None, "application/octet-stream", "binary/octet-stream"})
_ACCEPT = "text/html,application/xhtml+xml;q=0.9,text/plain;q=0.8,*/*;q=0.5"
_CHUNK = 64 * 1024
_SAVE_DIR = "webfetch"


class _Failure(Exception):
    def __init__(self, kind: FetchErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(slots=True)
class _Attempt:
    url: str
    current: str
    redirects: int = 0
    status: int | None = None
    content_type: str | None = None
    page: ExtractedPage | None = None

    def result(self, config: FetchConfig, **fields: Any) -> FetchResult:
        page = self.page or ExtractedPage(PageOutcome.EMPTY)
        return FetchResult(
            url=self.url,
            final_url=self.current,
            status=self.status,
            content_type=self.content_type,
            title=page.title,
            author=page.author,
            date=page.date,
            sitename=page.sitename,
            description=page.description,
            canonical_url=page.canonical_url,
            format=config.output_format.value,
            redirects=self.redirects,
            **fields,
        )


def _media_type(header: str | None) -> tuple[str | None, str | None]:
    if not header:
        return None, None
    media, _, params = header.partition(";")
    match = re.search(r"charset\s*=\s*\"?([\w.:-]+)", params, re.IGNORECASE)
    return media.strip().lower() or None, match.group(1) if match else None


def _sniff(first_chunk: bytes) -> str | None:
    head = first_chunk[:1024].lower()
    if b"<html" in head or b"<!doctype html" in head:
        return "text/html"
    sample = first_chunk[:4096]
    if b"\x00" in sample or not sample.strip():
        return None
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(sample) - 3:
            return None
    return "text/plain"


def _loggable(url: str) -> str:
    """The URL without query, fragment or credentials, which may carry secrets."""
    bare = url.split("#", 1)[0].split("?", 1)[0]
    try:
        return str(URL(bare).with_user(None)) if URL(bare).host else bare
    except (ValueError, TypeError):
        return "<unparseable url>"


def _decode(body: bytes, charset: str | None) -> str:
    try:
        return body.decode(charset or "utf-8", errors="replace")
    except LookupError:
        return body.decode("utf-8", errors="replace")


class WebFetcher:
    """Fetches web pages as Markdown or text; use as ``async with WebFetcher(config) as f``."""

    def __init__(self, config: FetchConfig) -> None:
        self.config = config
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        """Open the HTTP session (its connector resolves only through the guard)."""
        if self._session is not None:
            raise RuntimeError("WebFetcher already started")
        connector = aiohttp.TCPConnector(
            resolver=VettingResolver(self.config.resolver, self.config.policy),
            use_dns_cache=False,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            trust_env=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=aiohttp.ClientTimeout(total=None),
            headers={"User-Agent": self.config.user_agent, "Accept": _ACCEPT},
        )

    async def close(self) -> None:
        """Close the HTTP session; idempotent."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def fetch(self, url: str, *, workspace: Path | None = None) -> FetchResult:
        """Fetch ``url`` and extract it; content longer than the inline limit goes to a file
        under ``workspace`` (which must exist) with a preview returned. Never raises for what
        the page or network does; raises for misuse (not started, missing workspace)."""
        if self._session is None:
            raise RuntimeError("WebFetcher is not started")
        if workspace is not None and not await asyncio.to_thread(workspace.is_dir):
            raise ValueError(f"workspace {workspace} is not a directory")
        attempt = _Attempt(url=url, current=url)
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.config.timeout):
                result = await self._fetch(self._session, attempt, workspace)
        except TimeoutError:
            result = attempt.result(
                self.config,
                error_kind=FetchErrorKind.TIMEOUT,
                error_message=f"no complete answer within {self.config.timeout:g}s",
            )
        except _Failure as failure:
            result = attempt.result(
                self.config, error_kind=failure.kind, error_message=failure.message
            )
        log.info(
            "webfetch.done",
            url=_loggable(url),
            final_url=_loggable(result.final_url),
            status=result.status,
            error_kind=result.error_kind,
            chars=result.content_chars,
            saved=result.saved_path is not None,
            elapsed_ms=round((time.monotonic() - started) * 1000, 1),
        )
        return result

    def _vet_url(self, url: URL) -> None:
        if not url.scheme:
            raise _Failure(FetchErrorKind.INVALID_URL, f"{url} is not an absolute URL")
        if url.scheme not in ("http", "https"):
            raise _Failure(FetchErrorKind.BLOCKED_SCHEME, f"scheme {url.scheme!r} is not http(s)")
        host = url.raw_host
        if not host:
            raise _Failure(FetchErrorKind.INVALID_URL, f"no host in {url}")
        try:
            self.config.policy.check_literal_host(host)
        except BlockedAddressError as exc:
            raise _Failure(FetchErrorKind.BLOCKED_ADDRESS, str(exc)) from None

    async def _fetch(
        self, session: aiohttp.ClientSession, attempt: _Attempt, workspace: Path | None
    ) -> FetchResult:
        try:
            current = URL(attempt.url)
        except (ValueError, TypeError) as exc:
            raise _Failure(FetchErrorKind.INVALID_URL, f"cannot parse URL: {exc}") from None
        while True:
            attempt.current = str(current)
            self._vet_url(current)
            try:
                async with session.get(current, allow_redirects=False) as resp:
                    attempt.status = resp.status
                    location = resp.headers.get("Location")
                    if resp.status in _REDIRECT_STATUSES and location:
                        current = self._next_hop(attempt, current, location)
                        continue
                    return await self._handle(resp, attempt, workspace)
            except BlockedAddressError as exc:
                raise _Failure(FetchErrorKind.BLOCKED_ADDRESS, str(exc)) from None
            except aiohttp.ClientConnectorDNSError as exc:
                raise _Failure(FetchErrorKind.DNS_ERROR, str(exc)) from None
            except aiohttp.InvalidURL as exc:
                raise _Failure(FetchErrorKind.INVALID_URL, str(exc)) from None
            except aiohttp.ClientError as exc:
                message = f"{type(exc).__name__}: {exc}"
                raise _Failure(FetchErrorKind.CONNECTION_ERROR, message) from None

    def _next_hop(self, attempt: _Attempt, current: URL, location: str) -> URL:
        if attempt.redirects >= self.config.max_redirects:
            raise _Failure(
                FetchErrorKind.TOO_MANY_REDIRECTS,
                f"more than {self.config.max_redirects} redirects (next: {location})",
            )
        attempt.redirects += 1
        try:
            return current.join(URL(location))
        except (ValueError, TypeError) as exc:
            message = f"bad redirect {location!r}: {exc}"
            raise _Failure(FetchErrorKind.INVALID_URL, message) from None

    async def _read_capped(
        self, resp: aiohttp.ClientResponse, media: str | None
    ) -> tuple[bytes, str]:
        """Read the body up to ``max_bytes``; an untyped body is sniffed from its first chunk
        and abandoned unless it looks like HTML or text. Returns the body and its media type."""
        limit = self.config.max_bytes
        if resp.content_length is not None and resp.content_length > limit:
            raise _Failure(
                FetchErrorKind.TOO_LARGE,
                f"declared {resp.content_length} bytes, limit is {limit}",
            )
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.content.iter_chunked(_CHUNK):
            if media in _UNTYPED:
                media = _sniff(chunk)
                if media is None:
                    raise _Failure(FetchErrorKind.NOT_HTML, "the body is neither HTML nor text")
            size += len(chunk)
            if size > limit:
                raise _Failure(FetchErrorKind.TOO_LARGE, f"body exceeds the {limit}-byte limit")
            chunks.append(chunk)
        return b"".join(chunks), media or "text/plain"

    async def _handle(
        self, resp: aiohttp.ClientResponse, attempt: _Attempt, workspace: Path | None
    ) -> FetchResult:
        header = resp.headers.get(aiohttp.hdrs.CONTENT_TYPE)
        media, charset = _media_type(header)
        attempt.content_type = media
        if not 200 <= resp.status < 300:
            raise _Failure(FetchErrorKind.HTTP_ERROR, f"HTTP {resp.status} {resp.reason or ''}")
        if media not in _HTML_TYPES | _TEXT_TYPES | _UNTYPED:
            raise _Failure(FetchErrorKind.NOT_HTML, f"content type {media} is not a web page")
        body, media = await self._read_capped(resp, media)
        if media in _TEXT_TYPES:
            content = _decode(body, charset).strip()
            if not content:
                raise _Failure(FetchErrorKind.EMPTY, "the document is empty")
        else:
            html: str | bytes = _decode(body, charset) if charset else body
            try:
                page = await asyncio.to_thread(
                    extract_page, html, attempt.current, self.config.output_format
                )
            except Exception as exc:
                log.warning(
                    "webfetch.extract_failed", url=_loggable(attempt.current), exc_info=True
                )
                message = f"extraction failed: {type(exc).__name__}"
                raise _Failure(FetchErrorKind.UNEXTRACTABLE, message) from None
            attempt.page = page
            if page.outcome is PageOutcome.EMPTY:
                raise _Failure(FetchErrorKind.EMPTY, "the page has no text")
            if page.outcome is PageOutcome.UNEXTRACTABLE:
                raise _Failure(
                    FetchErrorKind.UNEXTRACTABLE,
                    "no readable main text found (the page may need JavaScript)",
                )
            content = page.content
        return await self._deliver(attempt, content, workspace)

    async def _deliver(
        self, attempt: _Attempt, content: str, workspace: Path | None
    ) -> FetchResult:
        config = self.config
        saved: str | None = None
        inline = content
        if len(content) > config.inline_limit:
            inline = content[: config.inline_limit]
            if workspace is not None:
                try:
                    path = await asyncio.to_thread(
                        _save, workspace, attempt.current, content, config
                    )
                except UnsafePath as exc:  # a planted symlink: refused, the page stays inline
                    log.warning("webfetch.save_refused", reason=str(exc))
                else:
                    saved = str(path)
                    inline = content[: config.preview_chars]
        return attempt.result(
            config,
            content=inline,
            content_chars=len(content),
            saved_path=saved,
            truncated=len(inline) < len(content),
        )


def _save(workspace: Path, url: str, content: str, config: FetchConfig) -> Path:
    """Save a long page as ``<workspace>/webfetch/<host>-<digest>.<md|txt>``, never following
    a symlink the agent planted there (`piano._fs.save_into`)."""
    host = re.sub(r"[^A-Za-z0-9.-]+", "_", URL(url).host or "page")[:60].lstrip(".") or "page"
    digest = hashlib.sha256(f"{url}\n{content}".encode()).hexdigest()[:12]
    suffix = "md" if config.output_format is OutputFormat.MARKDOWN else "txt"
    return save_into(workspace, _SAVE_DIR, f"{host}-{digest}.{suffix}", content.encode())
