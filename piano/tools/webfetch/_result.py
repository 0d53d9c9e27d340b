"""FetchResult: what a fetch returns. Anything the page causes is a result, not an exception."""

from __future__ import annotations

import enum

import msgspec


class FetchErrorKind(enum.StrEnum):
    """Why a fetch produced no content."""

    INVALID_URL = "invalid_url"
    BLOCKED_SCHEME = "blocked_scheme"
    BLOCKED_ADDRESS = "blocked_address"
    DNS_ERROR = "dns_error"
    CONNECTION_ERROR = "connection_error"
    TIMEOUT = "timeout"
    TOO_MANY_REDIRECTS = "too_many_redirects"
    HTTP_ERROR = "http_error"
    TOO_LARGE = "too_large"
    NOT_HTML = "not_html"
    EMPTY = "empty"
    UNEXTRACTABLE = "unextractable"


class FetchResult(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of fetching one URL.

    ``content`` is the extracted Markdown or text, or, when ``saved_path`` is set, a preview of
    it (``truncated`` is then True and the full content is in the file). On failure
    ``error_kind``/``error_message`` say why and ``content`` is empty. ``final_url`` is the last
    URL requested (after redirects); ``canonical_url`` is what the page declares about itself.
    """

    url: str
    final_url: str
    status: int | None = None
    content_type: str | None = None
    title: str | None = None
    author: str | None = None
    date: str | None = None
    sitename: str | None = None
    description: str | None = None
    canonical_url: str | None = None
    format: str = "markdown"
    content: str = ""
    content_chars: int = 0
    saved_path: str | None = None
    truncated: bool = False
    redirects: int = 0
    error_kind: FetchErrorKind | None = None
    error_message: str | None = None

    @property
    def ok(self) -> bool:
        """True when the page was fetched and content extracted."""
        return self.error_kind is None
