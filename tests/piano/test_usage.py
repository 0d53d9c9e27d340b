"""Usage and cost (`piano.usage`, `piano.config.LimitsConfig`, `PriceConfig`): prices per
model, totals per user and agent from a real store, ``/usage`` for a user and for the owner,
and the limits' polite refusal with the time they reset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from actors import ActorSystem
from piano.agents import ThreadKey
from piano.commands import Commands
from piano.config import Config, DaemonConfig, LimitsConfig, PriceConfig, UserLimits
from piano.store import (
    CreateThread,
    Opener,
    StoreReader,
    StoreWriter,
    UpsertAgent,
    UpsertSurface,
    WriteBatch,
)
from piano.usage import report_from, summary_text
from schemas import events as ev

pytestmark = pytest.mark.anyio

DAY = 86_400.0
NOON = 20_000 * DAY + 12 * 3600  # some day, 12:00 UTC
PRICES = {"gpt-5.5": PriceConfig(input=2.0, cached_input=0.5, output=10.0)}


def test_a_price_counts_cached_input_at_its_own_rate_and_output_at_its_own() -> None:
    price = PRICES["gpt-5.5"]
    # 1M input of which 200k cached, 100k output: 0.8*2 + 0.2*0.5 + 0.1*10
    assert price.cost(1_000_000, 200_000, 100_000) == pytest.approx(2.7)
    assert PriceConfig(input=3.0).cost(1_000_000, 1_000_000, 0) == pytest.approx(3.0)


def test_a_users_own_limits_replace_the_defaults_key_by_key() -> None:
    limits = LimitsConfig(
        turns_per_day=5, tokens_per_day=1000, users={"vip": UserLimits(turns_per_day=50)}
    )
    assert limits.of("vip") == UserLimits(turns_per_day=50, tokens_per_day=1000)
    assert limits.of("anyone") == UserLimits(turns_per_day=5, tokens_per_day=1000)
    assert not LimitsConfig().limited("anyone")
    assert limits.allowance("vip") == "50 turns and 1,000 tokens"
    assert LimitsConfig(tokens_per_day=1).allowance("anyone") == "1 token"
    assert LimitsConfig().allowance("anyone") is None


def test_the_refusal_is_polite_and_says_when_the_limit_resets() -> None:
    limits = LimitsConfig(turns_per_day=2, tokens_per_day=1000)
    assert limits.refusal("ada", 1, 999, NOON) is None
    turns = limits.refusal("ada", 2, 0, NOON)
    assert turns == (
        "Sorry, you have used your 2 turns for today; the limit resets at 00:00 UTC "
        "(in 12 h 0 min). Your message is kept but was not sent to the agent."
    )
    tokens = limits.refusal("ada", 0, 1000, NOON + 11 * 3600 + 50 * 60)
    assert tokens is not None
    assert "your 1,000 tokens for today" in tokens
    assert "(in 10 min)" in tokens


async def _store(db: Path | Opener, at: float) -> None:
    """Two users, two agents, three turns on 'gpt-5.5' (priced) and one on 'local' (not), in
    the SQLite file `db` or the store another `Opener` opens."""
    turns = [
        ("t1", "ada", "coder", "gpt-5.5", 1_000_000, 0, 100_000),
        ("t1", "ada", "coder", "gpt-5.5", 1_000_000, 1_000_000, 0),
        ("t2", "bob", "helper", "gpt-5.5", 0, 0, 100_000),
        ("t2", "bob", "helper", "local", 500, 0, 500),
    ]
    async with ActorSystem() as system:
        writer = await system.spawn(StoreWriter(db))
        await writer.call(UpsertSurface("test", "test"))
        for agent in ("coder", "helper"):
            await writer.call(UpsertAgent(agent, "codex"))
        await writer.call(CreateThread("t1", "test", "c1", "coder"))
        await writer.call(CreateThread("t2", "test", "c2", "helper"))
        events: list[ev.ThreadEvent] = []
        for n, (thread, user, agent, model, given, cached, out) in enumerate(turns):
            meta: dict[str, Any] = {
                "thread_id": thread,
                "interaction_id": f"i{n}",
                "turn_id": f"u{n}",
                "at": at,
            }
            interaction = ev.Interaction(id=f"i{n}", text="hi", user=user)
            events += [
                ev.TurnStarted(interaction=interaction, agent=agent, **meta),
                ev.TokenUsage(
                    input_tokens=given,
                    cached_input_tokens=cached,
                    output_tokens=out,
                    total_tokens=given + out,
                    model=model,
                    **meta,
                ),
                ev.TurnCompleted(status="completed", **meta),
            ]
        await writer.call(WriteBatch(events))


async def test_totals_per_user_and_agent_are_priced_by_model(tmp_path: Path) -> None:
    db = tmp_path / "piano.db"
    await _store(db, NOON)
    with StoreReader(db) as reader:
        report = report_from(reader, PRICES, since=None)
        assert report_from(reader, PRICES, since=NOON + 1).total.turns == 0
        assert report_from(reader, PRICES, since=None, until=NOON).total.turns == 0
    assert (report.total.turns, report.total.tokens) == (4, 2_201_000)
    ada, bob = report.users
    assert (ada.name, ada.turns, ada.tokens) == ("ada", 2, 2_100_000)
    assert ada.cost == pytest.approx(2 + 1 + 0.5)  # 1M input + 100k output; 1M cached input
    assert (bob.name, bob.turns, bob.cost, bob.unpriced_tokens) == ("bob", 2, 1.0, 1000)
    assert [(a.name, a.turns) for a in report.agents] == [("coder", 2), ("helper", 2)]
    text = summary_text(report, "All")
    assert "All: 4 turns, 2,201,000 tokens ($4.5000, 1,000 tokens without a price)." in text
    assert "  bob: 2 turns, 101,000 tokens ($1.0000, 1,000 tokens without a price)" in text


async def _usage(config: Config, user: str, owner: bool) -> str:
    async with ActorSystem() as system:
        reply = await Commands(config).run(
            "/usage",
            system=system,
            key=ThreadKey("test", "c1", "coder"),
            thread_id=None,
            user=user,
            owner=owner,
        )
    assert reply is not None
    return reply


async def test_usage_shows_a_user_their_own_and_the_owner_everyones(tmp_path: Path) -> None:
    config = Config(
        daemon=DaemonConfig(state_dir=str(tmp_path)),
        prices=PRICES,
        limits=LimitsConfig(turns_per_day=10),
    )
    await _store(config.state_path(config.daemon.database), 1000.0)  # long ago: not today
    mine = await _usage(config, "bob", owner=False)
    assert "Your usage today (since 00:00 UTC): 0 turns, 0 tokens." in mine
    assert "Your usage in all: 2 turns, 101,000 tokens ($1.0000, 1,000 tokens" in mine
    assert "Your limits: 10 turns a day; they reset at 00:00 UTC (in " in mine
    assert "ada" not in mine  # another user's usage is the owner's business only
    owner = await _usage(config, "ada", owner=True)
    assert "Everyone in all: 4 turns" in owner
    assert "  bob: 2 turns" in owner
    assert "  helper: 2 turns" in owner
