"""`Schedules`: runs each schedule's prompt when it is due and posts the answer to its chat.

One actor (registered as `SCHEDULES`) in the daemon's tree. It keeps every live schedule in
memory, mirrored in the store (`Book`), and one timer — the runtime's `send_after` — for the
earliest due time (re-armed at most `MAX_WAIT` seconds ahead, so a changed wall clock or a
suspended machine is noticed). When it fires (`Tick`), each due schedule runs:

- **Its own thread.** A run is a message, the schedule's prompt, posted to the conversation
  ``ThreadKey("schedules", ID, agent)`` through the client API of `piano.threads`, so it is a
  turn like any other: stored, recovered after a crash, shown by `piano chat --thread`.
- **Once, however late.** A schedule whose due time went by while the daemon was down runs
  once at start, and its ``last_due`` jumps to the latest due time at or before now (the
  count of the runs it stands for is logged as ``missed``): ten missed hours of an hourly
  schedule are one run, not ten.
- **Never two at once.** A run whose previous one is still going (the conversation has a turn
  running or queued, also one recovered after a restart) is skipped and logged
  (``schedules.run_skipped``); its due time counts as handled.
- **The answer to the chat.** The actor subscribes to its schedules' threads like a surface;
  when a run's turn completes, its answer (or why it failed) goes to the schedule's chat as a
  `Notice` on that chat's thread, through the event pipeline: every surface showing that
  thread shows it (the terminal chat, Telegram's chat, the web page), and it is journaled.
- **Durable.** ``[schedules.NAME]`` are written to the store at start (a changed timing
  restarts its count; one removed from the file is cancelled); ``/schedule`` adds one,
  ``/unschedule`` cancels it. What ran last is stored before the next is computed, so a
  restart neither repeats nor loses a due time (a kill between posting a run and storing its
  due time may, at the next start, find that run recovered and still going: it is skipped).

A run that cannot be posted (the store refused it, its agent is gone) is logged
(``schedules.run_failed``) and tried again `RETRY` seconds later; its due time is kept, so it
is not lost. The clock is injectable (``clock``: Unix seconds), so tests drive due times by
setting the clock and sending `Tick`, without waiting.
"""

from __future__ import annotations

import contextlib
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Final

from actors import NOREPLY, ActorRef, Caller, Registry, Timer
from piano.agents import Publish, ThreadDirectory, ThreadKey
from piano.config import Config, Timing, parse_timing
from piano.schedules._book import Book, ScheduleRow
from piano.store import StoreError, StoreUnavailable
from piano.surfaces import Surface, subscribe, unsubscribe
from piano.threads import (
    THREADS,
    UnknownAgent,
    conversation_status,
    open_conversation,
    post_message,
)
from schemas import events as ev

__all__ = [
    "MAX_WAIT",
    "RETRY",
    "SCHEDULES",
    "SURFACE",
    "AddSchedule",
    "CancelSchedule",
    "ListSchedules",
    "ScheduleView",
    "Schedules",
    "Tick",
    "add_schedule",
    "cancel_schedule",
    "list_schedules",
]

SCHEDULES: Final = "schedules"
"""The registered name of the `Schedules` actor."""
SURFACE: Final = "schedules"
"""The surface name in the keys of the schedules' own threads (``ThreadKey.surface``)."""
MAX_WAIT: Final = 60.0
"""The longest the timer is armed ahead, in seconds."""
RETRY: Final = 30.0
"""Seconds before a run that could not be posted is tried again."""


@dataclass(frozen=True, slots=True)
class Tick:
    """Run what is due now (the timer's message; tests send it after moving the clock)."""


@dataclass(frozen=True, slots=True)
class AddSchedule:
    """Add a schedule made in a chat; answers its `ScheduleView`."""

    agent: str
    prompt: str
    timing: Timing
    destination: ThreadKey
    created_by: str | None


@dataclass(frozen=True, slots=True)
class ListSchedules:
    """The live schedules posting to `destination` (None: all); answers `ScheduleView`s."""

    destination: ThreadKey | None


