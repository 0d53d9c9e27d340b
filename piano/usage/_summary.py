"""`DailySummary`: yesterday's usage, posted to the owner's chat once a day after 00:00 UTC.

One actor (registered as `USAGE_SUMMARY`) in the daemon's tree, with ``[usage]
daily_summary`` on. It keeps one timer — the runtime's `send_after` — for the next 00:00 UTC,
re-armed at most `MAX_WAIT` seconds ahead (a changed wall clock or a suspended machine is
noticed). When the day has turned (`Tick`), it reads the day that ended from the store
(`piano.usage.report`: turns, tokens and cost, per user and per agent) and posts it as a
`Notice` on the owner's chat's thread (``[usage] summary_surface`` / ``summary_chat``, with the
default agent) through the event pipeline, so every surface showing that chat shows it and it
is journaled — the way schedules post their answers. A day without a turn is not posted.

At start the next summary is the coming midnight's: a day the daemon was down at its end is
not summarised later (``/usage`` and the dashboard still show it), and a restart never posts
one day twice. A summary the store cannot give or the pipeline refuses is logged
(``usage.summary_failed``) and tried again `RETRY` seconds later, for the same day. The clock
is injectable, so tests drive the day by setting the clock and sending `Tick`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from actors import Actor, Timer
from piano.config import DAY, day_start
from piano.threads import ThreadDirectory, ThreadKey
from piano.usage._report import report, summary_text
from schemas import events as ev

if TYPE_CHECKING:
    from piano.agents import Publish
    from piano.config import Config

__all__ = ["MAX_WAIT", "RETRY", "USAGE_SUMMARY", "DailySummary", "Tick"]

USAGE_SUMMARY: Final = "usage_summary"
"""The name the daily summary's actor registers under."""

MAX_WAIT: Final = 3600.0
"""The longest the timer waits before looking at the clock again."""

RETRY: Final = 300.0
"""Seconds before a summary that could not be posted is tried again."""


class Tick:
    """Look at the clock: post the summary of a day that has ended since the last one."""


class DailySummary(Actor):
    """See the module documentation."""

    def __init__(
        self,
        config: Config,
        directory: ThreadDirectory,
        publish: Publish,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.directory = directory
        self.publish = publish
        self.clock = clock
        self.due = day_start(clock()) + DAY
        """When the next summary is due: the end of the day it sums."""
        self.timer: Timer | None = None
        self.posted = 0

    @property
    def chat(self) -> ThreadKey:
        usage = self.config.usage
        return ThreadKey(usage.summary_surface, usage.summary_chat, self.config.default_agent)

    def describe(self) -> str:
        due = datetime.fromtimestamp(self.due, UTC).strftime("%Y-%m-%d %H:%M UTC")
        chat = self.chat
        return f"next summary {due} to {chat.surface}:{chat.conversation}, {self.posted} posted"

    async def init(self) -> None:
        self._arm()

    def _arm(self, wait: float | None = None) -> None:
        if self.timer is not None:
            self.timer.cancel()
        if wait is None:
            wait = min(MAX_WAIT, max(0.0, self.due - self.clock()))
        self.timer = self.send_after(wait, Tick())

    async def handle_info(self, message: Any) -> None:
        if not isinstance(message, Tick):
            await super().handle_info(message)
            return
        if self.clock() < self.due:
            self._arm()
            return
        day = self.due - DAY
        try:
            await self._post(day)
        except Exception as exc:
            self.log.error("usage.summary_failed", day=day, error=repr(exc))
            self._arm(RETRY)
            return
        self.posted += 1
        self.due = day_start(self.clock()) + DAY
        self._arm()

    async def _post(self, day: float) -> None:
        """Post the summary of the UTC day starting at `day` (nothing for a day without use)."""
        summed = await report(self.config, since=day, until=day + DAY)
        name = datetime.fromtimestamp(day, UTC).strftime("%Y-%m-%d")
        if not (summed.total.turns or summed.total.tokens):
            self.log.info("usage.summary_empty", day=name)
            return
        text = summary_text(summed, f"Usage on {name} (UTC)")
        thread_id, _ = await self.directory.thread_for(self.chat)
        notice = ev.Notice(thread_id=thread_id, level="info", message=text, at=self.clock())
        await self.publish([notice])
        self.log.info("usage.summary_posted", day=name, thread=thread_id)
