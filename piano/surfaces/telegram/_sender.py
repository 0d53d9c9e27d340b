"""What the Telegram surface sends: ordered per chat, 429-aware, and the paced status message.

`TelegramOutput` is the sending half of `TelegramSurface` (its base class): every Telegram call
goes through the chat's `Outbox` (so the actor never waits on Telegram and a chat's messages
keep their order), answers are split (`_split`) or sent as a document, and each turn's status
message is created and edited when the chat's `ChatPacer` allows (`_progress`), with the
result reported back to the actor as a ``("status_done", ...)`` message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from telegram import Bot, InlineKeyboardMarkup, LinkPreviewOptions, ReplyParameters
from telegram.constants import ParseMode
from telegram.error import BadRequest, RetryAfter, TelegramError

from actors import Timer
from piano.config import TelegramConfig
from piano.surfaces._surface import Surface
from piano.surfaces.telegram._inbox import Inbox, StatusRow
from piano.surfaces.telegram._names import SURFACE
from piano.surfaces.telegram._outbox import Outbox, Outgoing, decode, encode, retry_seconds
from piano.surfaces.telegram._progress import ChatPacer, TurnProgress
from piano.surfaces.telegram._split import split_markdown
from piano.threads import ThreadKey

__all__ = ["Route", "StatusMessage", "TelegramOutput"]


@dataclass(frozen=True, slots=True)
class Route:
    """Where a thread's events are shown."""

    conversation: str
    chat_id: int
    topic_id: int | None
    agent: str

    @property
    def key(self) -> ThreadKey:
        return ThreadKey(SURFACE, self.conversation, self.agent)


@dataclass(eq=False, slots=True)
class StatusMessage:
    """A turn's status message: what it shows and where."""

    route: Route
    progress: TurnProgress
    reply_to: int | None = None
    message_id: int | None = None
    shown: str | None = None
    dead: bool = False
    thread_id: str = ""
    interaction_id: str | None = None
    answered: bool = False

    def row(self) -> StatusRow:
        assert self.message_id is not None
        route = self.route
        return StatusRow(
            route.chat_id,
            self.message_id,
            self.thread_id,
            self.interaction_id,
            route.conversation,
            route.topic_id,
            route.agent,
            self.answered,
        )


