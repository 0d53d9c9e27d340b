"""Schedules (`piano.schedules`): when a schedule is due, the chat command grammar, and the
`Schedules` actor against the real `Threads` router, a real SQLite store of schedules and a
backend whose turns stay open until the test ends them — with a clock the test sets, and
`Tick` sent by the test instead of waiting for the timer.

The guarantees: a due schedule runs as a turn on its own thread and its answer is posted to
its chat; a schedule missed for many due times runs once; a run still going when the next is
due is skipped (and logged); config schedules are stored, and one removed from the file is
cancelled; a chat cancels only its own schedules, and config ones only in the file."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import pytest
import structlog

from actors import ActorRef, ActorSystem, Registry
from piano.agents import BACKENDS, Publish, ThreadKey, Turn, register_backend
from piano.commands import CommandError, Commands
from piano.config import AgentConfig, Config, DaemonConfig, ScheduleConfig, Timing, parse_timing
from piano.schedules import (
    SCHEDULES,
    SURFACE,
    ListSchedules,
    ScheduleRow,
    Schedules,
    ScheduleView,
    SqliteSchedules,
    Tick,
)
from piano.schedules._commands import parse_schedule
from piano.store import StoreFull
from piano.surfaces import deliver
from piano.threads import (
    THREAD_SUPERVISOR,
    THREADS,
    MemoryDirectory,
    Threads,
    open_conversation,
)
from schemas import events as ev
from supervisors import DynamicSupervisor
from tests.agents.echo_backend import EchoBackend, EchoConversation
from tests.piano.conftest import Events

pytestmark = pytest.mark.anyio

HOUR = 3600.0
START = datetime(2026, 3, 2, 9, 0, 0).astimezone().timestamp()  # a Monday, 09:00 local time
CHAT = ThreadKey("terminal", "default", "default")

# -- timing --------------------------------------------------------------------------------------


def _local(*fields: int) -> float:
    return datetime(*fields).astimezone().timestamp()  # type: ignore[arg-type]


def test_an_interval_is_due_at_its_anchor_plus_whole_intervals_and_never_drifts() -> None:
    every = parse_timing(None, "10m")
    assert every == Timing(every=600.0)
    assert every.next_after(START, START) == START + 600
    assert every.next_after(START + 601, START) == START + 1200  # a late run keeps the grid
    assert every.latest_due(START + 599, START) == START
    assert every.latest_due(START + 3 * 600 + 5, START) == START + 1800
    assert parse_timing(None, "1h30m").every == 5400
    assert parse_timing(None, "2d").every == 2 * 86400


def test_a_cron_expression_is_due_at_its_next_matching_local_minute() -> None:
    weekdays_at_8 = parse_timing("0 8 * * 1-5", None)
    friday_evening = _local(2026, 3, 6, 18, 0)
    assert weekdays_at_8.next_after(friday_evening, 0) == _local(2026, 3, 9, 8, 0)  # Monday
    assert weekdays_at_8.latest_due(friday_evening, 0) == _local(2026, 3, 6, 8, 0)
    exactly = _local(2026, 3, 6, 8, 0)
    assert weekdays_at_8.latest_due(exactly, 0) == exactly  # a due time at now counts
    assert weekdays_at_8.next_after(exactly, 0) == _local(2026, 3, 9, 8, 0)
    assert parse_timing("@daily", None).next_after(friday_evening, 0) == _local(2026, 3, 7)


@pytest.mark.parametrize(
    ("argument", "says"),
    [
        ("", "Write /schedule every 30m PROMPT"),
        ("every 5x check", "'5x' is not an interval: write a number and a unit"),
        ("every 0s check", "'0s' is too short"),
        ("cron 61 * * * * check", "'61 * * * *' is not a cron expression: write five fields"),
        ("cron * * check", "A cron expression has five fields"),
        ("cron @sometimes check", "'@sometimes' is not a cron expression"),
        ("every 10m", "Say what to ask after the timing."),
        ("daily check the build", "Write /schedule every 30m PROMPT"),
    ],
)
def test_a_bad_schedule_command_is_one_sentence_the_user_can_act_on(
    argument: str, says: str
) -> None:
    with pytest.raises(CommandError) as refused:
        parse_schedule(argument)
    assert str(refused.value).startswith(says), str(refused.value)
    assert "\n" not in str(refused.value)


def test_the_schedule_command_keeps_the_prompt_as_typed() -> None:
    timing, prompt = parse_schedule("every 30m  check the build,  then *report*")
    assert (timing, prompt) == (Timing(every=1800.0), "check the build,  then *report*")
    timing, prompt = parse_schedule("cron 0 8 * * 1-5 summarise * the news")
    assert (timing, prompt) == (Timing(cron="0 8 * * 1-5"), "summarise * the news")
    timing, prompt = parse_schedule("CRON @Daily what is on today?")
    assert (timing, prompt) == (Timing(cron="@daily"), "what is on today?")


# -- the actor -------------------------------------------------------------------------------------

_turns = itertools.count(1)


class HoldConversation(EchoConversation):
    """A turn starts and stays running until the conversation is sent ``"finish"``, which
    answers "done: <text>"."""

    async def _begin(self, interaction: ev.Interaction) -> None:
        self.turn = Turn(interaction, f"hold-{next(_turns)}")
        self.emit(ev.TurnStarted(interaction=interaction, agent=self.key.agent, **self.meta()))

    async def handle_info(self, message: Any) -> None:
        if message == "finish" and self.turn is not None:
            answer = f"done: {self.turn.interaction.text}"
            done = ev.TurnCompleted(status="completed", response=answer, **self.meta())
            await self._end_turn([done])
            await self.flush()
            return
        await super().handle_info(message)


class HoldBackend(EchoBackend):
    conversation_class = HoldConversation


@pytest.fixture
def hold_registered() -> Iterator[None]:
    register_backend("hold", f"{__name__}:HoldBackend")
    yield
    BACKENDS.pop("hold", None)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class World:
    system: ActorSystem
    config: Config
    book: SqliteSchedules
    directory: MemoryDirectory
    events: Events
    subscriptions: Registry
    publish: Publish
    threads: ActorRef
    clock: Clock

    async def start(self) -> ActorRef:
        """The `Schedules` actor, its loading done (a call queues behind it)."""
        ref = await self.system.spawn(
            Schedules(
                self.config, self.book, self.directory, self.subscriptions, self.publish, self.clock
            ),
            name=SCHEDULES,
        )
        await ref.call(ListSchedules(None))
        return ref

    async def tick(self, schedules: ActorRef, at: float) -> list[ScheduleView]:
        """Move the clock to `at`, tick, and answer the schedules once the tick is handled."""
        self.clock.now = at
        schedules.send(Tick())
        views: list[ScheduleView] = await schedules.call(ListSchedules(None))
        return views

    def started(self, thread_id: str) -> list[ev.TurnStarted]:
        return cast("list[ev.TurnStarted]", self.events.of(thread_id, ev.TurnStarted))

    async def finish(self, key: ThreadKey) -> None:
        (await open_conversation(self.threads, key)).send("finish")


@asynccontextmanager
async def world(
    tmp_path: Path, schedules: dict[str, ScheduleConfig] | None = None
) -> AsyncIterator[World]:
    config = Config(
        daemon=DaemonConfig(state_dir=str(tmp_path)),
        agents={"default": AgentConfig(backend="hold", workspace=str(tmp_path / "work"))},
        schedules=schedules or {},
    )
    book = SqliteSchedules(tmp_path / "piano.db")
    directory = MemoryDirectory()
    events = Events()
    subscriptions = Registry(keys="duplicate")

    async def publish(batch: list[ev.ThreadEvent]) -> None:
        await events(batch)
        for event in batch:
            deliver(subscriptions, event)

    async with ActorSystem() as system:
        await system.spawn(DynamicSupervisor(), name=THREAD_SUPERVISOR)
        threads = await system.spawn(
            Threads(config, directory, publish, {"hold": HoldBackend()}), name=THREADS
        )
        try:
            clock = Clock(START)
            yield World(
                system, config, book, directory, events, subscriptions, publish, threads, clock
            )
        finally:
            book.close()


def _schedule_key(schedule_id: str) -> ThreadKey:
    return ThreadKey(SURFACE, schedule_id, "default")


def _hourly(schedule_id: str, agent: str, prompt: str, *, last_due: float | None) -> ScheduleRow:
    """A chat's hourly schedule made at START, as the store keeps it."""
    return ScheduleRow(
        id=schedule_id,
        origin="chat",
        agent=agent,
        prompt=prompt,
        timing=Timing(every=HOUR),
        destination=CHAT,
        created_by="ada",
        created_at=START,
        anchor=START,
        last_due=last_due,
    )


