"""Schedules: prompts an agent runs on a timetable, each answer posted to a chat.

A schedule is a prompt, an agent, a timing (cron, or an interval: `piano.config.Timing`) and a
chat its answers go to. They are declared in the configuration (``[schedules.NAME]``) or made
from any chat with ``/schedule``, listed with ``/schedules`` and cancelled with
``/unschedule ID`` (`piano.schedules._commands`, declared in `piano.commands.COMMANDS`). The
`Schedules` actor (registered as `SCHEDULES`, in the daemon's tree) runs each as a turn on a
thread of its own and posts the answer to the chat; it keeps them in the store (`Book`), so
they survive restarts, a run missed while the daemon was down runs once, and two runs of one
schedule never overlap. docs/schedules.md is the user's guide.
"""

from piano.schedules._actor import (
    MAX_WAIT,
    RETRY,
    SCHEDULES,
    SURFACE,
    AddSchedule,
    CancelSchedule,
    ListSchedules,
    Schedules,
    ScheduleView,
    Tick,
    add_schedule,
    cancel_schedule,
    list_schedules,
)
from piano.schedules._book import (
    SCHEDULE_TABLES,
    Book,
    PostgresSchedules,
    ScheduleRow,
    SqliteSchedules,
)

__all__ = [
    "MAX_WAIT",
    "RETRY",
    "SCHEDULES",
    "SCHEDULE_TABLES",
    "SURFACE",
    "AddSchedule",
    "Book",
    "CancelSchedule",
    "ListSchedules",
    "PostgresSchedules",
    "ScheduleRow",
    "ScheduleView",
    "Schedules",
    "SqliteSchedules",
    "Tick",
    "add_schedule",
    "cancel_schedule",
    "list_schedules",
]
