"""The surface's memory of a thread (`ThreadViews`): what a reloaded page gets in its snapshot
to say how long a turn ran or has been running, and how many turns run now."""

from __future__ import annotations

from piano.web._view import ThreadViews
from schemas import events as ev


def started(thread: str, interaction: str, at: float) -> ev.TurnStarted:
    return ev.TurnStarted(
        thread_id=thread,
        interaction_id=interaction,
        at=at,
        interaction=ev.Interaction(id=interaction, text="hello"),
        agent="default",
    )


def test_a_snapshot_says_when_each_turn_started_and_ended_and_how_many_run() -> None:
    views = ThreadViews(max_threads=10, max_interactions=10)
    views.apply(started("t1", "i1", 100.0))
    views.apply(started("t2", "i2", 105.0))
    assert views.running() == 2
    views.apply(ev.TurnCompleted(thread_id="t1", interaction_id="i1", at=112.5, status="completed"))
    assert views.running() == 1
    [t1] = views.snapshot(["t1"])
    [done] = t1.interactions
    assert (done.started_at, done.completed_at, done.status) == (100.0, 112.5, "completed")
    [t2] = views.snapshot(["t2"])
    assert (t2.interactions[0].started_at, t2.interactions[0].completed_at) == (105.0, None)