async def _row(book: SqliteSchedules, schedule_id: str) -> ScheduleRow:
    [row] = [row for row in await book.live() if row.id == schedule_id]
    return row


async def _command(w: World, text: str, *, key: ThreadKey = CHAT, owner: bool = True) -> str:
    reply = await Commands(w.config).run(
        text, system=w.system, key=key, thread_id=None, user="ada", owner=owner
    )
    assert reply is not None
    return reply


async def test_a_due_schedule_runs_on_its_own_thread_and_its_answer_is_posted_to_its_chat(
    tmp_path: Path, hold_registered: None
) -> None:
    async with world(tmp_path) as w:
        schedules = await w.start()
        reply = await _command(w, "/schedule every 1h check the build")
        assert reply.startswith("Scheduled s"), reply
        [view] = await schedules.call(ListSchedules(CHAT))
        schedule_id = view.row.id
        assert view.next_due == START + HOUR
        assert view.row.destination == CHAT

        views = await w.tick(schedules, START + HOUR - 1)  # not yet
        run_thread = (await w.directory.thread_for(_schedule_key(schedule_id)))[0]
        assert w.started(run_thread) == []

        await w.tick(schedules, START + HOUR)
        [run] = w.started(run_thread)
        # the run is charged to its creator, whose daily limits count it
        assert (run.interaction.text, run.interaction.user) == ("check the build", "ada")
        await w.finish(_schedule_key(schedule_id))
        chat_thread = (await w.directory.thread_for(CHAT))[0]
        posted: ev.Notice = await w.events.wait_for(
            lambda e: isinstance(e, ev.Notice) and e.thread_id == chat_thread
        )
        assert posted.message == f"⏰ schedule {schedule_id} (every 1h): done: check the build"
        views = await schedules.call(ListSchedules(None))
        assert [v.next_due for v in views] == [START + 2 * HOUR]
        assert (await _row(w.book, schedule_id)).last_due == START + HOUR


