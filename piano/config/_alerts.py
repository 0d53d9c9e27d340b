"""`AlertsConfig`: the ``[alerts]`` section of piano.toml.

```toml
[alerts]
to = ["telegram", "terminal", "web"]   # the surfaces that tell the owner
telegram_chats = []             # empty: the private chat of every Telegram admin
codex_failures = 3              # codex exits or failed turns ...
codex_window = 300              # ... within this many seconds open a "codex keeps failing"
quiet = 300                     # seconds without a sign that close a codex or supervisor incident
disk_free_percent = 5           # the state directory's disk below this: "the disk is nearly full"
check_interval = 30             # seconds between disk checks and re-asking a provider that is down
```

The owner is told once when an incident opens and once when it closes (`piano.alerts`).
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

__all__ = ["AlertsConfig"]

Seconds = Annotated[float, msgspec.Meta(gt=0)]


class AlertsConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Telling the owner when something keeps going wrong (`piano.alerts`)."""

    enabled: bool = True
    """Run the `alerts` actor: incidents are told to the owner on the surfaces in `to`."""
    to: list[Literal["telegram", "terminal", "web"]] = msgspec.field(
        default_factory=lambda: ["telegram", "terminal", "web"]
    )
    """The surfaces that tell the owner: ``telegram`` (the chats of `telegram_chats`),
    ``terminal`` (every connected ``piano chat``) and ``web`` (every client of the web
    stream: the chat page and the dashboard); one that is not running is skipped."""
    telegram_chats: list[int] = msgspec.field(default_factory=list)
    """Telegram chat ids that receive alerts; empty: every ``admin`` user's private chat."""
    codex_failures: Annotated[int, msgspec.Meta(ge=1)] = 3
    """Codex process exits or failed turns within `codex_window` that open a codex incident."""
    codex_window: Seconds = 300.0
    """The window, in seconds, over which `codex_failures` are counted."""
    quiet: Seconds = 300.0
    """Seconds without another sign after which a codex or supervisor incident is closed
    (a codex incident also closes at the first turn that completes)."""
    disk_free_percent: Annotated[float, msgspec.Meta(ge=0, le=100)] = 5.0
    """The state directory's filesystem with less free space than this (percent) opens a disk
    incident; it closes when there is more again."""
    check_interval: Seconds = 30.0
    """Seconds between the checks of the disk, of quiet incidents and of a provider that is
    down."""
