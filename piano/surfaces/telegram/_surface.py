"""`TelegramSurface`: the actor that shows Piano's conversations in Telegram.

One actor per bot, under the daemon's ``surfaces`` supervisor. It drives PTB's `Bot` itself on
the daemon's loop (no `Application`/`Updater`: see `_inbox` for why), long polling by default or
serving a webhook, and owns:

- **conversations** — a private chat, a group, or a forum topic of a group is one conversation
  (``"<chat>"`` or ``"<chat>:<topic>"``); with the agent chosen there it is the
  `ThreadKey("telegram", conversation, agent)` of its thread. Conversations are remembered in the
  database, so a restarted surface resubscribes to their threads at once;
- **progress** — one status message per turn, edited as items happen (`_progress`), then the
  answer as new messages (`_split`) or, past `document_threshold`, as a Markdown document;
- **approvals** — a message with Approve / Deny / Cancel turn buttons, replaced by the outcome
  when the request is decided, expires or is withdrawn;
- **access** — the allowlist and audit log (`_access`); in groups it answers only when
  mentioned or replied to, with the last `group_context` messages of the chat as context;
- **media** — voice notes, photos and documents (`_media`), with `media` (`piano.media.Media`);
  without it they get a polite "text only" answer.

Telegram calls go through one ordered `Outbox` per chat, so the actor never waits on Telegram,
and answers are stored until Telegram takes them (`_outbox`); incoming updates are handled one
at a time in `update_id` order (`_incoming`), and what waits on a conversation's thread (the
answer to a message, /stop, /status, a button) runs beside the actor (`detach`), so one chat
waiting on Codex never holds up another.

The surface starts without the network (`init`: database, subscriptions, stored outbox and
status messages) and reaches the Bot API in the background, retrying with back-off: the
daemon starts while Telegram is unreachable, and `describe` (``piano status``) says the surface
is DOWN, and why, until it is connected and polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import html
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from telegram import Bot, User
from telegram.error import RetryAfter, TelegramError
from telegram.request import HTTPXRequest

from actors import ActorExited, Backoff, Registry, Timer
from piano.commands import Commands
from piano.config import TelegramConfig
from piano.media import Media
from piano.store import InteractionRecord, StoreLocation, open_reader
from piano.surfaces._surface import Context, subscribe
from piano.surfaces.telegram._access import Access
from piano.surfaces.telegram._inbox import Conversation, Inbox, open_inbox
from piano.surfaces.telegram._incoming import process_update
from piano.surfaces.telegram._outbox import Outbox, Outgoing, retry_seconds
from piano.surfaces.telegram._progress import INFO, ChatPacer, TurnProgress
from piano.surfaces.telegram._sender import Route, StatusMessage, TelegramOutput
from piano.surfaces.telegram._texts import (
    COMMANDS,
    approval_keyboard,
    approval_outcome,
    approval_prompt,
)
from piano.threads import ThreadDirectory
from schemas import events as ev
from schemas.alerts import Alert

__all__ = ["Route", "TelegramSurface", "Transcripts"]

CONNECT_BACKOFF = Backoff(initial=1.0, cap=10.0)
"""How soon the surface tries to reach the Bot API again at start-up."""
POLL_BACKOFF = Backoff(initial=0.25, cap=2.0)
"""How soon a failed getUpdates is tried again: capped low, so polling resumes promptly."""

Transcripts = Callable[[str], Awaitable[str | None]]
"""Markdown transcript of a thread id (None when the store does not know the thread)."""


@dataclass(slots=True)
class _ApprovalView:
    approval_id: str
    thread_id: str
    route: Route
    prompt: str
    messages: list[int] = field(default_factory=list)


class TelegramSurface(TelegramOutput):
    """The Telegram surface; see the module documentation."""

    def __init__(
        self,
        config: TelegramConfig,
        *,
        token: str,
        subscriptions: Registry,
        directory: ThreadDirectory,
        store_path: str | StoreLocation,
        default_agent: str,
        agents: list[str],
        transcripts: Transcripts | None = None,
        webhook_secret: str | None = None,
        media: Media | None = None,
        clock: Callable[[], float] = time.monotonic,
        web_address: tuple[str, int] | None = None,
        commands: Commands | None = None,
        alert_chats: list[int] | None = None,
    ) -> None:
        self.commands = commands
        """The daemon's chat commands (`piano.commands`), run for any chat allowed to talk."""
        self.config = config
        self.alert_chats = (
            alert_chats
            if alert_chats is not None
            else [int(user) for user, role in config.users.items() if role == "admin"]
        )
        """The owner's chats, where alerts go (`alert`)."""
        self.web_address = web_address
        """The web surface's host and port, for the resume lines' link (None: no web)."""
        self.media = media
        self.token = token
        self.bot_id = token.split(":", 1)[0]
        self.subscriptions = subscriptions
        self.directory = directory
        self.store_path = store_path
        self.default_agent = config.default_agent or default_agent
        self.agents = agents
        self.transcripts = transcripts
        self.webhook_secret = webhook_secret
        self.clock = clock
        self.bot: Bot | None = None
        self.me: User | None = None
        self.inbox: Inbox | None = None
        self.access: Access | None = None
        self.conversations: dict[str, Conversation] = {}
        self.routes: dict[str, Route] = {}
        self.status: dict[str, StatusMessage] = {}
        self.pacers: dict[int, ChatPacer] = {}
        self.pacer_timers: dict[int, Timer] = {}
        self.approvals: dict[str, _ApprovalView] = {}
        self.tokens: dict[str, str] = {}
        self.replies: dict[str, int] = {}
        self.history: dict[str, list[str]] = {}
        self.context: dict[str, list[str]] = {}
        self.outboxes: dict[int, Outbox] = {}
        self.tasks: set[asyncio.Task[Any]] = set()
        self.runner: web.AppRunner | None = None
        self.draining = False
        self.closed = False
        self.connected = asyncio.Event()
        self.down: str | None = "connecting to the Bot API"

    def describe(self) -> str:
        state = "up" if self.down is None else f"DOWN: {self.down}"
        return (
            f"telegram bot {self.bot_id} ({self.config.mode}), {state}, {len(self.routes)} threads"
        )

    def format_status(self, state: dict[str, Any]) -> dict[str, Any]:
        state["token"] = "<redacted>"
        state["webhook_secret"] = "<redacted>" if state.get("webhook_secret") else None
        return state

    # -- lifecycle ----------------------------------------------------------------------------

    async def init(self) -> None:
        """Everything that needs no network: the database, the conversations' subscriptions
        (so thread events published from now on reach this surface, e.g. the daemon's
        start-up recovery), the stored outbox and open status messages. Reaching the Bot API
        is `_connect`'s, which retries for as long as it takes: the daemon starts while
        Telegram is unreachable, and `describe` says the surface is down."""
        self.trap_exits = True
        self.inbox = open_inbox(self.store_path, self.bot_id)
        self.inbox.prune(self.config.inbox_retention)
        self.access = Access(self.config, self.inbox.writer, self.bot_id)
        pool = HTTPXRequest(connection_pool_size=8)
        self.bot = Bot(
            self.token,
            base_url=self.config.base_url,
            base_file_url=self.config.file_url(),
            request=pool,
            get_updates_request=HTTPXRequest(),
        )
        for conversation in self.inbox.conversations():
            await self.track(conversation)
        self.resume_outbox()
        await self._reopen_statuses()
        if self.config.mode == "webhook":
            await self._start_webhook()
        self._spawn(self._connect(), "telegram-connect")
        self._spawn(self._reap(), "telegram-reap")

    async def _connect(self) -> None:
        """Reach the Bot API (getMe, the command menu, the webhook), trying again with
        `CONNECT_BACKOFF` for as long as it takes; then tell the actor (``"connected"``)."""
        assert self.bot is not None
        bot = self.bot
        streak = CONNECT_BACKOFF.streak(random.Random())
        while True:
            try:
                await bot.initialize()
                await bot.set_my_commands(COMMANDS)
                if self.config.mode == "webhook":
                    await self._set_webhook()
                else:
                    await bot.delete_webhook()
                break
            except RetryAfter as exc:
                delay = retry_seconds(exc)
            except TelegramError as exc:
                delay = streak.failed()
                self.down = f"the Bot API is unreachable ({self._redact(exc)})"
            except Exception as exc:
                self.ref.send(("crash", exc))
                return
            self.log.warning(
                "telegram.connect_failed",
                why=self.down,
                attempt=streak.failures,
                retry_in=round(delay, 2),
            )
            await asyncio.sleep(delay)
        self.ref.send(("connected", bot.bot))

    def _connected(self, me: User) -> None:
        self.me = me
        self.down = None
        self.connected.set()
        self.log.info("telegram.connected", bot=self.bot_id, username=me.username)
        if self.config.mode != "webhook":
            self._spawn(self._poll(), "telegram-poll")
        self.ref.send("inbox")

    def _redact(self, exc: BaseException) -> str:
        """An error's text without the token (PTB's InvalidToken quotes it)."""
        return str(exc).replace(self.token, "<token>") or type(exc).__name__

    def _spawn(self, coroutine: Awaitable[Any], name: str) -> None:
        task = asyncio.ensure_future(coroutine)
        task.set_name(name)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def detach(self, work: Awaitable[object], name: str) -> None:
        """Run `work` beside the actor: what waits on one conversation's thread (which may be
        busy starting a turn while Codex restarts) never holds up the other chats. A failure
        is logged; the update that asked for it is processed either way."""

        async def run() -> None:
            try:
                outcome = await work
            except ActorExited as exc:  # a message was recorded: the start-up recovery runs it
                self.log.warning("telegram.thread_exited", work=name, reason=str(exc))
            except Exception as exc:
                self.log.warning("telegram.work_failed", work=name, error=str(exc))
            else:
                if outcome is not None:
                    self.log.info("telegram.done", work=name, outcome=outcome)

        self._spawn(run(), name)

    async def _reap(self) -> None:
        """Release everything when the actor exits, even by a kill (terminate does not run)."""
        await self.ref.join()
        await self._close()

    async def terminate(self, reason: object) -> None:
        await self._close()

    async def _close(self) -> None:
        if self.closed:
            return
        self.closed = True
        current = asyncio.current_task()
        for task in list(self.tasks):
            if task is not current:
                task.cancel()
        for outbox in self.outboxes.values():
            await outbox.close()
        if self.runner is not None:
            await self.runner.cleanup()
        if self.bot is not None:
            with contextlib.suppress(Exception):
                await self.bot.shutdown()
        if self.inbox is not None:
            self.inbox.close()

    # -- receiving updates --------------------------------------------------------------------

    async def _poll(self) -> None:
        """Long-poll getUpdates; after a failure, try again within `POLL_BACKOFF`'s cap (2 s),
        so updates flow again within about two seconds of the Bot API coming back."""
        assert self.bot is not None
        assert self.inbox is not None
        offset = self.inbox.next_offset()
        streak = POLL_BACKOFF.streak(random.Random())
        while True:
            try:
                updates = await self.bot.get_updates(
                    offset=offset,
                    timeout=self.config.poll_timeout,
                    allowed_updates=["message", "callback_query"],
                )
            except RetryAfter as exc:
                await asyncio.sleep(retry_seconds(exc))
                continue
            except TelegramError as exc:
                delay = streak.failed()
                self.down = f"polling fails ({self._redact(exc)})"
                self.log.warning("telegram.poll_failed", error=self.down, retry_in=round(delay, 2))
                await asyncio.sleep(delay)
                continue
            except Exception as exc:
                self.ref.send(("crash", exc))
                return
            if streak.failures:
                streak.succeeded()
                self.down = None
                self.log.info("telegram.poll_resumed")
            if updates:
                self.inbox.store([update.to_dict() for update in updates])
                offset = updates[-1].update_id + 1
                self.ref.send("inbox")

    async def _start_webhook(self) -> None:
        hook = self.config.webhook
        app = web.Application()
        app.router.add_post(hook.path, self._webhook)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, hook.listen, hook.port).start()

    async def _set_webhook(self) -> None:
        assert self.bot is not None
        hook = self.config.webhook
        if hook.url:
            await self.bot.set_webhook(
                hook.url,
                secret_token=self.webhook_secret,
                allowed_updates=["message", "callback_query"],
            )

    async def _webhook(self, request: web.Request) -> web.Response:
        """Store the update, then answer 200: Telegram forgets it only after the answer."""
        secret = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
        if self.webhook_secret and not hmac.compare_digest(
            secret.encode(), self.webhook_secret.encode()
        ):
            return web.Response(status=403)
        try:
            body = await request.json()
        except ValueError:
            return web.Response(status=400)
        if not isinstance(body, dict) or not isinstance(body.get("update_id"), int):
            return web.Response(status=400)
        assert self.inbox is not None
        self.inbox.store([body])
        self.ref.send("inbox")
        return web.Response(text="ok")

    def handle_info(self, message: Any) -> Any:
        match message:
            case "inbox":
                return self._process_inbox()
            case ("connected", User() as me):
                self._connected(me)
                return None
            case ("pump", int(chat_id)):
                self.pacer_timers.pop(chat_id, None)
                self._pump(chat_id)
                return None
            case ("status_done", StatusMessage() as view, message_id, retry_after):
                return self._status_done(view, message_id, retry_after)
            case ("blocked", int(chat_id), float(seconds)):
                self._pacer(chat_id).block(self.clock(), seconds)
                return None
            case ("crash", BaseException() as exc):
                raise exc
        return super().handle_info(message)

    async def _process_inbox(self) -> None:
        if self.draining or self.me is None:
            return
        assert self.inbox is not None
        self.draining = True
        try:
            while batch := self.inbox.pending():
                for update in batch:
                    if not await process_update(self, update):
                        self.send_after(1.0, "inbox")
                        return
                    self.inbox.mark_processed(int(update["update_id"]))
        finally:
            self.draining = False

    # -- conversations ------------------------------------------------------------------------

    def route(self, conversation: Conversation) -> Route:
        return Route(
            conversation.conversation,
            conversation.chat_id,
            conversation.topic_id,
            conversation.agent,
        )

    def conversation(self, chat_id: int, topic_id: int | None) -> Conversation:
        name = str(chat_id) if topic_id is None else f"{chat_id}:{topic_id}"
        known = self.conversations.get(name)
        if known is None:
            known = Conversation(name, chat_id, topic_id, self.default_agent)
        return known

    async def track(self, conversation: Conversation) -> str:
        """Remember the conversation and subscribe to its current thread; its thread id."""
        assert self.inbox is not None
        if self.conversations.get(conversation.conversation) != conversation:
            self.conversations[conversation.conversation] = conversation
            self.inbox.remember(conversation)
        thread_id, _ = await self.directory.thread_for(self.route(conversation).key)
        self.follow(thread_id, conversation)
        return thread_id

    def follow(self, thread_id: str, conversation: Conversation) -> None:
        self.routes[thread_id] = self.route(conversation)
        subscribe(self.subscriptions, thread_id, self.ref)

    # -- thread events ------------------------------------------------------------------------

    def _view(self, context: Context) -> StatusMessage | None:
        return self.status.get(context.thread_id)

    def turn_started(self, context: Context, event: ev.TurnStarted) -> None:
        route = self.routes.get(context.thread_id)
        if route is None:
            return
        left = self.status.pop(context.thread_id, None)
        if left is not None and left.progress.status == "running":
            left.progress.finish("interrupted")  # a turn of a previous run that never closed
            self._changed(left)
        reply_to = self.replies.get(event.interaction.id)
        view = StatusMessage(
            route,
            TurnProgress(preview_chars=self.config.preview_chars),
            reply_to,
            thread_id=context.thread_id,
            interaction_id=event.interaction.id,
        )
        self.status[context.thread_id] = view
        self.history.setdefault(context.thread_id, []).append(
            f"**{event.interaction.user or 'user'}:** {event.interaction.text}"
        )
        self._changed(view)

    def item_started(self, context: Context, item: ev.Item) -> None:
        if (view := self._view(context)) is not None:
            view.progress.item_started(item)
            self._changed(view)

    def text_delta(self, context: Context, event: ev.ItemDelta) -> None:
        if (view := self._view(context)) is not None:
            view.progress.delta(event)
            self._changed(view)

    def item_updated(self, context: Context, event: ev.ItemDelta) -> None:
        self.text_delta(context, event)

    def item_completed(self, context: Context, item: ev.Item) -> None:
        if (view := self._view(context)) is not None:
            view.progress.item_completed(item)
            self._changed(view)

    def notice(self, context: Context, event: ev.Notice) -> None:
        view = self._view(context)
        if view is not None and view.progress.status == "running":
            view.progress.set_notice(event.message)
            self._changed(view)
            return
        route = self.routes.get(context.thread_id)
        if route is not None:
            icon = {"info": INFO, "warning": "⚠️", "error": "❌"}[event.level]
            self.say(route, f"{icon} {_escape(event.message)}")

    def alert(self, alert: Alert) -> None:
        """Tell the owner's chats (durably: an alert outlives an outage of Telegram)."""
        if self.inbox is None or self.closed:
            return
        icon = "🚨" if alert.state == "opened" else "✅"
        for chat_id in self.alert_chats:
            self.send_durable(Outgoing(chat_id, f"{icon} {alert.text}", html=False))

    def turn_completed(self, context: Context, event: ev.TurnCompleted) -> None:
        route = self.routes.get(context.thread_id)
        if route is None:
            return
        view = self.status.pop(context.thread_id, None)
        reply_to = self.replies.pop(event.interaction_id or "", None)
        if view is not None:
            pacer = self._pacer(route.chat_id)
            if view.message_id is None and pacer.in_flight is not view:
                pacer.forget(view)  # not shown yet: the answer alone says it all
                view.dead = True
        answer = event.response.strip()
        self.history.setdefault(context.thread_id, []).append(
            f"**agent ({event.status}):** {answer or event.error or ''}"
        )
        self._close_turn(route, view, event.status, answer, event.error, reply_to)

    def _close_turn(
        self,
        route: Route,
        view: StatusMessage | None,
        status: str,
        answer: str | None,
        error: str | None,
        reply_to: int | None,
    ) -> None:
        """Show how a turn ended: its status message's last edit, and its answer (durably
        queued before the status message is marked answered; None: it was sent already)."""
        if view is not None:
            view.progress.finish(status, error)
            self._changed(view)
        if answer is None:
            pass
        elif answer:
            self.say_markdown(route, answer, reply_to)
        elif status != "completed":
            why = f": {error}" if error else ""
            self.say(route, f"❌ The turn {status}{_escape(why)}", reply_to=reply_to)
        elif view is None or view.dead:
            self.say(route, "✅ Done (no answer text).", reply_to=reply_to)
        if view is not None:
            view.answered = True
            if view.message_id is not None and self.inbox is not None:
                self.inbox.status_answered(route.chat_id, view.message_id)

    async def _reopen_statuses(self) -> None:
        """Take over the status messages a previous run left showing "⏳ Working…": a turn the
        store has seen end is closed now (and its answer sent if it never was); any other is
        watched again, so its closing event — from the running turn, or the daemon's start-up
        recovery — closes it."""
        assert self.inbox is not None
        rows = self.inbox.open_statuses()
        if not rows:
            return
        ended = await asyncio.to_thread(
            _ended_interactions, self.store_path, [r.interaction_id for r in rows]
        )
        for row in rows:
            route = Route(row.conversation, row.chat_id, row.topic_id, row.agent)
            view = StatusMessage(
                route,
                TurnProgress(preview_chars=self.config.preview_chars),
                message_id=row.message_id,
                thread_id=row.thread_id,
                interaction_id=row.interaction_id,
                answered=row.answered,
            )
            record = ended.get(row.interaction_id or "")
            if record is None:
                self.routes.setdefault(row.thread_id, route)
                subscribe(self.subscriptions, row.thread_id, self.ref)
                left = self.status.get(row.thread_id)
                if left is not None:  # two left open in one thread: the older one is over
                    self._close_turn(route, left, "interrupted", "", None, None)
                self.status[row.thread_id] = view
                continue
            self.log.info("telegram.status_closed_at_start", interaction=record.id)
            answer = None if row.answered else record.response.strip()
            self._close_turn(route, view, record.status, answer, record.error, None)

    def approval_requested(self, context: Context, event: ev.ApprovalRequested) -> None:
        route = self.routes.get(context.thread_id)
        if route is None:
            return
        view = _ApprovalView(event.approval_id, context.thread_id, route, approval_prompt(event))
        self.approvals[event.approval_id] = view
        self.show_approval(view)

    def show_approval(self, view: _ApprovalView) -> None:
        token = view.approval_id
        if len(f"ap|y|{token}".encode()) > 64:
            token = f"#{len(self.tokens) + 1}"
            self.tokens[token] = view.approval_id

        def sent(message_id: int) -> None:
            view.messages.append(message_id)
            if view.approval_id not in self.approvals:  # decided before the prompt was sent
                self.edit(view.route.chat_id, message_id, view.prompt)

        self.say(view.route, view.prompt, keyboard=approval_keyboard(token), sent=sent)

    def approval_withdrawn(self, context: Context, event: ev.ApprovalResolved) -> None:
        view = self.approvals.pop(event.approval_id, None)
        if view is None:
            return
        text = approval_outcome(view.prompt, event.decision, event.by)
        for message_id in view.messages:
            self.edit(view.route.chat_id, message_id, text)
        view.prompt = text

    def approval_for(self, token: str) -> _ApprovalView | None:
        return self.approvals.get(self.tokens.get(token, token))


def _ended_interactions(
    store_path: str | StoreLocation, ids: list[str | None]
) -> dict[str, InteractionRecord]:
    """The interactions among `ids` that the store has seen end."""
    ended: dict[str, InteractionRecord] = {}
    with open_reader(store_path) as reader:
        for interaction_id in ids:
            record = reader.interaction(interaction_id) if interaction_id else None
            if record is not None and record.status in ("completed", "failed", "interrupted"):
                ended[record.id] = record
    return ended


def _escape(text: str) -> str:
    return html.escape(text, quote=False)
