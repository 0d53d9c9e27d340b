"""Which node runs which partition: deterministic, balanced within one, and stable under a join
or a leave — properties of the pure functions every node computes alike (`piano.cluster`)."""

from __future__ import annotations

import collections
import random
import statistics
import subprocess
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from actors.pipeline.rabbitmq import partition_for
from piano.cluster import (
    consumed,
    conversation_key,
    owners,
    partition_of,
    ranks,
    rendezvous_rank,
)

node_ids = st.lists(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12),
    min_size=1,
    max_size=9,
    unique=True,
)
partition_counts = st.integers(min_value=1, max_value=64)


def test_a_conversation_hashes_to_the_same_partition_in_every_process() -> None:
    key = conversation_key("telegram", "-100200300")
    script = (
        "from piano.cluster import partition_of, conversation_key;"
        "print(partition_of(conversation_key('telegram', '-100200300'), 16))"
    )
    # Another interpreter, another PYTHONHASHSEED: Python's hash() would differ, BLAKE2b not.
    other = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345", "PATH": ""},
    )
    assert int(other.stdout) == partition_of(key, 16)
    assert partition_of(key, 16) == partition_for(key, 16)  # what the publisher routes by


def test_every_agent_of_one_chat_shares_its_partition_and_chats_differ() -> None:
    assert conversation_key("web", "a") != conversation_key("we", "ba")
    spread = {partition_of(conversation_key("web", str(n)), 16) for n in range(200)}
    assert spread == set(range(16))


@given(st.integers(min_value=0, max_value=1000), node_ids, st.randoms(use_true_random=False))
def test_the_rendezvous_rank_is_a_function_of_the_members_not_their_order(
    partition: int, nodes: list[str], shuffler: random.Random
) -> None:
    shuffled = list(nodes)
    shuffler.shuffle(shuffled)
    assert rendezvous_rank(partition, nodes) == rendezvous_rank(partition, shuffled)
    assert sorted(rendezvous_rank(partition, nodes)) == sorted(nodes)


@given(partition_counts, node_ids, st.randoms(use_true_random=False))
def test_owners_are_deterministic_and_balanced_within_one(
    partitions: int, nodes: list[str], shuffler: random.Random
) -> None:
    owner = owners(partitions, nodes)
    shuffled = list(nodes)
    shuffler.shuffle(shuffled)
    assert owners(partitions, shuffled) == owner
    counts = collections.Counter(owner)
    assert None not in counts
    share = [counts.get(node, 0) for node in nodes]
    assert max(share) - min(share) <= 1
    assert sum(share) == partitions


@settings(max_examples=300)
@given(partition_counts, node_ids, st.text(alphabet="ABCDEF", min_size=1, max_size=4))
def test_a_join_or_a_leave_moves_little_more_than_must_move(
    partitions: int, nodes: list[str], newcomer: str
) -> None:
    before = owners(partitions, nodes)
    after = owners(partitions, [*nodes, newcomer])
    moved = sum(old != new for old, new in zip(before, after, strict=True))
    must = after.count(newcomer)  # the newcomer's partitions had to move to it
    assert moved <= 3 * must + 3
    # Its leave compares the same two memberships the other way round: the same bound holds,
    # and the owners return to exactly what they were (nothing depends on history).
    assert owners(partitions, nodes) == before


def test_movement_is_near_the_minimum_on_average() -> None:
    rng = random.Random(19)
    ratios = []
    for trial in range(300):
        nodes = [f"node-{rng.randrange(10**9)}" for _ in range(rng.randint(1, 7))]
        partitions = rng.choice([8, 16, 32, 64])
        before = owners(partitions, nodes)
        after = owners(partitions, [*nodes, f"new-{trial}"])
        moved = sum(old != new for old, new in zip(before, after, strict=True))
        ratios.append(moved / max(after.count(f"new-{trial}"), 1))
    assert statistics.mean(ratios) < 1.6


@given(partition_counts, node_ids, st.integers(min_value=0, max_value=3))
def test_each_partition_has_its_owner_and_standby_subscribers(
    partitions: int, nodes: list[str], standby: int
) -> None:
    owner = owners(partitions, nodes)
    subscribed = {node: consumed(node, partitions, nodes, standby) for node in nodes}
    for p in range(partitions):
        order = ranks(p, owner[p], nodes)
        assert order[0] == owner[p]
        assert sorted(order) == sorted(nodes)
        subscribers = {node for node in nodes if p in subscribed[node]}
        assert owner[p] in subscribers
        assert len(subscribers) == min(standby + 1, len(nodes))


def test_no_members_own_nothing() -> None:
    assert owners(4, []) == [None, None, None, None]
    assert consumed("alone", 4, [], 0) == {0, 1, 2, 3}
