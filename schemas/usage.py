"""Usage reports as the web dashboard's API sends them (`piano.usage.report`).

A `UsageReport` sums turns, tokens and cost over a period (`since`, `until`: Unix times; None:
open) in total, per user and per agent. `cost` is in US dollars from ``[prices."MODEL"]``; None
when none of the tokens had a price, and `unpriced_tokens` counts those of models without one.
"""

from __future__ import annotations

import msgspec

__all__ = ["UsageLine", "UsageReport"]


class UsageLine(msgspec.Struct, frozen=True, kw_only=True):
    """One user's, one agent's or everyone's totals."""

    name: str
    turns: int = 0
    tokens: int = 0
    cost: float | None = None
    unpriced_tokens: int = 0


class UsageReport(msgspec.Struct, frozen=True, kw_only=True):
    """Totals over a period, overall and per user and per agent (sorted by name)."""

    since: float | None
    until: float | None
    total: UsageLine
    users: list[UsageLine]
    agents: list[UsageLine]
