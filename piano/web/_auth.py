"""Access to the web surface: tokens, browser origins and the access log.

- **Tokens.** A request carries ``Authorization: Bearer <token>``; a stream client may instead
  send an `Auth` frame first. Every candidate is compared with every valid token in constant
  time (`hmac.compare_digest`, no early exit), so timing says nothing about which or how much
  matched. `Tokens.rotate` installs a new token and keeps the previous one valid for a grace
  period, then it expires: a client using it is told ``token_expired``, not just refused.
  Only the current token may rotate (`Tokens.is_current`), and rotations are saved (digests,
  owner-only file in the state directory) so that a restart keeps them.
- **Origins.** A WebSocket upgrade from a browser carries ``Origin``; it must be the server's
  own origin or one configured in `allowed_origins`, else the upgrade is refused (403) before
  any frame. Clients that send no Origin (scripts) are not browsers and need only the token.
- **Access log.** Every request and every stream connection is logged through structlog
  (``web.access``, ``web.stream.open``, ``web.stream.closed``) with peer, path, status and
  duration; tokens and query strings are never logged.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import msgspec
import structlog
from aiohttp import web

from actors import register_secret

__all__ = ["Tokens", "access_log", "allowed_origin", "bearer"]

log = structlog.get_logger("piano.web.access")

Verdict = Literal["ok", "expired", "invalid"]


@dataclass(slots=True)
class _Token:
    digest: bytes
    expires_at: float | None


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class _Saved(msgspec.Struct, forbid_unknown_fields=True):
    """The rotation file: SHA-256 digests only, never a token."""

    base: str
    """The digest of the configured token the rotations started from."""
    tokens: list[tuple[str, float | None]]
    expired: list[str]


class Tokens:
    """The valid tokens: the current one and, after a rotation, the previous one until expiry.

    Tokens are kept as SHA-256 digests (the candidate's digest is what is compared), so neither
    memory dumps of the state nor the rotation file hold one. With a `path`, every rotation is
    saved there (owner-only, replaced atomically) and restored at start, as long as the
    configured token is still the one the rotations started from: a restart neither revives a
    rotated-out token nor kills the rotated-in one. Configuring a different token starts over
    (the file is then ignored and replaced at the next rotation).
    """

    def __init__(
        self,
        token: str,
        *,
        clock: Callable[[], float] = time.time,
        path: Path | None = None,
    ) -> None:
        if not token:
            raise ValueError("the web access token is empty")
        self._clock = clock
        self._path = path
        self._base = _digest(token)
        self._tokens = [_Token(self._base, None)]
        self._expired: list[bytes] = []
        if path is not None:
            self._restore(path)

    def check(self, candidate: str | None) -> Verdict:
        """ "ok", "expired" (a rotated-out token past its grace) or "invalid"."""
        if not candidate:
            return "invalid"
        given = _digest(candidate)
        now = self._clock()
        valid = expired = False
        for token in self._tokens:
            match = hmac.compare_digest(given, token.digest)
            live = token.expires_at is None or now < token.expires_at
            valid |= match and live
            expired |= match and not live
        for digest in self._expired:
            expired |= hmac.compare_digest(given, digest)
        if valid:
            return "ok"
        return "expired" if expired else "invalid"

    def is_current(self, candidate: str | None) -> bool:
        """True only for the current token (not one in its grace period): only it may rotate,
        or a rotated-out token could rotate again with no grace and shut its successor out."""
        return bool(candidate) and hmac.compare_digest(
            _digest(candidate or ""), self._tokens[0].digest
        )

    def rotate(self, grace: float, new: str | None = None) -> str:
        """Make `new` (or a fresh random token) current; the old one expires after `grace` s.

        Only one previous token is kept: rotating twice expires the oldest at once. The new
        token is registered as a secret (`actors.register_secret`: the daemon's console, logs
        and dashboard never show it); with a `path` the rotation is saved before it is
        returned.
        """
        token = new or secrets.token_urlsafe(32)
        register_secret(token)
        current, *older = self._tokens
        self._expired = [*self._expired, *(t.digest for t in older)][-8:]
        current.expires_at = self._clock() + max(0.0, grace)
        self._tokens = [_Token(_digest(token), None), current]
        if self._path is not None:
            self._save(self._path)
        return token

    @property
    def previous_expires_at(self) -> float | None:
        return self._tokens[1].expires_at if len(self._tokens) > 1 else None

    def _save(self, path: Path) -> None:
        saved = _Saved(
            base=self._base.hex(),
            tokens=[(t.digest.hex(), t.expires_at) for t in self._tokens],
            expired=[d.hex() for d in self._expired],
        )
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(msgspec.json.encode(saved))
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise

    def _restore(self, path: Path) -> None:
        """Take the saved rotations back. A file that cannot be read fails closed (a
        `ValueError` naming it): falling back to the configured token could revive a
        rotated-out one."""
        try:
            saved = msgspec.json.decode(path.read_bytes(), type=_Saved)
            base = bytes.fromhex(saved.base)
            tokens = [_Token(bytes.fromhex(d), at) for d, at in saved.tokens]
            expired = [bytes.fromhex(d) for d in saved.expired]
        except FileNotFoundError:
            return
        except (OSError, ValueError, msgspec.DecodeError) as exc:
            raise ValueError(
                f"{path}: the saved web token rotations cannot be read ({exc}); "
                "delete the file to start over from the configured token"
            ) from None
        if not hmac.compare_digest(base, self._base) or not tokens:
            log.info("web.tokens_reset", path=str(path), reason="the configured token changed")
            return
        self._tokens, self._expired = tokens, expired
        log.info("web.tokens_restored", path=str(path))


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