async def test_a_schedule_missed_for_ten_due_times_runs_once_when_the_daemon_is_back(
    tmp_path: Path, hold_registered: None
) -> None:
    async with world(tmp_path) as w:
        await w.book.add(_hourly("sdown", "default", "while you were away", last_due=START))
        w.clock.now = START + 10 * HOUR + 5  # ten due times went by while the daemon was down
        with structlog.testing.capture_logs() as logs:
            schedules = await w.start()  # loading runs what is due
            [view] = await schedules.call(ListSchedules(None))
        run_thread = (await w.directory.thread_for(_schedule_key("sdown")))[0]
        assert len(w.started(run_thread)) == 1
        assert view.next_due == START + 11 * HOUR
        assert (await _row(w.book, "sdown")).last_due == START + 10 * HOUR
        [started] = [log for log in logs if log["event"] == "schedules.run_started"]
        assert started["missed"] == 9
        await w.finish(_schedule_key("sdown"))
        await w.tick(schedules, START + 10 * HOUR + 6)  # nothing more is due
        assert len(w.started(run_thread)) == 1


async def test_a_run_still_going_when_the_next_is_due_is_skipped_and_logged(
    tmp_path: Path, hold_registered: None
) -> None:
    async with world(tmp_path) as w:
        schedules = await w.start()
        await _command(w, "/schedule every 1h slow work")
        [view] = await schedules.call(ListSchedules(None))
        key = _schedule_key(view.row.id)
        run_thread = (await w.directory.thread_for(key))[0]
        await w.tick(schedules, START + HOUR)
        assert len(w.started(run_thread)) == 1
        with structlog.testing.capture_logs() as logs:
            views = await w.tick(schedules, START + 2 * HOUR)  # the first run is still going
        assert len(w.started(run_thread)) == 1
        assert [log["event"] for log in logs if log["event"].startswith("schedules.")] == [
            "schedules.run_skipped"
        ]
        assert views[0].next_due == START + 3 * HOUR  # the skipped due time counts as handled
        await w.finish(key)
        await w.events.wait_for(
            lambda e: isinstance(e, ev.TurnCompleted) and e.thread_id == run_thread
        )
        await w.tick(schedules, START + 3 * HOUR)
        assert len(w.started(run_thread)) == 2


