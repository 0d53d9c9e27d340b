"""The JSON HTTP API (every route but ``/api/health`` needs ``Authorization: Bearer <token>``).

| route                                          | answer                                     |
|------------------------------------------------|--------------------------------------------|
| GET  /api/health                               | ``{"ok": true, "stream": name, "seq": n}`` |
| GET  /api/threads                              | threads, most recently active first        |
| GET  /api/threads/{id}/interactions            | a thread's interactions with their items   |
| GET  /api/threads/{id}/transcript              | the thread as Markdown (needs the store);  |
|                                                | ``?format=html``: rendered, sanitised      |
| GET  /api/threads/{id}/resume                  | ``{lines, settings}``: how to continue it  |
|                                                | elsewhere; its model and effort            |
| POST /api/render                               | ``{texts: [markdown]}`` -> ``{html: [..]}``|
|                                                | sanitised fragments (`piano.web._render`)  |
| GET  /api/actors/{id}                          | one actor, as `Observer.actor` describes it|
| POST /api/messages                             | ``{conversation, text, agent?, user?}``    |
| POST /api/threads/{id}/messages                | ``{text, user?}`` to a known conversation  |
| POST /api/uploads                              | multipart ``file`` (+ conversation, agent?, |
|                                                | user?, text?): see `_upload`               |
| POST /api/threads/{id}/approvals/{approval_id} | ``{decision: accept|decline|cancel}``      |
| POST /api/threads/{id}/interrupt               | interrupt the running turn                 |
| GET  /api/dashboard                            | the dashboard snapshot                     |
| GET  /api/usage                                | ``{today, all}``: `schemas.usage.UsageReport`s |
|                                                | per user and agent, priced (needs the store)|
| POST /api/token/rotate                         | ``{grace?}``: a new token (current only)   |

With a store (``store_path``) threads, interactions and transcripts come from it; without one,
threads and interactions come from the surface's in-memory view of recent events. Errors are
``{"error": {"code": ..., "message": ...}}`` with the HTTP status that fits (400, 401, 404, 503),
for every failure under ``/api/`` (`json_errors`): an unknown route or method is a 404/405 in that
form, and an unexpected exception is logged (``web.request_failed``, with its traceback) and
answered 500 ``internal``, never as aiohttp's plain-text page.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Mapping
from typing import Annotated, Any, TypedDict, cast, get_args

import msgspec
import structlog
from aiohttp import web

from actors import ActorRef, ActorSystem
from piano.commands import COMMANDS, Commands
from piano.config import PriceConfig, day_start
from piano.media import Media, MediaRefused
from piano.models import settings_line
from piano.store import InteractionRecord, StoreError, StoreLocation, StoreReader, location_of
from piano.threads import (
    THREADS,
    ThreadDirectory,
    ThreadKey,
    UnknownAgent,
    conversation_status,
    decide,
    interrupt,
    open_conversation,
    resume_lines,
    send_message,
    web_link,
    which_conversations,
)
from piano.usage import report_from
from piano.web._auth import Tokens, bearer
from piano.web._dashboard import Observer
from piano.web._messages import (
    TIMEOUT,
    GetKey,
    GetViews,
    NameThread,
    stream_activity,
    stream_stats,
)
from piano.web._names import SURFACE
from piano.web._render import render_markdown
from piano.web._upload import UploadTooLarge, read_upload
from schemas import events as ev
from schemas.stream import ALL_THREADS, ErrorCode, ThreadState
from schemas.usage import UsageReport

__all__ = ["Api", "ApiError", "error_response", "json_errors"]

log = structlog.get_logger(__name__)

_STATUS: dict[str, int] = {
    "unauthorized": 401,
    "token_expired": 401,
    "bad_json": 400,
    "bad_frame": 400,
    "not_found": 404,
    "frame_too_large": 413,
    "refused": 422,
    "unavailable": 503,
}


class ApiError(Exception):
    """A request or frame that cannot be served: a stream error code and a message."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class _NewMessage(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    text: str
    conversation: str = "default"
    agent: str | None = None
    user: str | None = None