@dataclass(frozen=True, slots=True)
class CancelSchedule:
    """Cancel a chat's schedule; answers the cancelled `ScheduleView`, or raises `LookupError`
    (no such live schedule, or not `destination`'s when it is not None) or `PermissionError`
    (a ``[schedules.NAME]``, which only the file removes)."""

    schedule_id: str
    destination: ThreadKey | None


@dataclass(frozen=True, slots=True)
class ScheduleView:
    """A schedule and when it runs next."""

    row: ScheduleRow
    next_due: float
    thread_id: str | None


@dataclass(slots=True)
class _Live:
    row: ScheduleRow
    next_due: float
    thread_id: str | None = None


class Schedules(Surface):
    """Runs the schedules; see the module documentation."""

    def __init__(
        self,
        config: Config,
        book: Book,
        directory: ThreadDirectory,
        subscriptions: Registry,
        publish: Publish,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.book = book
        self.directory = directory
        self.subscriptions = subscriptions
        self.publish = publish
        self.clock = clock
        self.live: dict[str, _Live] = {}
        self.by_thread: dict[str, str] = {}
        self.loaded = False
        self.timer: Timer | None = None
        self.retry_load = 1.0
        self.runs = 0
        self.skipped = 0

    def describe(self) -> str:
        if not self.loaded:
            return "loading schedules"
        return f"{len(self.live)} schedules, {self.runs} runs, {self.skipped} skipped"

    def init(self) -> None:
        self.ref.send("load")

    # -- loading --------------------------------------------------------------------------------

    async def _load(self) -> None:
        now = self.clock()
        stored = {row.id: row for row in await self.book.live()}
        for name, declared in sorted(self.config.schedules.items()):
            timing = parse_timing(declared.cron, declared.every)
            agent = declared.agent or self.config.default_agent
            destination = ThreadKey(
                declared.surface, declared.chat, self._chat_agent(declared.surface)
            )
            old = stored.get(name)
            if old is not None and old.origin != "config":
                self.log.warning("schedules.config_replaces_chat_schedule", schedule=name)
                old = None
            row = ScheduleRow(
                id=name,
                origin="config",
                agent=agent,
                prompt=declared.prompt,
                timing=timing,
                destination=destination,
                created_by=None,
                created_at=old.created_at if old else now,
                anchor=old.anchor if old and old.timing == timing else now,
                last_due=old.last_due if old and old.timing == timing else None,
            )
            if row != old:
                await self.book.add(row)
            stored[name] = row
        for row in list(stored.values()):
            if row.origin == "config" and row.id not in self.config.schedules:
                await self.book.cancel(row.id, now)
                self.log.info("schedules.removed_from_config", schedule=row.id)
                del stored[row.id]
        for row in stored.values():
            await self._track(row)
        self.loaded = True
        self.log.info("schedules.loaded", schedules=len(self.live))

    def _chat_agent(self, surface: str) -> str:
        """The agent of a conversation the surface opens without naming one."""
        telegram = self.config.telegram
        if surface == "telegram" and telegram is not None and telegram.default_agent:
            return telegram.default_agent
        return self.config.default_agent

    async def _track(self, row: ScheduleRow) -> _Live:
        since = row.last_due if row.last_due is not None else row.anchor
        live = _Live(row, row.timing.next_after(since, row.anchor))
        self.live[row.id] = live
        thread_id, _ = await self.directory.thread_for(ThreadKey(SURFACE, row.id, row.agent))
        live.thread_id = thread_id
        self.by_thread[thread_id] = row.id
        subscribe(self.subscriptions, thread_id, self.ref)
        return live

    # -- messages -------------------------------------------------------------------------------

    async def handle_info(self, message: Any) -> Any:
        match message:
            case "load":
                try:
                    await self._load()
                except StoreUnavailable as exc:
                    self.log.warning("schedules.load_deferred", error=str(exc))
                    self.send_after(self.retry_load, "load")
                    self.retry_load = min(self.retry_load * 2, MAX_WAIT)
                    return None
                await self._tick()
                return None
            case Tick():
                if self.loaded:
                    await self._tick()
                return None
            case ev.TurnCompleted() if message.thread_id in self.by_thread:
                await self._answered(message)
                return None
            case ev.Event():
                return None  # the rest of a run's events: the chat gets the answer only
        return super().handle_info(message)

    async def handle_call(self, message: Any, caller: Caller) -> Any:
        match message:
            case AddSchedule() | ListSchedules() | CancelSchedule() if not self.loaded:
                caller.fail(RuntimeError("the schedules are not loaded yet"))
                return NOREPLY
            case AddSchedule():
                try:
                    view = await self._add(message)
                except StoreError as exc:  # a full disk, a server away: the caller says so
                    self.log.warning("schedules.not_saved", error=str(exc))
                    caller.fail(exc)
                    return NOREPLY
                self._arm()
                return view
            case ListSchedules(destination=destination):
                return [
                    self._view(live)
                    for live in sorted(self.live.values(), key=lambda x: x.row.created_at)
                    if destination is None or live.row.destination == destination
                ]
            case CancelSchedule(schedule_id=schedule_id, destination=destination):
                live = self.live.get(schedule_id)
                if live is None or (
                    destination is not None and live.row.destination != destination
                ):
                    caller.fail(LookupError(schedule_id))
                    return NOREPLY
                if live.row.origin == "config":
                    caller.fail(PermissionError(schedule_id))
                    return NOREPLY
                try:
                    await self.book.cancel(schedule_id, self.clock())
                except StoreError as exc:
                    self.log.warning("schedules.not_saved", error=str(exc))
                    caller.fail(exc)
                    return NOREPLY
                del self.live[schedule_id]
                if live.thread_id is not None:
                    self.by_thread.pop(live.thread_id, None)
                    unsubscribe(self.subscriptions, live.thread_id, self.ref)
                self.log.info("schedules.cancelled", schedule=schedule_id)
                self._arm()
                return self._view(live)
        return await super().handle_call(message, caller)

    async def _add(self, message: AddSchedule) -> ScheduleView:
        schedule_id = _new_id(self.live)
        now = self.clock()
        row = ScheduleRow(
            id=schedule_id,
            origin="chat",
            agent=message.agent,
            prompt=message.prompt,
            timing=message.timing,
            destination=message.destination,
            created_by=message.created_by,
            created_at=now,
            anchor=now,
            last_due=None,
        )
        await self.book.add(row)
        live = await self._track(row)
        self.log.info(
            "schedules.added",
            schedule=schedule_id,
            timing=row.timing.describe(),
            agent=row.agent,
            surface=row.destination.surface,
        )
        return self._view(live)

    def _view(self, live: _Live) -> ScheduleView:
        return ScheduleView(live.row, live.next_due, live.thread_id)

    # -- running --------------------------------------------------------------------------------

    async def _tick(self) -> None:
        now = self.clock()
        due = sorted(
            (live for live in self.live.values() if live.next_due <= now),
            key=lambda live: live.next_due,
        )
        for live in due:
            await self._run(live, now)
        self._arm()

    def _arm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if not self.live:
            return
        wait = min(live.next_due for live in self.live.values()) - self.clock()
        self.timer = self.send_after(min(max(wait, 0.0), MAX_WAIT), Tick())

    async def _run(self, live: _Live, now: float) -> None:
        row = live.row
        due = row.timing.latest_due(now, row.anchor)
        missed = _missed(row.timing, live.next_due, due, row.anchor)
        try:
            threads = self.system.whereis(THREADS)
            if threads is None:
                raise RuntimeError("the thread router is not running")
            conversation = await open_conversation(threads, ThreadKey(SURFACE, row.id, row.agent))
            status = await conversation_status(conversation)
            if status.running or status.queued:
                self.skipped += 1
                self.log.warning(
                    "schedules.run_skipped",
                    schedule=row.id,
                    due=due,
                    reason="its previous run is still going",
                )
            else:
                # Charged to whoever made the schedule, so their [limits] count its runs (a
                # per-schedule name was a fresh daily budget per schedule, and refused an
                # owner's schedule at the default limit); a config schedule is the owner's.
                interaction = ev.Interaction(
                    id=uuid.uuid4().hex, text=row.prompt, user=row.created_by
                )
                await post_message(conversation, interaction)
                self.runs += 1
                self.log.info(
                    "schedules.run_started",
                    schedule=row.id,
                    due=due,
                    missed=missed,
                    interaction=interaction.id,
                )
            await self.book.ran(row.id, due)
        except UnknownAgent:
            # the configuration no longer has its agent: each due time is told once, not retried
            self.log.error(
                "schedules.agent_gone",
                schedule=row.id,
                agent=row.agent,
                due=due,
                hint=f"/unschedule {row.id}, or configure [agents.{row.agent}] again",
            )
            live.row = replace(row, last_due=due)
            live.next_due = row.timing.next_after(due, row.anchor)
            with contextlib.suppress(Exception):
                await self.book.ran(row.id, due)
            return
        except Exception as exc:
            self.log.error(
                "schedules.run_failed", schedule=row.id, error=exc.__class__.__name__, due=due
            )
            live.next_due = now + RETRY
            return
        live.row = replace(row, last_due=due)
        live.next_due = row.timing.next_after(due, row.anchor)

    async def _answered(self, event: ev.TurnCompleted) -> None:
        live = self.live.get(self.by_thread[event.thread_id])
        if live is None:
            return
        row = live.row
        if event.status == "completed":
            text = f"⏰ schedule {row.id} ({row.timing.describe()}): {event.response.strip()}"
        else:
            why = f": {event.error}" if event.error else ""
            text = f"⏰ schedule {row.id} ({row.timing.describe()}) {event.status}{why}"
        try:
            chat_thread, _ = await self.directory.thread_for(row.destination)
            notice = ev.Notice(
                thread_id=chat_thread,
                level="info" if event.status == "completed" else "warning",
                message=text,
                at=time.time(),
            )
            await self.publish([notice])
        except Exception as exc:
            self.log.error("schedules.post_failed", schedule=row.id, error=repr(exc))
            return
        self.log.info(
            "schedules.posted",
            schedule=row.id,
            surface=row.destination.surface,
            status=event.status,
        )


def _missed(timing: Timing, first: float, latest: float, anchor: float) -> int:
    """How many due times from `first` to `latest` one run stands for (at most 1000 counted)."""
    count, at = 1, first
    while count < 1000:
        at = timing.next_after(at, anchor)
        if at > latest:
            break
        count += 1
    return count - 1


def _new_id(taken: dict[str, Any]) -> str:
    while True:
        schedule_id = "s" + secrets.token_hex(3)
        if schedule_id not in taken:
            return schedule_id


TIMEOUT: Final = 60.0
"""Seconds the client functions wait (a call may queue behind a run being posted)."""


async def add_schedule(schedules: ActorRef, message: AddSchedule) -> ScheduleView:
    """Add a chat's schedule; its view (with its id and next due time)."""
    view: ScheduleView = await schedules.call(message, timeout=TIMEOUT)
    return view


async def list_schedules(schedules: ActorRef, destination: ThreadKey | None) -> list[ScheduleView]:
    """The live schedules posting to `destination` (None: every one)."""
    views: list[ScheduleView] = await schedules.call(ListSchedules(destination), timeout=TIMEOUT)
    return views


async def cancel_schedule(
    schedules: ActorRef, schedule_id: str, destination: ThreadKey | None
) -> ScheduleView:
    """Cancel a chat's schedule (see `CancelSchedule` for what it raises)."""
    view: ScheduleView = await schedules.call(
        CancelSchedule(schedule_id, destination), timeout=TIMEOUT
    )
    return view