class TelegramOutput(Surface):
    """Sending for `TelegramSurface`; see the module documentation."""

    config: TelegramConfig
    bot: Bot | None
    clock: Callable[[], float]
    outboxes: dict[int, Outbox]
    pacers: dict[int, ChatPacer]
    pacer_timers: dict[int, Timer]
    inbox: Inbox | None
    closed: bool
    connected: asyncio.Event

    # -- sending ------------------------------------------------------------------------------

    def outbox(self, chat_id: int) -> Outbox:
        outbox = self.outboxes.get(chat_id)
        if outbox is None:
            assert self.bot is not None
            outbox = self.outboxes[chat_id] = Outbox(
                chat_id,
                self.bot,
                on_retry_after=self._on_retry_after,
                delivered=self._delivered,
                refused=self._refused,
                ready=self.connected,
            )
        return outbox

    def _on_retry_after(self, chat_id: int, seconds: float) -> None:
        if self.ref.alive:
            self.ref.send(("blocked", chat_id, float(seconds)))

    def _delivered(self, row: int) -> None:
        if self.inbox is not None and not self.closed:
            self.inbox.outbox_done(row)

    def _refused(self, outgoing: Outgoing, error: TelegramError) -> None:
        """Telegram refused a message for good: tell the chat (once: not for this notice)."""
        if not outgoing.notify_refusal or self.closed:
            return
        what = "a file" if outgoing.filename is not None else "a message"
        self.send_durable(
            Outgoing(
                outgoing.chat_id,
                f"⚠️ Telegram refused {what} I tried to send you, so it was not delivered "
                f"({error.message}).",
                topic_id=outgoing.topic_id,
                html=False,
                notify_refusal=False,
            )
        )

    def send_durable(self, outgoing: Outgoing, data: bytes | None = None) -> None:
        """Store `outgoing` in the outbox, then queue it: sent however long Telegram is away,
        across restarts (see `_outbox`)."""
        assert self.inbox is not None
        row = self.inbox.outbox_add(outgoing.chat_id, encode(outgoing), data)
        self.outbox(outgoing.chat_id).put_durable(row, outgoing, data)

    def resume_outbox(self) -> None:
        """Queue what a previous run stored and Telegram never took, oldest first."""
        assert self.inbox is not None
        for stored in self.inbox.outbox():
            self.outbox(stored.chat_id).put_durable(stored.id, decode(stored.body), stored.data)

    def say(
        self,
        route: Route,
        text: str,
        *,
        reply_to: int | None = None,
        keyboard: InlineKeyboardMarkup | None = None,
        sent: Callable[[int], None] | None = None,
    ) -> None:
        """Send an HTML message to `route`, in order, retried until delivered; `sent` gets its
        id. A plain message is durable; one with buttons or `sent` (an approval prompt, which
        means nothing after a restart) lives only as long as this process."""
        if keyboard is None and sent is None:
            self.send_durable(Outgoing(route.chat_id, text, route.topic_id, reply_to))
            return
        bot = self.bot
        assert bot is not None

        async def send() -> None:
            message = await bot.send_message(
                route.chat_id,
                text,
                parse_mode=ParseMode.HTML,
                message_thread_id=route.topic_id,
                reply_parameters=ReplyParameters(reply_to, allow_sending_without_reply=True)
                if reply_to
                else None,
                reply_markup=keyboard,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            )
            if sent is not None:
                sent(message.message_id)

        self.outbox(route.chat_id).put("sendMessage", send)

    def say_markdown(self, route: Route, markdown: str, reply_to: int | None = None) -> None:
        """Send a Markdown answer: split into messages, or as a document when too long."""
        if len(markdown) > self.config.document_threshold:
            self.send_document(
                route,
                markdown.encode(),
                "answer.md",
                f"📄 The answer is {len(markdown)} characters long, so here it is as a document.",
                reply_to,
            )
            return
        for chunk in split_markdown(markdown, self.config.message_limit):
            html = chunk.html
            if html.strip():
                self.say(route, html, reply_to=reply_to)

    def send_document(
        self, route: Route, data: bytes, filename: str, caption: str, reply_to: int | None = None
    ) -> None:
        if len(data) > self.config.max_document_bytes:
            self.say(route, f"⚠️ {filename} is too large to send ({len(data)} bytes).")
            return
        outgoing = Outgoing(
            route.chat_id, caption, route.topic_id, reply_to, html=False, filename=filename
        )
        self.send_durable(outgoing, data)

    def edit(self, chat_id: int, message_id: int, text: str) -> None:
        """Replace a message's text and remove its buttons."""
        bot = self.bot
        assert bot is not None

        async def edit() -> None:
            try:
                await bot.edit_message_text(
                    text, chat_id=chat_id, message_id=message_id, parse_mode=ParseMode.HTML
                )
            except BadRequest as exc:
                if "not modified" not in str(exc).lower():
                    raise

        self.outbox(chat_id).put("editMessageText", edit)

    # -- progress -----------------------------------------------------------------------------

    def _pacer(self, chat_id: int) -> ChatPacer:
        pacer = self.pacers.get(chat_id)
        if pacer is None:
            interval = (
                self.config.edit_interval_group
                if chat_id < 0
                else self.config.edit_interval_private
            )
            pacer = self.pacers[chat_id] = ChatPacer(interval)
        return pacer

    def _changed(self, view: StatusMessage) -> None:
        if view.dead:
            return
        pacer = self._pacer(view.route.chat_id)
        if view.progress.render() != view.shown:
            pacer.mark(view)
        self._pump(view.route.chat_id)

    def _pump(self, chat_id: int) -> None:
        pacer = self._pacer(chat_id)
        key, delay = pacer.poll(self.clock())
        if key is None:
            if delay is not None and chat_id not in self.pacer_timers:
                self.pacer_timers[chat_id] = self.send_after(delay, ("pump", chat_id))
            return
        assert isinstance(key, StatusMessage)
        pacer.begin(key, self.clock())
        self._sync_status(key)

    def _sync_status(self, view: StatusMessage) -> None:
        """Create or edit `view`'s message with its latest text; report back to the actor.
        A network failure is left to the outbox, which tries again (rendering the latest text
        each time) until Telegram answers."""
        bot = self.bot
        ref = self.ref
        assert bot is not None

        async def sync() -> None:
            text = view.progress.render()
            message_id, retry_after = view.message_id, None
            try:
                if view.message_id is None:
                    message = await bot.send_message(
                        view.route.chat_id,
                        text,
                        parse_mode=ParseMode.HTML,
                        message_thread_id=view.route.topic_id,
                        reply_parameters=ReplyParameters(
                            view.reply_to, allow_sending_without_reply=True
                        )
                        if view.reply_to
                        else None,
                        disable_notification=True,
                    )
                    message_id = message.message_id
                else:
                    await bot.edit_message_text(
                        text,
                        chat_id=view.route.chat_id,
                        message_id=view.message_id,
                        parse_mode=ParseMode.HTML,
                    )
                view.shown = text
            except RetryAfter as exc:
                retry_after = retry_seconds(exc)
            except BadRequest as exc:
                if "not modified" in str(exc).lower():
                    view.shown = text
                else:
                    view.dead = True
                    self.log.warning("telegram.status_failed", error=str(exc))
            if ref.alive:
                ref.send(("status_done", view, message_id, retry_after))

        self.outbox(view.route.chat_id).put("status", sync)

    def _status_done(
        self, view: StatusMessage, message_id: int | None, retry_after: float | None
    ) -> None:
        created = view.message_id is None and message_id is not None
        view.message_id = message_id
        if self.inbox is not None and message_id is not None:
            if view.dead or (
                view.progress.status != "running" and view.shown == view.progress.render()
            ):
                self.inbox.status_closed(view.route.chat_id, message_id)
            elif created:
                self.inbox.status_shown(view.row())
        pacer = self._pacer(view.route.chat_id)
        pacer.done(self.clock(), retry_after)
        if not view.dead and view.progress.render() != view.shown:
            pacer.mark(view)
        self._pump(view.route.chat_id)
