"""Thread tokens: who may call the MCP endpoint, and on behalf of which thread.

Each Piano thread gets its own bearer token, ``<thread id, base64url>.<HMAC-SHA256(key,
thread id), base64url>``. Codex sends it on every request to the endpoint (the thread's codex
config carries it as ``http_headers.Authorization``), so a request proves both that it comes
from a codex thread Piano configured and which thread that is: tools act on that thread only,
and one thread cannot reach another's browser or shell. Verification recomputes the MAC and
compares it with `hmac.compare_digest` (constant time). The key is random per daemon run
unless configured, so tokens die with the daemon; threads get fresh ones when they attach.

`require_token` wraps an ASGI app: an HTTP request without a valid token gets ``401`` with
``WWW-Authenticate: Bearer`` before reaching the MCP server; lifespan events pass through.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

__all__ = ["ThreadTokens", "require_token", "thread_from_headers"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_MAX_TOKEN = 2048


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class ThreadTokens:
    """Mints and checks thread tokens with one key (at least 32 bytes; random by default)."""

    def __init__(self, key: bytes | None = None) -> None:
        key = secrets.token_bytes(32) if key is None else key
        if len(key) < 32:
            raise ValueError("the token key must be at least 32 bytes")
        self._key = key

    def __repr__(self) -> str:
        return "ThreadTokens(<key hidden>)"

    def _mac(self, thread_id: bytes) -> bytes:
        return hmac.new(self._key, b"piano-mcp-thread\0" + thread_id, hashlib.sha256).digest()

    def token(self, thread_id: str) -> str:
        """The bearer token of `thread_id`."""
        raw = thread_id.encode()
        return f"{_b64(raw)}.{_b64(self._mac(raw))}"

    def verify(self, token: str) -> str | None:
        """The thread id `token` was minted for, or None if it is not a valid token."""
        if len(token) > _MAX_TOKEN:
            return None
        encoded, dot, mac = token.partition(".")
        if not dot:
            return None
        try:
            raw = _unb64(encoded)
            given = _unb64(mac)
            thread_id = raw.decode()
        except (binascii.Error, ValueError):
            return None
        if not hmac.compare_digest(self._mac(raw), given):
            return None
        return thread_id


def _bearer(value: str | None) -> str | None:
    if value is None:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def thread_from_headers(tokens: ThreadTokens, headers: Any) -> str | None:
    """The verified thread of a request's headers (a mapping with ``.get``), or None."""
    token = _bearer(headers.get("authorization") if headers is not None else None)
    return tokens.verify(token) if token is not None else None


def _header(scope: Scope, name: bytes) -> str | None:
    raw: Iterable[tuple[bytes, bytes]] = scope.get("headers") or ()
    for key, value in raw:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def require_token(app: ASGIApp, tokens: ThreadTokens) -> ASGIApp:
    """`app` behind thread-token authentication (see the module documentation)."""

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            token = _bearer(_header(scope, b"authorization"))
            if token is None or tokens.verify(token) is None:
                body = json.dumps({"error": "a valid Piano thread token is required"}).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"www-authenticate", b'Bearer realm="piano"'),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        await app(scope, receive, send)

    return guarded