async def test_config_schedules_are_stored_kept_across_restarts_and_cancelled_when_removed(
    tmp_path: Path, hold_registered: None
) -> None:
    declared = {"morning": ScheduleConfig(prompt="news", cron="0 8 * * 1-5", chat="home")}
    async with world(tmp_path, declared) as w:
        schedules = await w.start()
        [view] = await schedules.call(ListSchedules(None))
        assert (view.row.id, view.row.origin) == ("morning", "config")
        assert view.row.destination == ThreadKey("terminal", "home", "default")
        assert view.next_due == _local(2026, 3, 3, 8, 0)  # Tuesday 08:00: Monday's went by
        refused = await _command(w, "/unschedule morning", owner=True)
        assert refused.startswith("morning is declared in the configuration"), refused
        await schedules.stop()
        w.config = Config(agents=w.config.agents, daemon=w.config.daemon)  # removed from the file
        schedules = await w.start()
        assert await schedules.call(ListSchedules(None)) == []
        assert await w.book.live() == []


async def test_a_chat_lists_and_cancels_only_its_own_schedules_and_the_owner_any(
    tmp_path: Path, hold_registered: None
) -> None:
    other = ThreadKey("telegram", "42", "default")
    async with world(tmp_path) as w:
        schedules = await w.start()
        await _command(w, "/schedule every 1h mine", key=CHAT, owner=False)
        await _command(w, "/schedule cron @daily theirs", key=other, owner=False)
        [mine, theirs] = await schedules.call(ListSchedules(None))
        listed = await _command(w, "/schedules", key=CHAT, owner=False)
        assert mine.row.id in listed
        assert theirs.row.id not in listed
        refused = await _command(w, f"/unschedule {theirs.row.id}", key=CHAT, owner=False)
        assert refused == f"No schedule {theirs.row.id} in this chat: /schedules lists them."
        done = await _command(w, f"/unschedule {theirs.row.id}", key=CHAT, owner=True)
        assert done == f"Cancelled {theirs.row.id} (cron @daily)."
        assert [row.id for row in await w.book.live()] == [mine.row.id]
        bad = await _command(w, "/schedule cron 99 * * * * nope")
        assert bad.startswith("'99 * * * *' is not a cron expression"), bad


class FullBook(SqliteSchedules):
    """The store's disk is full: every write is refused, as the store refuses it."""

    async def add(self, row: ScheduleRow) -> None:
        raise StoreFull(str(self.database.path))

    async def cancel(self, schedule_id: str, at: float) -> bool:
        raise StoreFull(str(self.database.path))


async def test_a_schedule_the_store_refuses_is_one_sentence_and_the_actor_keeps_running(
    tmp_path: Path, hold_registered: None
) -> None:
    async with world(tmp_path) as w:
        w.book = FullBook(tmp_path / "piano.db")
        schedules = await w.start()
        reply = await _command(w, "/schedule every 1h check the build")
        assert reply.startswith("The schedule was not saved: the disk is full"), reply
        assert reply.endswith("Try again later.")
        assert schedules.alive
        assert await schedules.call(ListSchedules(None)) == []


async def test_a_schedule_whose_agent_left_the_configuration_is_told_once_per_due_time(
    tmp_path: Path, hold_registered: None
) -> None:
    async with world(tmp_path) as w:
        await w.book.add(_hourly("sgone", "retired", "anyone there?", last_due=None))
        schedules = await w.start()
        with structlog.testing.capture_logs() as logs:
            [view] = await w.tick(schedules, START + HOUR)
            await w.tick(schedules, START + HOUR + 1)  # not retried before its next due time
        gone = [log for log in logs if log["event"] == "schedules.agent_gone"]
        assert [(log["agent"], log["due"]) for log in gone] == [("retired", START + HOUR)]
        assert view.next_due == START + 2 * HOUR
        assert (await _row(w.book, "sgone")).last_due == START + HOUR
        assert schedules.alive
