"""The pipeline example runs as documented and shows per-thread order, a gap and a retry."""

from __future__ import annotations

from tests.test_examples import run_example


def test_the_threads_example_stores_each_thread_in_order_with_one_reported_gap() -> None:
    lines = run_example("pipeline_threads.py").splitlines()
    assert "t1: [0, 1, 2, 3, 4, 5, 6, 7]" in lines
    assert "t2: [0, 1, 2, 3, 4, 5, 6, 7]" in lines, "the failed store write was retried"
    assert "t3: [0, 1, 2, 3, 4, 6, 7]" in lines, "the malformed event left a gap"
    assert "failed: [\"failed 5 times: ValueError('event 5 of t3 has no text')\"]" in lines
    assert lines[-1] == "accepted=24 acked=23 failed=1"


def test_the_rabbitmq_example_keeps_each_customers_order_and_dead_letters_the_bad_order() -> None:
    lines = run_example("pipeline_rabbitmq.py").splitlines()
    for customer in ("alice", "bob", "carol"):
        assert f"{customer}: [0, 1, 2, 3, 4]" in lines
    assert "malformed order delivered 2 times (delivery counts [0, 1])" in lines
    assert "dead-lettered: carol:bad" in lines
    assert lines[-1] == "acked=15 requeued=1 rejected=1"
