"""`piano status` on a cluster's node, through two running `piano run` nodes (one PostgreSQL
store, the machine's RabbitMQ, the real codex and the fake provider): it shows both live
members, every partition owned by one of them and balanced, the conversation node A answered
with A holding its lease — and the tree with `cluster` right after `storage`."""

from __future__ import annotations

import re

import anyio
import pytest

from tests.acceptance.daemon import PIANO, chat, daemon_running
from tests.cluster.conftest import two_nodes
from tests.fakes.responses_provider import CodexDirs, FakeResponsesProvider, Text

pytestmark = pytest.mark.anyio


async def test_piano_status_shows_the_members_their_partitions_and_each_conversations_owner(
    dirs: CodexDirs, other_dirs: CodexDirs, database: str, amqp_url: str
) -> None:
    async with FakeResponsesProvider() as provider:
        provider.script(Text("answered by node a"))
        async with (
            two_nodes(dirs, other_dirs, provider, database, amqp_url) as nodes,
            daemon_running(nodes.config_a, nodes.state_a / "chat.sock", env=nodes.env),
            daemon_running(nodes.config_b, nodes.state_b / "chat.sock", env=nodes.env),
        ):
            assert "answered by node a" in await chat(nodes.config_a, "hello")
            done = await anyio.run_process(
                [*PIANO, "status", "--config", str(nodes.config_b)], env=nodes.env, check=False
            )
    printed = done.stdout.decode()
    assert done.returncode == 0, printed + done.stderr.decode()
    assert "cluster: node node-b, 2 live members" in printed
    assert re.search(r"member node-a \(.*pid \d+", printed)
    assert re.search(r"member node-b \(.*pid \d+", printed)
    shares = {
        node: [int(p) for p in found.split()]
        for node, found in re.findall(r"partitions of (node-[ab]): ([\d ]+)", printed)
    }
    assert sorted(shares["node-a"] + shares["node-b"]) == list(range(16))
    assert abs(len(shares["node-a"]) - len(shares["node-b"])) <= 1
    assert re.search(r"conversation terminal:\S+ \(default\) -> node-a \(epoch 1\)", printed)
    tree = printed.split("cluster: node")[0]
    assert tree.index("'storage'") < tree.index("'cluster'") < tree.index("'events'"), tree
    assert tree.index("'cluster'") < tree.index("'membership'") < tree.index("'events'"), tree
