"""Usage reports from the store, as data and as text, and ``/usage`` (see `piano.usage`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping, Sequence

from piano.commands import CommandError, Invocation
from piano.config import Config, PriceConfig, day_start, until_reset
from piano.store import StoreError, StoreReader, TurnCount, UsageRow
from schemas.usage import UsageLine, UsageReport

__all__ = ["report", "report_from", "summary_text", "usage"]


def _lines(
    rows: Iterable[UsageRow],
    turns: Iterable[TurnCount],
    prices: Mapping[str, PriceConfig],
    by: Callable[[str | None, str], str],
) -> list[UsageLine]:
    """Rows summed per `by(user, agent)`, priced; sorted by name."""
    found: dict[str, dict[str, float]] = {}

    def entry(name: str) -> dict[str, float]:
        return found.setdefault(
            name, {"turns": 0, "tokens": 0, "cost": 0.0, "unpriced": 0, "priced": 0}
        )

    for count in turns:
        entry(by(count.user, count.agent))["turns"] += count.turns
    for row in rows:
        line = entry(by(row.user, row.agent))
        line["tokens"] += row.total_tokens
        price = prices.get(row.model or "")
        if price is None:
            line["unpriced"] += row.total_tokens
        else:
            line["priced"] += 1
            line["cost"] += price.cost(row.input_tokens, row.cached_input_tokens, row.output_tokens)
    return [
        UsageLine(
            name=name,
            turns=int(totals["turns"]),
            tokens=int(totals["tokens"]),
            cost=round(totals["cost"], 6) if totals["priced"] else None,
            unpriced_tokens=int(totals["unpriced"]),
        )
        for name, totals in sorted(found.items())
    ]


def _user(user: str | None, agent: str) -> str:
    return user or "(unknown)"


def _agent(user: str | None, agent: str) -> str:
    return agent


def _everyone(user: str | None, agent: str) -> str:
    return "all"


def report_from(
    reader: StoreReader,
    prices: Mapping[str, PriceConfig],
    *,
    since: float | None,
    until: float | None = None,
    user: str | None = None,
) -> UsageReport:
    """Turns, tokens and cost in [`since`, `until`) (None: open), per user and per agent, of
    one `user` or everyone (blocking: call from a thread)."""
    rows = reader.usage_by(since=since, until=until, user=user)
    turns = reader.turns_by(since=since, until=until, user=user)
    total = _lines(rows, turns, prices, _everyone)
    return UsageReport(
        since=since,
        until=until,
        total=total[0] if total else UsageLine(name="all"),
        users=_lines(rows, turns, prices, _user),
        agents=_lines(rows, turns, prices, _agent),
    )


async def report(
    config: Config, *, since: float | None, until: float | None = None, user: str | None = None
) -> UsageReport:
    """`report_from` the configured store, on a reader of its own."""
    [summed] = await _reports(config, [(since, until, user)])
    return summed


async def _reports(
    config: Config, periods: Sequence[tuple[float | None, float | None, str | None]]
) -> list[UsageReport]:
    """`report_from` the configured store for each (`since`, `until`, `user`), on one reader
    of their own, in one worker thread."""

    def read() -> list[UsageReport]:
        reader = config.store_location().reader()
        try:
            return [
                report_from(reader, config.prices, since=since, until=until, user=user)
                for since, until, user in periods
            ]
        finally:
            reader.close()

    return await asyncio.to_thread(read)


def _money(line: UsageLine) -> str:
    parts = []
    if line.cost is not None:
        parts.append(f"${line.cost:,.4f}")
    if line.unpriced_tokens:
        parts.append(f"{line.unpriced_tokens:,} tokens without a price")
    return f" ({', '.join(parts)})" if parts else ""


def _count(n: int, what: str) -> str:
    return f"{n:,} {what}" if n == 1 else f"{n:,} {what}s"


def _line(line: UsageLine) -> str:
    return f"{_count(line.turns, 'turn')}, {_count(line.tokens, 'token')}{_money(line)}"


def summary_text(report: UsageReport, title: str) -> str:
    """A report as plain text: `title`, the total, then per user and per agent."""
    lines = [f"{title}: {_line(report.total)}."]
    if report.users:
        lines.append("By user:")
        lines += [f"  {line.name}: {_line(line)}" for line in report.users]
    if report.agents:
        lines.append("By agent:")
        lines += [f"  {line.name}: {_line(line)}" for line in report.agents]
    return "\n".join(lines)


def _limits_line(config: Config, user: str | None, now: float) -> str:
    allowance = config.limits.allowance(user)
    if allowance is None:
        return "You have no daily limits."
    return f"Your limits: {allowance} a day; they reset at 00:00 UTC (in {until_reset(now)})."


async def usage(invocation: Invocation, argument: str) -> str:
    """``/usage``: your turns, tokens and cost today and in all, and your limits; the owner
    gets every user's and agent's too."""
    config, user = invocation.config, invocation.user
    now = time.time()
    today = day_start(now)
    periods = [(today, None, user), (None, None, user)]
    if invocation.owner:
        periods += [(today, None, None), (None, None, None)]
    try:
        mine_today, mine, *everyone = await _reports(config, periods)
    except StoreError as exc:
        raise CommandError(f"The usage cannot be read now: {exc}.") from None
    lines = [
        f"Your usage today (since 00:00 UTC): {_line(mine_today.total)}.",
        f"Your usage in all: {_line(mine.total)}.",
        _limits_line(config, user, now),
    ]
    if everyone:
        lines.append(summary_text(everyone[0], "Everyone today"))
        lines.append(summary_text(everyone[1], "Everyone in all"))
    return "\n".join(lines)
