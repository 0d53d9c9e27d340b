"""The jailed shell as a per-thread actor: commands audited in the store with their exit codes,
a timeout reported to the caller as a restart, unrecordable commands refused, threads apart."""

from __future__ import annotations

import asyncio

import pytest

from piano.tools import ToolError, jail_name
from piano.tools.jail import RestartReason, command_log
from tests.tools.conftest import Tools

pytestmark = pytest.mark.anyio


async def test_every_command_is_recorded_in_the_store_with_its_exit_code(tools: Tools) -> None:
    box = tools.toolbox
    first = await box.shell("thread-a", "echo hello; echo oops >&2")
    failed = await box.shell("thread-a", "(exit 3)")
    state = await box.shell("thread-a", "cd /tmp && export X=42; true")
    kept = await box.shell("thread-a", "pwd; echo $X")

    assert (first.exit_code, first.stdout_text, first.stderr_text) == (0, "hello\n", "oops\n")
    assert failed.exit_code == 3
    assert state.exit_code == 0
    assert kept.stdout_text == "/tmp\n42\n"
    rows = await asyncio.to_thread(command_log, tools.db, "thread-a")
    assert [(r.command, r.exit_code, r.timed_out) for r in rows] == [
        ("echo hello; echo oops >&2", 0, False),
        ("(exit 3)", 3, False),
        ("cd /tmp && export X=42; true", 0, False),
        ("pwd; echo $X", 0, False),
    ]
    assert (rows[0].stdout, rows[0].stderr, rows[0].stdout_bytes) == ("hello\n", "oops\n", 6)
    assert len({r.session for r in rows}) == 1


async def test_a_command_that_outlives_its_timeout_is_reported_as_a_restart_and_audited(
    tools: Tools,
) -> None:
    box = tools.toolbox
    await box.shell("thread-a", "cd /tmp")
    session = tools.system.whereis(jail_name("thread-a"))

    result = await box.shell("thread-a", "sleep 60", timeout=0.5)
    after = await box.shell("thread-a", "pwd")

    assert result.timed_out
    assert result.exit_code is None
    assert result.restart_reason is RestartReason.TIMEOUT
    assert after.stdout_text == "/workspace\n", "the restarted jail starts from a fresh shell"
    assert tools.system.whereis(jail_name("thread-a")) == session, "the actor itself lives on"
    rows = await asyncio.to_thread(command_log, tools.db, "thread-a")
    assert [(r.command, r.timed_out, r.restart_reason) for r in rows[1:]] == [
        ("sleep 60", True, "timeout"),
        ("pwd", False, None),
    ]


async def test_a_command_that_cannot_be_recorded_first_never_runs(tools: Tools) -> None:
    with pytest.raises(ToolError, match="not run: it could not be recorded"):
        await tools.toolbox.shell("thread-unknown-to-the-store", "touch ran")
    workspace = tools.config.jail.workspace("thread-unknown-to-the-store")
    assert not (workspace / "ran").exists(), "the command ran before its audit row existed"


async def test_each_thread_has_its_own_jail_and_workspace(tools: Tools) -> None:
    box = tools.toolbox
    await box.shell("thread-a", "echo a > mine.txt")
    listing_b = await box.shell("thread-b", "ls -A /workspace; echo b > mine.txt")
    back_a = await box.shell("thread-a", "cat mine.txt")

    assert listing_b.stdout_text == ""
    assert back_a.stdout_text == "a\n"
    assert (tools.config.jail.workspace("thread-b") / "mine.txt").read_text() == "b\n"
    a, b = (tools.system.whereis(jail_name(t)) for t in ("thread-a", "thread-b"))
    assert a is not None
    assert a != b
