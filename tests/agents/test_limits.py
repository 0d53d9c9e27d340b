"""Daily limits are enforced before a turn starts (`StoreDirectory.refusal`, counted in the
real store): the message past the limit is recorded — nothing accepted is lost — but ends
``failed`` with the polite refusal and never reaches the model; another user is not held back."""

from __future__ import annotations

import asyncio

import pytest

from piano.config import LimitsConfig
from tests.agents.conftest import Start

pytestmark = pytest.mark.anyio


async def test_a_message_past_the_daily_turn_limit_is_kept_refused_and_never_sent(
    agents: Start,
) -> None:
    world = await agents()
    world.directory.limits = LimitsConfig(turns_per_day=1)
    _, first = await world.say("one", user="ada")
    assert (await world.done(first)).status == "completed"
    _, second = await world.say("two", user="ada")
    refused = await world.done(second)
    assert refused.status == "failed"
    assert (refused.error or "").startswith("Sorry, you have used your 1 turn for today; ")
    assert "resets at 00:00 UTC" in (refused.error or "")
    assert len(world.fake.requests) == 1  # "two" never reached the model
    stored = await asyncio.to_thread(lambda: world.reader().interaction(second))
    assert stored is not None
    assert (stored.text, stored.status, stored.started_at) == ("two", "failed", None)
    _, other = await world.say("three", user="bob", conversation="c2")
    assert (await world.done(other)).status == "completed"


async def test_a_message_past_the_daily_token_limit_is_refused(agents: Start) -> None:
    world = await agents()
    world.directory.limits = LimitsConfig(tokens_per_day=1)
    _, first = await world.say("one", user="ada")
    assert (await world.done(first)).status == "completed"  # under the limit when it started
    _, second = await world.say("two", user="ada")
    refused = await world.done(second)
    assert "your 1 token for today" in (refused.error or "")
    assert len(world.fake.requests) == 1
