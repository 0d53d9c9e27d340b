"""What the `alerts` actor tells the owner: an incident opened or closed (`piano.alerts`).

An `Alert` goes to each surface that tells the owner (`piano.surfaces.Surface.alert`), and to
`piano chat` clients inside an `schemas.chat.AlertFrame`.
"""

from __future__ import annotations

from typing import Literal, TypeAlias

import msgspec

__all__ = ["Alert", "IncidentKind"]

IncidentKind: TypeAlias = Literal["codex", "provider", "disk", "supervisor"]
"""What an incident is about: codex keeps failing, a provider is down, the state directory's
disk is nearly full, a supervisor gave up (reached its restart intensity)."""


class Alert(msgspec.Struct, frozen=True, kw_only=True):
    """One incident opened (`state` ``"opened"``) or closed (``"closed"``), told once each.

    `incident` names it (``codex``, ``provider:NAME``, ``disk``, ``supervisor:NAME``); `text` is
    the sentence the owner reads; `opened_at` and `at` are Unix times."""

    incident: str
    kind: IncidentKind
    state: Literal["opened", "closed"]
    text: str
    opened_at: float
    at: float
