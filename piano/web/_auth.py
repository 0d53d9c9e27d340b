"""Access to the web surface: tokens, browser origins and the access log.

- **Tokens.** A request carries ``Authorization: Bearer <token>``; a stream client may instead
  send an `Auth` frame first. Every candidate is compared with every valid token in constant
  time (`hmac.compare_digest`, no early exit), so timing says nothing about which or how much
  matched. `Tokens.rotate` installs a new token and keeps the previous one valid for a grace
  period, then it expires: a client using it is told ``token_expired``, not just refused.
- **Origins.** A WebSocket upgrade from a browser carries ``Origin``; it must be the server's
  own origin or one configured in `allowed_origins`, else the upgrade is refused (403) before
  any frame. Clients that send no Origin (scripts) are not browsers and need only the token.
- **Access log.** Every request and every stream connection is logged through structlog
  (``web.access``, ``web.stream.open``, ``web.stream.closed``) with peer, path, status and
  duration; tokens and query strings are never logged.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Literal

import structlog
from aiohttp import web

__all__ = ["Tokens", "access_log", "allowed_origin", "bearer"]

log = structlog.get_logger("piano.web.access")

Verdict = Literal["ok", "expired", "invalid"]


@dataclass(slots=True)
class _Token:
    secret: bytes
    expires_at: float | None


class Tokens:
    """The valid tokens: the current one and, after a rotation, the previous one until expiry."""

    def __init__(self, token: str, *, clock: Callable[[], float] = time.time) -> None:
        if not token:
            raise ValueError("the web access token is empty")
        self._clock = clock
        self._tokens = [_Token(token.encode(), None)]
        self._expired: list[bytes] = []

    def check(self, candidate: str | None) -> Verdict:
        """ "ok", "expired" (a rotated-out token past its grace) or "invalid"."""
        if not candidate:
            return "invalid"
        given = candidate.encode()
        now = self._clock()
        valid = expired = False
        for token in self._tokens:
            match = hmac.compare_digest(given, token.secret)
            live = token.expires_at is None or now < token.expires_at
            valid |= match and live
            expired |= match and not live
        for secret in self._expired:
            expired |= hmac.compare_digest(given, secret)
        if valid:
            return "ok"
        return "expired" if expired else "invalid"

    def rotate(self, grace: float, new: str | None = None) -> str:
        """Make `new` (or a fresh random token) current; the old one expires after `grace` s.

        Only one previous token is kept: rotating twice expires the oldest at once.
        """
        token = new or secrets.token_urlsafe(32)
        current, *older = self._tokens
        self._expired = [*self._expired, *(t.secret for t in older)][-8:]
        current.expires_at = self._clock() + max(0.0, grace)
        self._tokens = [_Token(token.encode(), None), current]
        return token

    @property
    def previous_expires_at(self) -> float | None:
        return self._tokens[1].expires_at if len(self._tokens) > 1 else None


def bearer(request: web.Request) -> str | None:
    """The token of an ``Authorization: Bearer`` header, if any."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def allowed_origin(origin: str | None, host: str, port: int, extra: Iterable[str]) -> bool:
    """True for no Origin (not a browser), the server's own origins, or a configured one."""
    if origin is None:
        return True
    own = {f"http://{name}:{port}" for name in (host, "127.0.0.1", "localhost", "[::1]")}
    return origin.rstrip("/") in own | {o.rstrip("/") for o in extra}


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def access_log(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Log every request (not its query string or headers) with its status and duration."""
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        log.info(
            "web.access",
            peer=request.remote,
            method=request.method,
            path=request.path,
            status=status,
            ms=round((time.perf_counter() - started) * 1000, 1),
        )
