"""The embeddable chat: one script tag puts a Piano chat on another web page.

```html
<script src="http://127.0.0.1:8470/embed.js" data-token="EMBED-TOKEN" async></script>
```

``/embed.js`` inserts, where the tag stands, an iframe of ``/embed`` on the daemon's own
origin, passing the token in the URL fragment (never sent to a server, never in a log). The
page inside talks to two routes only, each with ``Authorization: Bearer <embed token>``:

- ``POST /embed/api/messages`` ``{"conversation": ID, "text": ...}``: a message to the
  conversation ``embed:ID`` of the embed's agent (``[web.embed] agent``); ID is the
  browser's own random id (kept in its storage), 16 to 64 letters, digits, ``-`` or ``_``.
- ``GET /embed/api/conversations/{ID}``: that conversation's exchanges (text, answer, status),
  which the page polls while a turn runs.

**The scope.** The embed token (``$PIANO_WEB_EMBED_TOKEN``, compared in constant time) is
accepted by these two routes and by nothing else: the dashboard, the stream, the SSE routes
and every ``/api/`` route check the web token, which the embed token is not (the daemon
refuses to embed when they are equal). It reaches only conversations under ``embed:`` with the
embed's agent: no other thread, no approvals, no interrupts, no uploads.

**Who.** Every embed message is the user ``embed`` (`EMBED_USER`), one for all visitors (a
visitor's conversation id is theirs to change), so ``[limits]`` apply to the embed as a whole
(``[limits.users] embed`` for an allowance of its own) and usage reports count it.

**Framing.** ``/embed`` is served with ``Content-Security-Policy: frame-ancestors`` the origins
of ``[web.embed] frame_ancestors`` (no X-Frame-Options), so only pages of those origins can
frame it; every other page keeps ``frame-ancestors 'none'`` and ``X-Frame-Options: DENY``.
No route answers CORS: a script on another origin cannot read any answer (the iframe's page
is same-origin with the daemon and needs none).
"""

from __future__ import annotations

import re

import msgspec
import structlog
from aiohttp import web

from piano.config import WebConfig
from piano.threads import ThreadKey
from piano.web._api import Api, ApiError
from piano.web._auth import Tokens, bearer
from piano.web._names import SURFACE
from piano.web._server import STATIC

__all__ = ["EMBED_PREFIX", "EMBED_USER", "Embed"]

log = structlog.get_logger("piano.web.embed")

EMBED_PREFIX = "embed:"
"""Embedded conversations' names start with this (`ThreadKey.conversation`)."""

EMBED_USER = "embed"
"""The user every embed message is from (see the module documentation)."""

_CONVERSATION = re.compile(r"[A-Za-z0-9_-]{16,64}")

_TEXT_LIMIT = 16_000
_BODY_LIMIT = 12 * _TEXT_LIMIT + 1024
"""The bytes of a message's body read at most: room for the longest text however it is
escaped (``\\ud83d\\ude00``: 12 bytes a character), the id and the braces."""


class _Message(msgspec.Struct, forbid_unknown_fields=True):
    conversation: str
    text: str


class Embed:
    """The embed's routes (see the module documentation) for `config`, answering with `api`."""

    def __init__(self, config: WebConfig, api: Api, token: str, agent: str) -> None:
        self.config = config.embed
        self.api = api
        self.tokens = Tokens(token)
        self.agent = agent

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/embed.js", self._script)
        app.router.add_get("/embed", self._page)
        app.router.add_post("/embed/api/messages", self._message)
        app.router.add_get("/embed/api/conversations/{conversation}", self._conversation)

    def frame_ancestors(self) -> str:
        return " ".join(self.config.frame_ancestors) or "'none'"

    async def _script(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "embed.js", headers={"Cache-Control": "no-cache"})

    async def _page(self, request: web.Request) -> web.StreamResponse:
        csp = f"default-src 'self'; connect-src 'self'; frame-ancestors {self.frame_ancestors()}"
        return web.FileResponse(STATIC / "embed.html", headers={"Content-Security-Policy": csp})

    def _authorize(self, request: web.Request) -> None:
        if self.tokens.check(bearer(request)) != "ok":
            log.warning("web.embed.refused", peer=request.remote)
            raise ApiError("unauthorized", "invalid embed token")

    def _key(self, conversation: str) -> ThreadKey:
        if not _CONVERSATION.fullmatch(conversation):
            raise ApiError("bad_frame", "a conversation id is 16 to 64 letters, digits, '-' or '_'")
        return ThreadKey(SURFACE, EMBED_PREFIX + conversation, self.agent)

    async def _message(self, request: web.Request) -> web.StreamResponse:
        self._authorize(request)  # before the body is read: the token is public, the body not
        body: _Message = await self.api.body(request, _Message, _BODY_LIMIT)
        key = self._key(body.conversation)
        text = body.text.strip()
        if not text or len(text) > _TEXT_LIMIT:
            raise ApiError("bad_frame", f"a message is 1 to {_TEXT_LIMIT} characters")
        sent = await self.api.send(key, text, EMBED_USER)
        return web.json_response(msgspec.to_builtins(sent), status=202)

    async def _conversation(self, request: web.Request) -> web.StreamResponse:
        self._authorize(request)
        key = self._key(request.match_info["conversation"])
        exchanges = await self.api.exchanges(key)
        return web.json_response({"exchanges": exchanges})
