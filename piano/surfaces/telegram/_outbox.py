"""One ordered sender per chat: every Telegram call leaves in order and is retried until it is
delivered or provably undeliverable.

The surface actor never waits on Telegram: it enqueues an operation and carries on. Each chat's
worker runs its operations one at a time, in order, and an operation is retried — the chat's
later operations wait behind it, so order is kept — until Telegram takes it:

- **429** (`RetryAfter`): the worker waits the whole time Telegram asked, every time (the
  surface is told, so it also holds back progress edits);
- **a network failure** (a connection error, a timeout, a 5xx such as 502, which PTB raises as
  `NetworkError`) or any other error that may pass: tried again with `Backoff` (0.5 s doubling
  to 30 s), however long Telegram is unreachable;
- **refused for a reason that will not change** (`BadRequest`, `Forbidden`, `ChatMigrated`):
  dropped, logged as ``telegram.send_refused``, and `refused` is called, so the surface can
  tell the chat that a message was not delivered.

Answers are *durable* (`Outgoing`, via `Outbox.put_durable`): written to the inbox database
before they are queued and deleted once Telegram has taken them, so a message the daemon could
not deliver before it stopped is sent when it starts again (`Outbox.put_durable` with the
stored row), before anything newer for that chat. Delivery is at least once: a message Telegram
took but whose answer was lost (a timeout) is sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import random
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import msgspec
import structlog
from telegram import Bot, InputFile, LinkPreviewOptions, ReplyParameters
from telegram.constants import ParseMode
from telegram.error import BadRequest, ChatMigrated, Forbidden, RetryAfter, TelegramError
from telegram.warnings import PTBDeprecationWarning

from actors import Backoff

__all__ = ["SEND_BACKOFF", "Outbox", "Outgoing", "ptb_seconds", "retry_seconds"]

log = structlog.get_logger(__name__)

Operation = Callable[[], Awaitable[object]]

SEND_BACKOFF = Backoff(initial=0.5, cap=30.0)
"""How long a chat's worker waits before trying a failed call again (not a 429's)."""

REFUSED = (BadRequest, Forbidden, ChatMigrated)
"""Telegram's answers that trying again will not change."""


def ptb_seconds(owner: object, name: str) -> float | None:
    """The duration `owner.name` in seconds, None if it has none. PTB 22 gives durations as
    numbers and warns that they become timedeltas: both forms are accepted, without the warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value: object = getattr(owner, name, None)
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    return float(value) if isinstance(value, int | float) else None


def retry_seconds(exc: RetryAfter) -> float:
    """Seconds Telegram asked to wait."""
    seconds = ptb_seconds(exc, "retry_after")
    assert seconds is not None
    return seconds


class Outgoing(msgspec.Struct, frozen=True):
    """A message as the outbox stores it: a text message, or (`filename`) a document whose
    bytes are stored beside it, with `text` as its caption."""

    chat_id: int
    text: str
    topic_id: int | None = None
    reply_to: int | None = None
    html: bool = True
    filename: str | None = None
    notify_refusal: bool = True
    """Tell the chat when Telegram refuses it (not for that very notice)."""

    async def send(self, bot: Bot, data: bytes | None) -> None:
        reply = (
            ReplyParameters(self.reply_to, allow_sending_without_reply=True)
            if self.reply_to
            else None
        )
        if self.filename is not None:
            await bot.send_document(
                self.chat_id,
                InputFile(data or b"", filename=self.filename),
                caption=self.text,
                message_thread_id=self.topic_id,
                reply_parameters=reply,
            )
            return
        await bot.send_message(
            self.chat_id,
            self.text,
            parse_mode=ParseMode.HTML if self.html else None,
            message_thread_id=self.topic_id,
            reply_parameters=reply,
            link_preview_options=LinkPreviewOptions(is_disabled=True),
        )


_encode = msgspec.json.Encoder()
_decode = msgspec.json.Decoder(Outgoing)


def encode(outgoing: Outgoing) -> str:
    return _encode.encode(outgoing).decode()


def decode(body: str) -> Outgoing:
    return _decode.decode(body)


@dataclass(frozen=True, slots=True)
class _Entry:
    what: str
    operation: Operation
    row: int | None = None
    outgoing: Outgoing | None = None


class Outbox:
    """The sender of one chat; see the module documentation.

    `on_retry_after(chat, seconds)` is called on a 429; `delivered(row)` once a durable message
    was taken (or refused); `refused(outgoing, error)` when Telegram refused a durable one.
    Nothing is sent before `ready` is set (the surface has reached the Bot API).
    """

    def __init__(
        self,
        chat_id: int,
        bot: Bot,
        *,
        on_retry_after: Callable[[int, float], None],
        delivered: Callable[[int], None],
        refused: Callable[[Outgoing, TelegramError], None],
        ready: asyncio.Event | None = None,
        backoff: Backoff = SEND_BACKOFF,
    ) -> None:
        self.chat_id = chat_id
        self.bot = bot
        self.on_retry_after = on_retry_after
        self.delivered = delivered
        self.refused = refused
        self.ready = ready
        self.backoff = backoff
        self.rng = random.Random()
        self.queue: asyncio.Queue[_Entry] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    def put(self, what: str, operation: Operation) -> None:
        """Queue a call that lives only as long as this process (edits, buttons, typing)."""
        self._put(_Entry(what, operation))

    def put_durable(self, row: int, outgoing: Outgoing, data: bytes | None = None) -> None:
        """Queue the stored message `row` (see `Inbox.outbox_add`)."""

        async def send() -> None:
            await outgoing.send(self.bot, data)

        what = "sendDocument" if outgoing.filename is not None else "sendMessage"
        self._put(_Entry(what, send, row, outgoing))

    def _put(self, entry: _Entry) -> None:
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(
                self._run(), name=f"telegram-outbox-{self.chat_id}"
            )
        self.queue.put_nowait(entry)

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    async def _run(self) -> None:
        while True:
            entry = await self.queue.get()
            if self.ready is not None:
                await self.ready.wait()
            await self._deliver(entry)

    async def _deliver(self, entry: _Entry) -> None:
        streak = self.backoff.streak(self.rng)
        while True:
            try:
                await entry.operation()
            except RetryAfter as exc:
                seconds = retry_seconds(exc)
                log.info(
                    "telegram.retry_after", chat=self.chat_id, what=entry.what, seconds=seconds
                )
                self.on_retry_after(self.chat_id, seconds)
                await asyncio.sleep(seconds)
                continue
            except REFUSED as exc:
                log.warning(
                    "telegram.send_refused", chat=self.chat_id, what=entry.what, error=str(exc)
                )
                if entry.outgoing is not None:
                    self.refused(entry.outgoing, exc)
            except TelegramError as exc:
                delay = streak.failed()
                log.warning(
                    "telegram.send_retrying",
                    chat=self.chat_id,
                    what=entry.what,
                    error=str(exc),
                    attempt=streak.failures,
                    retry_in=round(delay, 2),
                )
                await asyncio.sleep(delay)
                continue
            except Exception as exc:
                log.error("telegram.send_crashed", chat=self.chat_id, what=entry.what, exc_info=exc)
            if entry.row is not None:
                self.delivered(entry.row)
            return
