"""``[prices."MODEL"]`` and ``[limits]``: what tokens cost, and how many a user may use a day.

```toml
[prices."gpt-5.5"]                      # US dollars per million tokens of this model
input = 1.25
cached_input = 0.125                    # default: the input price
output = 10.0

[limits]                                # per user and UTC day; unset: no limit
turns_per_day = 50
tokens_per_day = 2_000_000

[limits.users."telegram:42"]            # one user's own limits (the name /whoami shows)
turns_per_day = 500
```

A price turns the token counts the store keeps (per model: `piano.usage`) into money for
``/usage``; a model without a price is counted in tokens only. A limit is checked before each
of the user's turns starts: a message past it is kept (it was accepted) but not sent to the
model, and its user is told when the day's count starts again (00:00 UTC).
"""

from __future__ import annotations

from typing import Annotated, Final

import msgspec

__all__ = ["DAY", "LimitsConfig", "PriceConfig", "UserLimits", "day_start", "until_reset"]

DAY: Final = 86_400.0
"""Seconds in a (UTC) day, the period of the limits and of the daily summary."""


def day_start(now: float) -> float:
    """The Unix time of 00:00 UTC on the day of `now`."""
    return now - now % DAY


def until_reset(now: float) -> str:
    """How long from `now` until the day's counts start again at 00:00 UTC (``3 h 20 min``)."""
    return _in(day_start(now) + DAY - now)


def _count(n: int, what: str) -> str:
    return f"{n:,} {what}" if n == 1 else f"{n:,} {what}s"


def _in(seconds: float) -> str:
    minutes = max(1, round(seconds / 60))
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


Price = Annotated[float, msgspec.Meta(ge=0)]
Count = Annotated[int, msgspec.Meta(ge=0)]


class PriceConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """One model's prices, in US dollars per million tokens."""

    input: Price = 0.0
    """Per million input tokens that were not cached."""
    cached_input: Price | None = None
    """Per million cached input tokens; unset: the `input` price."""
    output: Price = 0.0
    """Per million output tokens (reasoning tokens included)."""

    def cost(self, input_tokens: int, cached_input_tokens: int, output_tokens: int) -> float:
        """US dollars for these tokens (`input_tokens` counts the cached ones too)."""
        cached = min(cached_input_tokens, input_tokens)
        cached_price = self.input if self.cached_input is None else self.cached_input
        return (
            (input_tokens - cached) * self.input
            + cached * cached_price
            + output_tokens * self.output
        ) / 1_000_000


class UserLimits(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """One user's limits per UTC day (unset: none)."""

    turns_per_day: Count | None = None
    """Turns (answered messages) a day."""
    tokens_per_day: Count | None = None
    """Tokens (input and output, as the provider counts them) a day."""


class LimitsConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """Per-user limits per UTC day, checked before each turn starts."""

    turns_per_day: Count | None = None
    """Turns (answered messages) each user may have a day; unset: no limit. Users are those a
    surface names (Telegram's, the web's); `piano chat` is the daemon's owner and unlimited."""
    tokens_per_day: Count | None = None
    """Tokens each user may use a day; unset: no limit. A turn that starts under the limit
    runs to its end, so a day may end a little over it."""
    users: dict[str, UserLimits] = msgspec.field(default_factory=dict)
    """Limits of their own for some users (by the name ``/whoami`` shows), replacing the
    defaults above key by key."""

    def refusal(self, user: str | None, turns: int, tokens: int, now: float) -> str | None:
        """Why `user`, who had `turns` turns and used `tokens` tokens today, may not start
        another turn now (a polite sentence saying when the limit resets); None if they may."""
        limits = self.of(user)
        if limits.turns_per_day is not None and turns >= limits.turns_per_day:
            used = _count(limits.turns_per_day, "turn")
        elif limits.tokens_per_day is not None and tokens >= limits.tokens_per_day:
            used = _count(limits.tokens_per_day, "token")
        else:
            return None
        return (
            f"Sorry, you have used your {used} for today; the limit resets at 00:00 UTC "
            f"(in {until_reset(now)}). Your message is kept but was not sent to the agent."
        )

    def allowance(self, user: str | None) -> str | None:
        """`user`'s daily limits in words (``50 turns and 2,000,000 tokens``); None: none."""
        limits = self.of(user)
        parts = [
            _count(n, what)
            for n, what in ((limits.turns_per_day, "turn"), (limits.tokens_per_day, "token"))
            if n is not None
        ]
        return " and ".join(parts) or None

    def limited(self, user: str | None) -> bool:
        """Whether any limit applies to `user`."""
        limits = self.of(user)
        return limits.turns_per_day is not None or limits.tokens_per_day is not None

    def of(self, user: str | None) -> UserLimits:
        """The limits that apply to `user`."""
        own = self.users.get(user or "")
        if own is None:
            return UserLimits(turns_per_day=self.turns_per_day, tokens_per_day=self.tokens_per_day)
        return UserLimits(
            turns_per_day=(
                own.turns_per_day if own.turns_per_day is not None else self.turns_per_day
            ),
            tokens_per_day=(
                own.tokens_per_day if own.tokens_per_day is not None else self.tokens_per_day
            ),
        )
