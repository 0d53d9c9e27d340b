"""The chat commands of schedules: ``/schedule``, ``/schedules``, ``/unschedule`` (declared in
`piano.commands.COMMANDS`, the same on every surface).

```
/schedule every 30m check the build and tell me if it broke
/schedule cron 0 8 * * 1-5 summarise yesterday's commits
/schedule cron @daily what is on my calendar today?
/schedules
/unschedule s1a2b3
```

A schedule made in a chat runs with that chat's agent, and its answers come back to that chat.
Everyone sees and cancels the schedules of the chat they are in; the daemon's owner sees and
cancels every one. A ``[schedules.NAME]`` is listed but only the file removes it. The grammar
is parsed here, once (`parse_schedule`); bad input is one sentence (`CommandError`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from actors import ActorRef
from piano.commands import CommandError, Invocation
from piano.config import Timing, parse_every, parse_timing
from piano.schedules._actor import (
    SCHEDULES,
    AddSchedule,
    ScheduleView,
    add_schedule,
    cancel_schedule,
    list_schedules,
)
from piano.store import StoreError

__all__ = ["MAX_PER_CHAT", "MAX_PROMPT", "parse_schedule", "schedule", "schedules", "unschedule"]

USAGE: Final = (
    "Write /schedule every 30m PROMPT, or /schedule cron MIN HOUR DAY MONTH WEEKDAY PROMPT "
    "(such as /schedule cron 0 8 * * 1-5 summarise the news), or /schedule cron @daily PROMPT."
)
MAX_PROMPT: Final = 8000
"""The longest prompt a chat may schedule, in characters."""
MAX_PER_CHAT: Final = 20
"""How many live schedules one chat may have (the owner's are not counted)."""


def parse_schedule(argument: str) -> tuple[Timing, str]:
    """The timing and prompt of ``/schedule``'s argument; `CommandError` (one sentence)."""
    words = argument.split()
    if not words:
        raise CommandError(USAGE)
    kind = words[0].lower()
    try:
        if kind == "every" and len(words) >= 2:
            timing = Timing(every=parse_every(words[1]))
            rest = argument.split(None, 2)[2:]
        elif kind == "cron" and len(words) >= 2 and words[1].startswith("@"):
            timing = parse_timing(words[1], None)
            rest = argument.split(None, 2)[2:]
        elif kind == "cron" and len(words) >= 6:
            timing = parse_timing(" ".join(words[1:6]), None)
            rest = argument.split(None, 6)[6:]
        elif kind == "cron":
            raise CommandError(
                "A cron expression has five fields, minute hour day-of-month month "
                "day-of-week: such as /schedule cron 0 8 * * 1-5 PROMPT."
            )
        else:
            raise CommandError(USAGE)
    except ValueError as exc:
        sentence = str(exc)
        raise CommandError(sentence[0].upper() + sentence[1:] + ".") from None
    prompt = rest[0].strip() if rest else ""
    if not prompt:
        raise CommandError(f"Say what to ask after the timing. {USAGE}")
    if len(prompt) > MAX_PROMPT:
        raise CommandError(
            f"That prompt is {len(prompt)} characters; a schedule's may have {MAX_PROMPT}."
        )
    return timing, prompt


def _actor(invocation: Invocation) -> ActorRef:
    ref = invocation.system.whereis(SCHEDULES)
    if ref is None:
        raise CommandError("Schedules are not running in this daemon right now; try again soon.")
    return ref


def _when(moment: float) -> str:
    return datetime.fromtimestamp(moment).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def _line(view: ScheduleView) -> str:
    row = view.row
    prompt = row.prompt if len(row.prompt) <= 60 else row.prompt[:59] + "…"
    where = f"{row.destination.surface}:{row.destination.conversation}"
    origin = " (config)" if row.origin == "config" else ""
    return (
        f"{row.id}{origin} · {row.timing.describe()} · next {_when(view.next_due)} · "
        f"agent {row.agent} · to {where} · {prompt}"
    )


async def schedule(invocation: Invocation, argument: str) -> str:
    """``/schedule TIMING PROMPT``: run PROMPT on a timetable, answers to this chat."""
    timing, prompt = parse_schedule(argument)
    ref = _actor(invocation)
    if not invocation.owner:
        mine = await list_schedules(ref, invocation.key)
        if len(mine) >= MAX_PER_CHAT:
            raise CommandError(
                f"This chat has {len(mine)} schedules, the most it may have: /unschedule one first."
            )
    try:
        view = await add_schedule(
            ref,
            AddSchedule(
                agent=invocation.key.agent,
                prompt=prompt,
                timing=timing,
                destination=invocation.key,
                created_by=invocation.user,
            ),
        )
    except StoreError as exc:
        raise CommandError(f"The schedule was not saved: {exc}. Try again later.") from None
    return (
        f"Scheduled {view.row.id}: {timing.describe()}, next run {_when(view.next_due)}. "
        f"Its answers come to this chat; /unschedule {view.row.id} cancels it."
    )


async def schedules(invocation: Invocation, argument: str) -> str:
    """``/schedules``: this chat's schedules (the owner's: every one)."""
    views = await list_schedules(_actor(invocation), None if invocation.owner else invocation.key)
    if not views:
        return "No schedules. /schedule every 1h PROMPT makes one."
    return "\n".join(_line(view) for view in views)


async def unschedule(invocation: Invocation, argument: str) -> str:
    """``/unschedule ID``: cancel one of this chat's schedules (the owner: any)."""
    schedule_id = argument.strip()
    if not schedule_id or " " in schedule_id:
        raise CommandError("Write /unschedule ID, with an ID that /schedules shows.")
    try:
        view = await cancel_schedule(
            _actor(invocation), schedule_id, None if invocation.owner else invocation.key
        )
    except LookupError:
        raise CommandError(
            f"No schedule {schedule_id} in this chat: /schedules lists them."
        ) from None
    except StoreError as exc:
        raise CommandError(f"{schedule_id} was not cancelled: {exc}. Try again later.") from None
    except PermissionError:
        raise CommandError(
            f"{schedule_id} is declared in the configuration ([schedules.{schedule_id}]): "
            "remove it there and restart the daemon."
        ) from None
    return f"Cancelled {view.row.id} ({view.row.timing.describe()})."
