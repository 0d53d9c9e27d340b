"""`actors.Backoff`, the one back-off: its waits stay within their ceiling and cap, full
jitter spreads them, a seeded RNG repeats them, and a streak starts over when reset."""

from __future__ import annotations

import random

import pytest

import actors
import supervisors
from actors import Backoff, Streak
from actors.pipeline import Retry


def ceilings(backoff: Backoff, attempts: int) -> list[float]:
    return [backoff.ceiling(n) for n in range(1, attempts + 1)]


def test_the_ceiling_grows_by_the_factor_and_stops_at_the_cap() -> None:
    backoff = Backoff(initial=0.1, factor=2, cap=1.0)

    assert ceilings(backoff, 6) == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])
    assert backoff.ceiling(10_000) == 1.0  # no overflow, however long the streak


@pytest.mark.parametrize("jitter", [0.0, 0.2, 0.5, 1.0])
def test_every_wait_lies_between_the_jitters_floor_and_the_ceiling(jitter: float) -> None:
    backoff = Backoff(initial=0.05, factor=3, cap=2.0, jitter=jitter)
    rng = random.Random(3)

    for attempt in [1, 2, 3, 4, 5, 50, 5000]:
        for _ in range(200):
            ceiling = backoff.ceiling(attempt)
            assert (1 - jitter) * ceiling <= backoff.delay(attempt, rng) <= ceiling <= 2.0


def test_full_jitter_is_the_default_and_spreads_waits_over_the_whole_range() -> None:
    backoff = Backoff(initial=1.0, cap=1.0)
    rng = random.Random(11)
    waits = [backoff.delay(1, rng) for _ in range(1000)]

    assert backoff.jitter == 1.0
    assert min(waits) < 0.05
    assert max(waits) > 0.95


def test_without_jitter_the_wait_is_exactly_the_ceiling() -> None:
    backoff = Backoff(initial=0.25, factor=2, cap=10.0, jitter=0)

    assert [backoff.delay(n) for n in range(1, 5)] == [0.25, 0.5, 1.0, 2.0]


def test_the_same_seed_gives_the_same_waits() -> None:
    backoff = Backoff(initial=0.1, cap=5.0)
    first = backoff.streak(random.Random(42))
    second = backoff.streak(random.Random(42))
    other = backoff.streak(random.Random(43))

    a = [first.failed() for _ in range(20)]
    b = [second.failed() for _ in range(20)]
    c = [other.failed() for _ in range(20)]

    assert a == b
    assert a != c


def test_a_streak_counts_failures_and_starts_over_when_it_succeeds() -> None:
    streak = Backoff(initial=0.1, factor=2, cap=30.0, jitter=0).streak()

    assert [streak.failed() for _ in range(4)] == pytest.approx([0.1, 0.2, 0.4, 0.8])
    streak.succeeded()
    assert streak.failures == 0
    assert streak.failed() == pytest.approx(0.1)


def test_a_streak_starts_over_only_after_running_for_reset_after() -> None:
    now = [0.0]
    backoff = Backoff(initial=1.0, factor=2, cap=60.0, jitter=0, reset_after=10.0)
    streak = Streak(backoff, clock=lambda: now[0])

    assert streak.failed() == 1.0
    streak.started()
    now[0] += 9.0  # not long enough: the streak goes on
    assert streak.failed() == 2.0
    streak.started()
    now[0] += 10.0  # ran for reset_after: the next failure is a first one
    assert streak.failed() == 1.0


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"initial": 0}, "initial"),
        ({"initial": float("nan")}, "initial"),
        ({"cap": float("inf")}, "cap"),
        ({"factor": 0.5}, "factor"),
        ({"jitter": 1.5}, "jitter"),
        ({"jitter": -0.1}, "jitter"),
        ({"reset_after": -1}, "reset_after"),
    ],
)
def test_a_bad_option_is_refused_naming_it(options: dict[str, float], named: str) -> None:
    with pytest.raises(ValueError, match=f"Backoff.{named}"):
        Backoff(**options)


def test_attempts_count_from_one() -> None:
    with pytest.raises(ValueError, match="from 1"):
        Backoff().delay(0)


def test_supervisors_and_pipelines_use_the_same_backoff() -> None:
    retry = Retry(max_attempts=3, initial=0.01, factor=2, cap=0.04, jitter=0)

    assert supervisors.Backoff is actors.Backoff
    assert isinstance(retry.backoff, actors.Backoff)
    assert [retry.delay(n) for n in (1, 2, 3, 4)] == pytest.approx([0.01, 0.02, 0.04, 0.04])
