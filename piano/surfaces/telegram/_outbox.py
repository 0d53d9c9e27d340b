"""One ordered sender per chat: Telegram calls leave in the order the surface made them.

The surface actor never waits on Telegram: it enqueues an operation and carries on. Each chat's
worker runs its operations one at a time. An operation Telegram answers with 429 (`RetryAfter`)
pauses that chat's worker for the time Telegram asked and is tried again (the surface is told,
so it also holds back progress edits); one failing otherwise is logged and dropped, so a
message Telegram refuses cannot block the chat.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import warnings
from collections.abc import Awaitable, Callable

import structlog
from telegram.error import RetryAfter, TelegramError
from telegram.warnings import PTBDeprecationWarning

__all__ = ["Outbox", "ptb_seconds", "retry_seconds"]

log = structlog.get_logger(__name__)

Operation = Callable[[], Awaitable[object]]


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


class Outbox:
    """The sender of one chat; see the module documentation."""

    def __init__(
        self, chat_id: int, on_retry_after: Callable[[int, float], None], attempts: int = 5
    ) -> None:
        self.chat_id = chat_id
        self.on_retry_after = on_retry_after
        self.attempts = attempts
        self.queue: asyncio.Queue[tuple[str, Operation]] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    def put(self, what: str, operation: Operation) -> None:
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(
                self._run(), name=f"telegram-outbox-{self.chat_id}"
            )
        self.queue.put_nowait((what, operation))

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    async def _run(self) -> None:
        while True:
            what, operation = await self.queue.get()
            for attempt in range(1, self.attempts + 1):
                try:
                    await operation()
                    break
                except RetryAfter as exc:
                    seconds = retry_seconds(exc)
                    log.info("telegram.retry_after", chat=self.chat_id, what=what, seconds=seconds)
                    self.on_retry_after(self.chat_id, seconds)
                    if attempt == self.attempts:
                        log.warning("telegram.send_gave_up", chat=self.chat_id, what=what)
                        break
                    await asyncio.sleep(seconds)
                except TelegramError as exc:
                    log.warning(
                        "telegram.send_failed", chat=self.chat_id, what=what, error=str(exc)
                    )
                    break
                except Exception as exc:
                    log.error("telegram.send_crashed", chat=self.chat_id, what=what, exc_info=exc)
                    break
