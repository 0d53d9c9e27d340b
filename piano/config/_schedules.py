"""Schedules' configuration and timing: ``[schedules.NAME]`` and when a schedule is due.

```toml
[schedules.morning]
prompt = "Summarise what changed in the repository since yesterday."
cron = "0 8 * * 1-5"          # five cron fields, local time (or @hourly, @daily, @weekly ...)
agent = "default"             # unset: default_agent
surface = "telegram"          # where the answer is posted: terminal, telegram or web
chat = "123456789"            # that surface's conversation (a Telegram chat id)

[schedules.heartbeat]
prompt = "Check the build."
every = "30m"                 # an interval instead: 45s, 10m, 2h, 1d, 1h30m
```

`Timing` is a schedule's ``cron`` or ``every``, parsed once (`parse_timing`), with the two
questions the `schedules` actor asks: the first due time after a moment (`Timing.next_after`)
and the latest due time at or before now (`Timing.latest_due`), so that a schedule missed
during downtime runs once, however many of its times went by. Cron expressions are read by
`croniter` in the machine's local time zone; an interval counts from the schedule's anchor
(when it was created), so its times do not drift with how long runs take. Bad timing raises
`ValueError` with one sentence the user can act on: the same sentence for a bad
``[schedules.NAME]`` (as a `ConfigError` line) and for a bad ``/schedule`` in a chat.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

import msgspec
from croniter import croniter

__all__ = ["MIN_EVERY", "ScheduleConfig", "Timing", "parse_every", "parse_timing"]

MIN_EVERY: Final = 1.0
"""The shortest interval, in seconds."""

_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_EVERY: Final = re.compile(r"(?:(\d+)([smhdw]))+")
_PART: Final = re.compile(r"(\d+)([smhdw])")
_MACROS: Final = frozenset(
    {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
)


class ScheduleConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One ``[schedules.NAME]``: a prompt an agent runs on a timetable, its answer posted to a
    chat. Exactly one of `cron` and `every`."""

    prompt: str
    """What the agent is asked at each run (a turn on the schedule's own thread)."""
    cron: str | None = None
    """Five cron fields in the machine's local time (`0 8 * * 1-5`), or `@hourly`, `@daily`,
    `@weekly`, `@monthly`, `@yearly`."""
    every: str | None = None
    """An interval instead of `cron`: a number and a unit, s m h d w, combinable (`1h30m`)."""
    agent: str | None = None
    """The agent that runs it; unset: `default_agent`."""
    surface: Literal["terminal", "telegram", "web"] = "terminal"
    """The surface its answers are posted to."""
    chat: str = "default"
    """The conversation on that surface: `piano chat --conversation`'s name, a Telegram chat id
    (`chat_id`, or `chat_id:topic_id` in a forum), a web conversation."""


def parse_every(text: str) -> float:
    """Seconds of an interval such as ``30s``, ``10m``, ``1h30m``, ``2d``; `ValueError` with
    the sentence to show otherwise."""
    spelled = text.strip().lower().replace(" ", "")
    if not _EVERY.fullmatch(spelled):
        raise ValueError(
            f"{text!r} is not an interval: write a number and a unit (s, m, h, d or w), "
            "such as 30s, 10m, 2h or 1h30m"
        )
    seconds = float(sum(int(n) * _UNITS[unit] for n, unit in _PART.findall(spelled)))
    if seconds < MIN_EVERY:
        raise ValueError(f"{text!r} is too short: a schedule runs at most once a second")
    return seconds


def _check_cron(expression: str) -> str:
    spelled = " ".join(expression.split())
    fields = spelled.split(" ")
    if spelled.lower() in _MACROS:
        return spelled.lower()
    if len(fields) != 5 or not croniter.is_valid(spelled):
        raise ValueError(
            f"{expression!r} is not a cron expression: write five fields, minute hour "
            "day-of-month month day-of-week (such as '0 8 * * 1-5'), or @hourly, @daily, @weekly"
        )
    return spelled


@dataclass(frozen=True, slots=True)
class Timing:
    """When a schedule is due: a cron expression or an interval in seconds (one of them)."""

    cron: str | None = None
    every: float | None = None

    def describe(self) -> str:
        if self.cron is not None:
            return f"cron {self.cron}"
        assert self.every is not None
        return f"every {_spell(self.every)}"

    def next_after(self, moment: float, anchor: float) -> float:
        """The first due time strictly after `moment` (an interval counts from `anchor`)."""
        if self.cron is not None:
            return float(croniter(self.cron, _local(moment)).get_next(float))
        assert self.every is not None
        if moment < anchor:
            return anchor + self.every
        return anchor + (math.floor((moment - anchor) / self.every) + 1) * self.every

    def latest_due(self, now: float, anchor: float) -> float:
        """The latest due time at or before `now` (for an interval: `anchor` if none yet)."""
        if self.cron is not None:
            before = float(croniter(self.cron, _local(now)).get_prev(float))
            at = float(croniter(self.cron, _local(before)).get_next(float))
            return at if at <= now else before
        assert self.every is not None
        if now < anchor:
            return anchor
        return anchor + math.floor((now - anchor) / self.every) * self.every


def parse_timing(cron: str | None, every: str | None) -> Timing:
    """The `Timing` of a schedule's ``cron`` or ``every``; `ValueError` (one sentence) if
    neither, both, or either is malformed."""
    if (cron is None) == (every is None):
        raise ValueError("a schedule needs either cron or every (and not both)")
    if cron is not None:
        return Timing(cron=_check_cron(cron))
    assert every is not None
    return Timing(every=parse_every(every))


def _local(moment: float) -> datetime:
    return datetime.fromtimestamp(moment).astimezone()


def _spell(seconds: float) -> str:
    left = int(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if left >= size:
            parts.append(f"{left // size}{unit}")
            left %= size
    return "".join(parts) or "0s"
