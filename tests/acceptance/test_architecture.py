"""docs/architecture.md draws the supervision tree that `piano run` builds, and keeps it true.

The tree in "The supervision tree" section is compared with the running daemon's, read through
its console with `which_children`: every static child of every `Supervisor`, by registered name
(its id where it has none), in start order, at its depth. So a child added, removed, renamed or
moved (rest_for_one order is part of the design) fails this test until the page says so. The
daemon runs with Telegram, web and metrics configured (media and tools are on by default), so
their children are in the tree. Children of a `DynamicSupervisor` are started on demand, so the
page names their kinds instead (the test skips what it draws under one), and a `Pipeline`'s own
children are described in docs/pipeline.md.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Collection
from pathlib import Path

import pytest

from tests.acceptance.daemon import console, daemon_running, write_config
from tests.fakes.responses_provider import CodexDirs, FakeResponsesProvider
from tests.telegram.fake_bot_api import FakeBotApi

pytestmark = pytest.mark.anyio

ARCHITECTURE = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"

OPTIONAL = {"cluster"}
"""Drawn, but started only with a section the test's daemon has not got (``[cluster]`` needs a
PostgreSQL store and a broker: tests/cluster runs it and checks its place in the tree)."""

Node = tuple[int, str]
"""(depth, child id): depth 0 is the application itself."""

WALK = """
import json
from supervisors import which_children

async def _walk(ref, depth, out):
    for child in reversed(await which_children(ref)):  # OTP's order: the last started first
        facts = info(child.ref) if child.ref is not None else None
        kind = facts.actor_class if facts else "?"
        out.append([depth, (facts.name if facts else None) or str(child.id), kind])
        if kind in ("Supervisor", "Application") and child.ref is not None:
            await _walk(child.ref, depth + 1, out)
    return out

print("TREE " + json.dumps(await _walk(whereis("piano"), 1, [[0, "piano", "Application"]])))
"""


def drawn_tree() -> list[tuple[int, str]]:
    """The nodes the page draws (continuation lines, which describe a node, are skipped)."""
    section = ARCHITECTURE.read_text().split("## The supervision tree", 1)[1]
    block = section.split("```", 2)[1]
    nodes: list[tuple[int, str]] = []
    for line in block.splitlines():
        if match := re.match(r"^((?:[│ ]   )*)(?:├── |└── )(\S+)", line):
            nodes.append((len(match.group(1)) // 4 + 1, match.group(2)))
        elif line and not line.startswith((" ", "│")):
            nodes.append((0, line.split()[0]))
    return nodes


def comparable(
    nodes: list[tuple[int, str]], dynamic: set[str], optional: Collection[str] = ()
) -> list[tuple[int, str]]:
    """`nodes` without what is drawn under a dynamic supervisor (kinds, not ids), and without
    the `optional` children not running (and what is drawn under them)."""
    kept: list[tuple[int, str]] = []
    skipping_below: int | None = None
    for depth, name in nodes:
        if skipping_below is not None and depth > skipping_below:
            continue
        skipping_below = depth if name in dynamic or name in optional else None
        if name not in optional:
            kept.append((depth, name))
    return kept


async def test_the_tree_in_the_architecture_page_is_the_tree_piano_run_builds(
    dirs: CodexDirs,
) -> None:
    async with FakeBotApi() as telegram, FakeResponsesProvider() as provider:
        config = write_config(
            dirs,
            provider,
            f'[telegram]\nbase_url = "{telegram.base_url}"\nusers = {{ "1001" = "admin" }}\n'
            "[web]\nenabled = true\nport = 0\n[metrics]\nenabled = true\nport = 0\n",
        )
        state = dirs.root / "state"
        async with daemon_running(
            config,
            state / "console.sock",  # the last child: the whole tree is up
            {**os.environ, "PIANO_TELEGRAM_TOKEN": telegram.token, "PIANO_WEB_TOKEN": "w" * 32},
            stderr=sys.stderr.buffer,
        ):
            printed = await console(state, WALK)
    [line] = [line for line in printed.splitlines() if line.startswith("TREE ")]
    live = json.loads(line.removeprefix("TREE "))
    dynamic = {name for _, name, kind in live if kind == "DynamicSupervisor"}
    running = [(depth, name) for depth, name, _ in live]
    drawn = comparable(drawn_tree(), dynamic, optional=OPTIONAL - {name for _, name in running})
    assert drawn == running, (
        "docs/architecture.md's supervision tree differs from the running daemon's:\n"
        f"drawn:   {drawn}\nrunning: {running}"
    )


def test_every_file_and_directory_the_architecture_page_names_exists() -> None:
    root = ARCHITECTURE.parents[1]
    named = set(
        re.findall(
            r"`((?:actors|supervisors|schemas|piano|tests|bench|docs)/[^`\s]*)`",
            ARCHITECTURE.read_text(),
        )
    )
    assert named, "the page names no files: the pattern is broken"
    missing = sorted(path for path in named if not (root / path).exists())
    assert not missing, f"docs/architecture.md names files that do not exist: {missing}"