class _ThreadMessage(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    text: str
    user: str | None = None


class _Command(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A chat command typed in a conversation: an existing thread, or a conversation and agent."""

    text: str
    thread_id: str | None = None
    conversation: str = "default"
    agent: str | None = None
    user: str | None = None


class _Decision(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    decision: ev.ApprovalDecision


class _Render(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    texts: Annotated[list[str], msgspec.Meta(max_length=200)]


RENDER_LIMIT = 4 * 1024 * 1024
"""The largest ``/api/render`` body: an agent's answer can be longer than a client frame."""


async def _read_at_most(request: web.Request, limit: int) -> bytes:
    """The request body, refused with ``frame_too_large`` as soon as it passes `limit`."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(65536):
        size += len(chunk)
        if size > limit:
            raise ApiError("frame_too_large", f"the body is over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


class _Rotate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    grace: Annotated[float, msgspec.Meta(ge=0, le=7 * 24 * 3600)] | None = None
    """Seconds the previous token stays valid: 0 to a week."""


class Sent(TypedDict):
    """A message a conversation accepted, as the API answers it."""

    thread_id: str
    interaction_id: str
    outcome: ev.Outcome


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=msgspec.json.encode(data), status=status, content_type="application/json"
    )


def _error(code: ErrorCode, message: str, status: int | None = None) -> web.Response:
    body = {"error": {"code": code, "message": message}}
    return _json(body, status or _STATUS.get(code, 400))


def error_response(error: ApiError) -> web.Response:
    """The documented JSON answer to `error`, with the HTTP status of its code."""
    return _error(error.code, error.message)


_HTTP_CODES: dict[int, ErrorCode] = {404: "not_found", 413: "frame_too_large"}


@web.middleware
async def json_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """Every failure under ``/api/`` as the documented JSON error (see the module docs)."""
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except ApiError as exc:
        return error_response(exc)
    except web.HTTPException as exc:
        if not request.path.startswith("/api/") or exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "internal" if exc.status >= 500 else "bad_frame")
        return _error(code, f"{exc.reason}: {request.method} {request.path}", exc.status)
    except Exception:
        log.exception("web.request_failed", method=request.method, path=request.path)
        return _error("internal", "the server failed on this request; it is logged", 500)


class Api:
    """The API's handlers; `routes` adds them to an application."""

    def __init__(
        self,
        system: ActorSystem,
        surface: ActorRef,
        tokens: Tokens,
        directory: ThreadDirectory,
        store_path: str | StoreLocation | None,
        default_agent: str,
        rotation_grace: float,
        observer: Observer,
        media: Media | None = None,
        address: tuple[str, int] | None = None,
        commands: Commands | None = None,
        prices: Mapping[str, PriceConfig] | None = None,
    ) -> None:
        self.commands = commands
        self.prices = prices or {}
        self.media = media
        self.address = address
        self.system = system
        self.surface = surface
        self.tokens = tokens
        self.directory = directory
        self.store_path = store_path
        self.default_agent = default_agent
        self.rotation_grace = rotation_grace
        self.observer = observer
        self._reader: StoreReader | None = None

    def routes(self, app: web.Application) -> None:
        get, post = app.router.add_get, app.router.add_post
        get("/api/health", self._health)
        get("/api/threads", self._guard(self._threads))
        get("/api/threads/{id}/interactions", self._guard(self._interactions))
        get("/api/threads/{id}/transcript", self._guard(self._transcript))
        get("/api/threads/{id}/resume", self._guard(self._resume))
        post("/api/render", self._guard(self._render))
        get("/api/actors/{id}", self._guard(self._actor))
        post("/api/messages", self._guard(self._new_message))
        post("/api/threads/{id}/messages", self._guard(self._thread_message))
        post("/api/uploads", self._guard(self._upload))
        post("/api/threads/{id}/approvals/{approval}", self._guard(self._decide))
        post("/api/threads/{id}/interrupt", self._guard(self._interrupt))
        get("/api/commands", self._guard(self._command_list))
        post("/api/commands", self._guard(self._command))
        get("/api/dashboard", self._guard(self._dashboard))
        get("/api/usage", self._guard(self._usage))
        post("/api/token/rotate", self._guard(self._rotate))
        app.on_cleanup.append(self._close)

    async def _close(self, app: web.Application) -> None:
        if self._reader is not None:
            await asyncio.to_thread(self._reader.close)

    def _guard(self, handler: Any) -> Any:
        async def guarded(request: web.Request) -> web.StreamResponse:
            verdict = self.tokens.check(bearer(request))
            if verdict != "ok":
                code: ErrorCode = "token_expired" if verdict == "expired" else "unauthorized"
                raise ApiError(code, f"{verdict} token: send Authorization: Bearer <token>")
            response: web.StreamResponse = await handler(request)
            return response

        return guarded

    async def body(self, request: web.Request, kind: type[Any], limit: int | None = None) -> Any:
        """The JSON body as `kind`; up to `limit` bytes (default: the app's `max_frame`)."""
        data = await request.read() if limit is None else await _read_at_most(request, limit)
        try:
            return msgspec.json.decode(data, type=kind)
        except msgspec.ValidationError as exc:
            raise ApiError("bad_frame", f"bad request body: {exc}") from None
        except msgspec.DecodeError as exc:
            raise ApiError("bad_json", f"the body is not valid JSON: {exc}") from None

    async def _store(self) -> StoreReader | None:
        if self.store_path is None:
            return None
        if self._reader is None:
            path = self.store_path

            def open_reader() -> StoreReader | None:
                location = location_of(path)
                return location.reader() if location.ready() else None

            try:
                self._reader = await asyncio.to_thread(open_reader)
            except StoreError as exc:
                raise ApiError("unavailable", f"the store cannot be read: {exc}") from None
            if self._reader is None:
                raise ApiError("unavailable", "the store has not been created yet")
        return self._reader

    async def _views(self, thread_id: str) -> list[ThreadState]:
        states: list[ThreadState] = await self.surface.call(GetViews(thread_id), timeout=TIMEOUT)
        return states

    # -- handlers -------------------------------------------------------------------------------

    async def _health(self, request: web.Request) -> web.StreamResponse:
        stats = await stream_stats(self.surface)
        return _json({"ok": True, "stream": stats.stream, "seq": stats.seq})

    async def _threads(self, request: web.Request) -> web.StreamResponse:
        store = await self._store()
        if store is not None:
            records = await asyncio.to_thread(store.threads)
            rows = [
                {
                    "id": r.id,
                    "surface": r.surface,
                    "conversation": r.conversation,
                    "agent": r.agent,
                    "status": r.status,
                    "updated_at": r.updated_at,
                }
                for r in records
            ]
        else:
            rows = [
                {
                    "id": s.thread_id,
                    "surface": s.surface,
                    "conversation": s.conversation,
                    "agent": s.agent,
                    "status": "running" if s.running else "idle",
                    "updated_at": s.updated_at,
                }
                for s in await self._views(ALL_THREADS)
            ]
        return _json({"threads": rows})

    async def _interactions(self, request: web.Request) -> web.StreamResponse:
        thread_id = request.match_info["id"]
        store = await self._store()
        if store is None:
            states = await self._views(thread_id)
            if not states:
                raise ApiError("not_found", f"no thread {thread_id!r} in recent events")
            return _json({"thread_id": thread_id, "interactions": states[0].interactions})

        def read() -> list[dict[str, Any]] | None:
            if store.thread(thread_id) is None:
                return None
            return [
                {**msgspec.to_builtins(i), "items": msgspec.to_builtins(store.items(i.id))}
                for i in store.interactions(thread_id)
            ]

        rows = await asyncio.to_thread(read)
        if rows is None:
            raise ApiError("not_found", f"no thread {thread_id!r}")
        return _json({"thread_id": thread_id, "interactions": rows})

    async def _transcript(self, request: web.Request) -> web.StreamResponse:
        thread_id = request.match_info["id"]
        store = await self._store()
        if store is None:
            raise ApiError("unavailable", "transcripts are read from the store: none configured")
        try:
            text = await asyncio.to_thread(store.export_transcript, thread_id)
        except StoreError as exc:
            raise ApiError("not_found", str(exc)) from None
        if request.query.get("format") == "html":
            html = await asyncio.to_thread(render_markdown, text)
            return web.Response(text=html, content_type="text/html")
        return web.Response(text=text, content_type="text/markdown")

    async def _resume(self, request: web.Request) -> web.StreamResponse:
        """The thread's resume lines (`piano.threads.resume_lines`), as every surface shows them."""
        thread_id = request.match_info["id"]
        key = await self.known_key(thread_id)
        current, codex_thread_id = await self.directory.thread_for(key)
        if current != thread_id:  # a conversation started anew: the store knows the old thread
            store = await self._store()
            record = await asyncio.to_thread(store.thread, thread_id) if store else None
            codex_thread_id = record.codex_thread_id if record is not None else None
        link = web_link(thread_id, *self.address) if self.address is not None else None
        lines = resume_lines(thread_id, codex_thread_id=codex_thread_id, web=link)
        settings = None  # the live conversation's model and effort; an old thread has none
        threads = self.system.whereis(THREADS)
        if current == thread_id and threads is not None:
            settings = settings_line(
                await conversation_status(await open_conversation(threads, key))
            )
        return _json({"thread_id": thread_id, "lines": lines, "settings": settings})

    async def _render(self, request: web.Request) -> web.StreamResponse:
        body: _Render = await self.body(request, _Render, RENDER_LIMIT)
        html = await asyncio.to_thread(lambda: [render_markdown(text) for text in body.texts])
        return _json({"html": html})

    async def _actor(self, request: web.Request) -> web.StreamResponse:
        try:
            actor_id = int(request.match_info["id"])
        except ValueError:
            raise ApiError("bad_frame", "an actor id is a number") from None
        view = await self.observer.actor(actor_id)
        if view is None:
            raise ApiError("not_found", f"no live actor #{actor_id}")
        return _json(view)

    def _threads_ref(self) -> ActorRef:
        threads = self.system.whereis(THREADS)
        if threads is None:
            raise ApiError("unavailable", "the daemon is restarting its threads; try again")
        return threads

    async def send(
        self, key: ThreadKey, text: str, user: str | None, attachments: list[str] | None = None
    ) -> Sent:
        """Deliver a message to a conversation: its thread id, interaction id and outcome."""
        threads = self._threads_ref()
        thread_id, _ = await self.directory.thread_for(key)
        self.surface.cast(NameThread(thread_id, key))
        interaction = ev.Interaction(
            id=f"web-{secrets.token_hex(6)}", text=text, user=user, attachments=attachments or []
        )
        try:
            outcome = await send_message(threads, key, interaction)
        except UnknownAgent as exc:
            raise ApiError("not_found", str(exc.args[0] if exc.args else exc)) from None
        return {"thread_id": thread_id, "interaction_id": interaction.id, "outcome": outcome}

    async def exchanges(self, key: ThreadKey) -> list[dict[str, Any]]:
        """The conversation's messages and answers, oldest first: text, response, status and
        error of each interaction of its current thread (from the store, else recent events).
        Only reads: a conversation that has no thread yet has none (the embed page asks on every
        load, before its visitor says anything)."""
        store = await self._store()
        if store is None:
            thread_id, _ = await self.directory.thread_for(key)
            states = await self._views(thread_id)
            rows = msgspec.to_builtins(states[0].interactions) if states else []
        else:

            def read() -> list[InteractionRecord]:
                record = store.find_thread(key.surface, key.conversation, key.agent)
                return [] if record is None else store.interactions(record.id)

            rows = msgspec.to_builtins(await asyncio.to_thread(read))
        return [
            {k: row.get(k) for k in ("id", "text", "response", "status", "error")} for row in rows
        ]

    async def _new_message(self, request: web.Request) -> web.StreamResponse:
        body: _NewMessage = await self.body(request, _NewMessage)
        key = ThreadKey(SURFACE, body.conversation, body.agent or self.default_agent)
        return _json(await self.send(key, body.text, body.user), 202)

    async def _upload(self, request: web.Request) -> web.StreamResponse:
        if self.media is None:
            raise ApiError("unavailable", "uploads are not enabled on this server")
        try:
            upload = await read_upload(request, self.media)
        except UploadTooLarge as exc:
            raise ApiError("frame_too_large", str(exc)) from None
        except (ValueError, AssertionError) as exc:
            raise ApiError("bad_frame", f"bad upload: {exc}") from None
        fields = upload.fields
        conversation = fields.get("conversation") or "default"
        key = ThreadKey(SURFACE, conversation, fields.get("agent") or self.default_agent)
        try:
            received = await self.media.receive(
                upload.kind,
                key.agent,
                upload.data,
                name=upload.filename,
                mime=upload.mime,
                caption=fields.get("text", ""),
            )
        except MediaRefused as exc:
            raise ApiError("refused", str(exc)) from None
        sent = await self.send(key, received.text, fields.get("user"), received.attachments)
        extra = {"transcript": received.transcript} if received.transcript is not None else {}
        if received.saved is not None:
            extra["saved"] = received.saved.relative
        return _json({**sent, **extra}, 202)

    async def known_key(self, thread_id: str) -> ThreadKey:
        """The conversation of a thread, whichever surface opened it (`ApiError` if unknown)."""
        key: ThreadKey | None = await self.surface.call(GetKey(thread_id), timeout=TIMEOUT)
        store = await self._store()
        if key is None and store is not None:
            record = await asyncio.to_thread(store.thread, thread_id)
            if record is not None:
                key = ThreadKey(record.surface, record.conversation, record.agent)
        if key is None:
            for candidate in await which_conversations(self._threads_ref()):
                if (await self.directory.thread_for(candidate))[0] == thread_id:
                    return candidate
            raise ApiError("not_found", f"no known conversation for thread {thread_id!r}")
        return key

    async def _thread_message(self, request: web.Request) -> web.StreamResponse:
        body: _ThreadMessage = await self.body(request, _ThreadMessage)
        key = await self.known_key(request.match_info["id"])
        return _json(await self.send(key, body.text, body.user), 202)

    async def thread(self, thread_id: str) -> ActorRef:
        """The actor of a thread (started again if it is idle and its conversation known)."""
        key = await self.known_key(thread_id)
        return await open_conversation(self._threads_ref(), key)

    async def _decide(self, request: web.Request) -> web.StreamResponse:
        body: _Decision = await self.body(request, _Decision)
        if body.decision not in get_args(ev.Decision):
            raise ApiError("bad_frame", "decision must be accept, decline or cancel")
        decision = cast(ev.Decision, body.decision)
        thread = await self.thread(request.match_info["id"])
        approval = request.match_info["approval"]
        if not await decide(thread, approval, decision, SURFACE):
            raise ApiError("not_found", f"no pending approval {approval!r}")
        return _json({"ok": True})

    async def _interrupt(self, request: web.Request) -> web.StreamResponse:
        thread = await self.thread(request.match_info["id"])
        return _json({"interrupted": await interrupt(thread)})

    async def _command_list(self, request: web.Request) -> web.StreamResponse:
        listed = [
            {"name": c.name, "usage": c.usage, "summary": c.summary, "owner_only": c.owner_only}
            for c in COMMANDS
        ]
        return _json({"commands": listed if self.commands is not None else []})

    async def _command(self, request: web.Request) -> web.StreamResponse:
        """Run a chat command (`piano.commands`) in a conversation: ``{"reply": text}``; 404
        (``not_found``) when the text is no command, so the page can send it as a message."""
        body: _Command = await self.body(request, _Command)
        if body.thread_id is not None:
            key = await self.known_key(body.thread_id)
            thread_id: str | None = body.thread_id
        else:
            key = ThreadKey(SURFACE, body.conversation, body.agent or self.default_agent)
            thread_id = None
        reply = None
        if self.commands is not None:
            # A full web token is the owner's (see piano.commands).
            reply = await self.commands.run(
                body.text,
                system=self.system,
                key=key,
                thread_id=thread_id,
                user=body.user,
                owner=True,
            )
        if reply is None:
            raise ApiError("not_found", f"no command {body.text.split(maxsplit=1)[0]!r}")
        return _json({"reply": reply})

    async def _dashboard(self, request: web.Request) -> web.StreamResponse:
        stats = await stream_stats(self.surface)
        return _json(await self.observer.collect(stats, await stream_activity(self.surface)))

    async def _usage(self, request: web.Request) -> web.StreamResponse:
        """Turns, tokens and cost per user and agent, today (UTC) and in all (`piano.usage`)."""
        reader = await self._store()
        if reader is None:
            raise ApiError("unavailable", "usage is counted in the store, and there is none")
        since = day_start(time.time())

        def read() -> dict[str, UsageReport]:
            return {
                "today": report_from(reader, self.prices, since=since),
                "all": report_from(reader, self.prices, since=None),
            }

        try:
            reports = await asyncio.to_thread(read)
        except StoreError as exc:
            raise ApiError("unavailable", f"the store cannot be read: {exc}") from None
        return _json(reports)

    async def _rotate(self, request: web.Request) -> web.StreamResponse:
        body: _Rotate = await self.body(request, _Rotate) if request.can_read_body else _Rotate()
        grace = self.rotation_grace if body.grace is None else body.grace
        if not self.tokens.is_current(bearer(request)):
            raise ApiError(
                "refused", "only the current token may rotate: this one is being rotated out"
            )
        token = self.tokens.rotate(grace)
        return _json({"token": token, "previous_expires_at": self.tokens.previous_expires_at})
