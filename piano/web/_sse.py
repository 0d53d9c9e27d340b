"""A chat endpoint for clients that cannot keep a WebSocket: POST a message, read the turn
as server-sent events.

``POST /api/messages/stream`` with ``{"text": ..., "conversation": "default", "agent": null,
"user": null}`` (and ``Authorization: Bearer <token>``, checked by the caller's `check_token`,
like every other web API route) answers ``text/event-stream``; each event is ``event: <name>``
and one JSON ``data:`` line:

| event          | data                                                           |
|----------------|----------------------------------------------------------------|
| `user_message` | ``{thread_id, interaction_id, text, outcome}`` (first)         |
| `agent`        | ``{agent, previous}``: who answers (at the start, at handoffs) |
| `delta`        | ``{item_id, text}``: streamed text of the answer               |
| `tool_call`    | ``{item_id, tool, arguments}`` (``tool: "shell"`` for commands)|
| `tool_result`  | ``{item_id, tool, status, output, exit_code}``                 |
| `approval`     | ``{approval_id, kind, command, tool, arguments, changes,``     |
|                | ``reason}``: answer it with the API; ``changes`` lists a file  |
|                | change's ``{path, kind, diff}`` (an added file: its text)      |
| `notice`       | ``{level, message, retrying}``                                 |
| `error`        | ``{message}``: the turn failed                                 |
| `done`         | ``{status, response, agent}`` (last; the stream then ends)     |

The stream follows the message's own turn: a message queued behind a running turn streams
when its turn runs; a steered message follows the running turn. Comments (``: keep-alive``)
are sent every `keepalive` seconds so proxies keep the connection; a client that goes away
leaves the turn running (the answer is stored as usual). The events come from the thread's
subscription like any surface's, so the endpoint works for Codex agents as well.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec
import structlog
from aiohttp import web

from actors import ActorSystem, Registry
from piano.surfaces import Surface, subscribe, unsubscribe
from piano.threads import THREADS, ThreadKey, UnknownAgent, open_conversation, post_message
from piano.web._api import ApiError, error_response
from piano.web._auth import Tokens, bearer
from piano.web._names import SURFACE
from schemas import events as ev

if TYPE_CHECKING:
    from piano.threads import ThreadDirectory

__all__ = ["SSE_PATH", "add_sse_routes", "sse_handler", "token_check"]

log = structlog.get_logger(__name__)

SSE_PATH = "/api/messages/stream"


class _Body(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    text: str
    conversation: str = "default"
    agent: str | None = None
    user: str | None = None


class _Listener(Surface):
    """Subscribed to one thread for one request: hands its events to the handler's queue."""

    def __init__(self, queue: asyncio.Queue[ev.ThreadEvent]) -> None:
        self.queue = queue

    def on_event(self, message: ev.ThreadEvent) -> None:
        self.queue.put_nowait(message)


def token_check(tokens: Tokens) -> Callable[[web.Request], bool]:
    """`check_token` for the web surface's tokens: a valid ``Authorization: Bearer``."""
    return lambda request: tokens.check(bearer(request)) == "ok"


