"""The daily usage summary (`piano.usage.DailySummary`) on a real store and a driven clock: the
day that ended is summed and posted once to the owner's chat as a Notice, not before midnight,
not twice, not for a day without use, and a post that fails is retried for the same day."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors import ActorSystem, get_state
from piano.config import Config, DaemonConfig, UsageConfig
from piano.threads import MemoryDirectory, ThreadKey
from piano.usage import DailySummary, Tick
from schemas import events as ev
from tests.piano.test_usage import NOON, PRICES, _store

pytestmark = pytest.mark.anyio

DAY = 86_400.0
MIDNIGHT = NOON + 12 * 3600  # the end of the day the store's turns were on


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_the_day_that_ended_is_posted_once_to_the_owners_chat(tmp_path: Path) -> None:
    config = Config(
        daemon=DaemonConfig(state_dir=str(tmp_path)),
        prices=PRICES,
        usage=UsageConfig(summary_surface="telegram", summary_chat="42"),
    )
    await _store(config.state_path(config.daemon.database), NOON)
    directory = MemoryDirectory()
    posted: list[ev.ThreadEvent] = []
    refuse = [True]

    async def publish(events: list[ev.ThreadEvent]) -> None:
        if refuse[0]:
            refuse[0] = False
            raise RuntimeError("the event pipeline is not running")
        posted.extend(events)

    clock = Clock(MIDNIGHT - 10)
    async with ActorSystem() as system:
        summary = await system.spawn(DailySummary(config, directory, publish, clock=clock))

        async def tick(now: float) -> None:
            clock.now = now
            summary.send(Tick())
            await get_state(summary)  # the tick has been handled

        await tick(MIDNIGHT - 1)
        assert posted == []  # the day has not ended
        await tick(MIDNIGHT + 5)
        assert posted == []  # the pipeline refused it: kept for a retry
        await tick(MIDNIGHT + 305)
        await tick(MIDNIGHT + 306)  # once only
        await tick(MIDNIGHT + DAY + 5)  # the next day had no turn: nothing to post
    [notice] = posted
    assert isinstance(notice, ev.Notice)
    thread_id, _ = await directory.thread_for(ThreadKey("telegram", "42", "default"))
    assert notice.thread_id == thread_id
    assert notice.message.startswith("Usage on 2024-10-04 (UTC): 4 turns, 2,201,000 tokens")
    assert "  ada: 2 turns" in notice.message
    assert "  helper: 2 turns" in notice.message