def _frame(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def _frames(event: ev.ThreadEvent, agent: str) -> tuple[list[bytes], str]:
    """The SSE frames one thread event becomes, and who is speaking after it."""
    match event:
        case ev.TurnStarted(agent=starting) if starting != agent:
            return [_frame("agent", {"agent": starting, "previous": agent or None})], starting
        case ev.ItemDelta(stream="text", item_id=item_id, delta=delta):
            return [_frame("delta", {"item_id": item_id, "text": delta})], agent
        case ev.ItemStarted(item=item) if item.kind in ("tool_call", "command"):
            tool = item.tool if item.kind == "tool_call" else "shell"
            arguments = item.arguments if item.kind == "tool_call" else item.command
            call = {"item_id": item.id, "tool": tool, "arguments": arguments}
            return [_frame("tool_call", call)], agent
        case ev.ItemCompleted(item=item) if item.kind in ("tool_call", "command"):
            data: dict[str, Any] = {
                "item_id": item.id,
                "tool": item.tool if item.kind == "tool_call" else "shell",
                "status": item.status,
                "output": item.output,
                "exit_code": item.exit_code,
            }
            return [_frame("tool_result", data)], agent
        case ev.ItemCompleted(item=item) if item.kind == "handoff" and item.agent:
            return [_frame("agent", {"agent": item.agent, "previous": agent or None})], item.agent
        case ev.ApprovalRequested():
            data = {"approval_id": event.approval_id, "kind": event.kind, "command": event.command}
            call = {"tool": event.tool, "arguments": event.arguments}
            changes = {"changes": msgspec.to_builtins(event.changes), "reason": event.reason}
            return [_frame("approval", {**data, **call, **changes})], agent
        case ev.Notice(level=level, message=message, retrying=retrying):
            notice: dict[str, Any] = {"level": level, "message": message, "retrying": retrying}
            return [_frame("notice", notice)], agent
        case ev.TurnCompleted(status=status, response=response, error=error):
            frames = [_frame("error", {"message": error or status})] if status == "failed" else []
            done = {"status": status, "response": response, "agent": agent, "error": error}
            return [*frames, _frame("done", done)], agent
    return [], agent


def sse_handler(
    *,
    system: ActorSystem,
    subscriptions: Registry,
    directory: ThreadDirectory,
    default_agent: str,
    check_token: Callable[[web.Request], bool],
    surface: str = SURFACE,
    keepalive: float = 15.0,
) -> Callable[[web.Request], Any]:
    """The aiohttp handler of the SSE chat endpoint (see the module documentation)."""

    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            return await stream(request)
        except ApiError as exc:  # before the stream starts
            return error_response(exc)

    async def stream(request: web.Request) -> web.StreamResponse:
        if not check_token(request):
            raise ApiError("unauthorized", "send Authorization: Bearer <token>")
        try:
            body = msgspec.json.decode(await request.read(), type=_Body)
        except msgspec.DecodeError as exc:
            raise ApiError("bad_json", f"bad request body: {exc}") from None
        threads = system.whereis(THREADS)
        if threads is None:
            raise ApiError("unavailable", "the daemon is restarting its threads; try again")
        key = ThreadKey(surface, body.conversation, body.agent or default_agent)
        try:
            thread = await open_conversation(threads, key)
        except UnknownAgent as exc:
            raise ApiError("not_found", str(exc.args[0] if exc.args else exc)) from None
        thread_id, _ = await directory.thread_for(key)
        queue: asyncio.Queue[ev.ThreadEvent] = asyncio.Queue()
        listener = await system.spawn(_Listener(queue))
        subscribe(subscriptions, thread_id, listener)
        try:
            interaction = ev.Interaction(
                id=f"sse-{secrets.token_hex(6)}", text=body.text, user=body.user
            )
            outcome = await post_message(thread, interaction)
            response = web.StreamResponse(
                headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
            )
            await response.prepare(request)
            first = {
                "thread_id": thread_id,
                "interaction_id": interaction.id,
                "text": body.text,
                "outcome": outcome,
            }
            await response.write(_frame("user_message", first))
            await _stream(response, queue, interaction.id, outcome == "steered", keepalive)
            await response.write_eof()
            return response
        except (ConnectionResetError, asyncio.CancelledError):
            log.info("sse.client_gone", thread=thread_id)
            raise
        finally:
            unsubscribe(subscriptions, thread_id, listener)
            await listener.stop()

    return handle


async def _stream(
    response: web.StreamResponse,
    queue: asyncio.Queue[ev.ThreadEvent],
    interaction_id: str,
    steered: bool,
    keepalive: float,
) -> None:
    agent = ""
    while True:
        try:
            event = await asyncio.wait_for(queue.get(), keepalive)
        except TimeoutError:
            await response.write(b": keep-alive\n\n")
            continue
        if steered and isinstance(event, ev.TurnStarted):
            continue
        if not steered and event.interaction_id != interaction_id:
            continue
        frames, agent = _frames(event, agent)
        for frame in frames:
            await response.write(frame)
        if isinstance(event, ev.TurnCompleted):
            return


def add_sse_routes(
    app: web.Application,
    *,
    system: ActorSystem,
    subscriptions: Registry,
    directory: ThreadDirectory,
    default_agent: str,
    check_token: Callable[[web.Request], bool],
    surface: str = SURFACE,
) -> None:
    """Add ``POST /api/messages/stream`` to `app`."""
    app.router.add_post(
        SSE_PATH,
        sse_handler(
            system=system,
            subscriptions=subscriptions,
            directory=directory,
            default_agent=default_agent,
            check_token=check_token,
            surface=surface,
        ),
    )
