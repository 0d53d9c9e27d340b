"""Projects and worktrees through `piano run`: two conversations on one repository, each on a
branch of its own (``/branch`` typed in `piano chat`), the real codex running the (fake)
model's commands in the conversation's own worktree — its sandbox writes nowhere else — and
Piano's jailed shell seeing that worktree and nothing of the other; the choice survives a
restart of the daemon."""

from __future__ import annotations

import pytest

from piano.projects import worktree_path
from tests.acceptance.daemon import chat
from tests.acceptance.test_jail import daemon, jail_config, shell, tool_outputs
from tests.fakes.responses_provider import CodexDirs, ExecCommand, FakeResponsesProvider, Text
from tests.projects.test_projects import branch_of, make_repository

pytestmark = pytest.mark.anyio


async def test_two_conversations_on_one_repository_each_work_in_their_own_worktree(
    dirs: CodexDirs,
) -> None:
    repository = make_repository(dirs.root / "repo")
    worktrees = dirs.root / "state" / "worktrees"
    alice, bob = worktree_path(worktrees, "repo", "alice"), worktree_path(worktrees, "repo", "b")
    async with FakeResponsesProvider() as provider:
        config = jail_config(dirs, provider)
        config.write_text(f'[projects.repo]\npath = "{repository}"\n' + config.read_text())
        as_alice, as_bob = ("--conversation", "alice"), ("--conversation", "bob")
        async with daemon(dirs, config):
            listed = await chat(config, "/project", *as_alice)
            chosen = [
                await chat(config, "/project repo", *as_alice),
                await chat(config, "/project repo", *as_bob),
                await chat(config, "/branch alice", *as_alice),
                await chat(config, "/branch b", *as_bob),
                await chat(config, "/branch alice", *as_bob),
            ]
            provider.script(
                ExecCommand("echo from-alice > by-alice.txt; echo x > ../b/by-alice.txt"),
                Text("done"),
            )
            assert "done" in await chat(config, "write your file", *as_alice)
            [alice_ran] = await tool_outputs(provider, 1)
            provider.script(shell("ls -A /workspace; ls ../alice ../../worktrees"), Text("ok"))
            assert "ok" in await chat(config, "look around", *as_bob)
            [bob_sees] = await tool_outputs(provider, 3)  # requests 2 and 3: bob's turn
        async with daemon(dirs, config):
            provider.script(ExecCommand("echo again > after-restart.txt"), Text("done"))
            assert "done" in await chat(config, "once more", *as_alice)

    assert "repo" in listed
    assert "project repo" in chosen[0]
    assert "project repo" in chosen[1]
    assert "branch alice" in chosen[2]
    assert "branch b" in chosen[3]
    assert "another conversation" in chosen[4], "bob cannot take alice's branch"
    assert (branch_of(alice), branch_of(bob)) == ("alice", "b")
    assert (alice / "by-alice.txt").read_text() == "from-alice\n"
    assert not (bob / "by-alice.txt").exists(), "codex's sandbox wrote another worktree"
    assert "../b/by-alice.txt: Read-only file system" in alice_ran, alice_ran
    assert not (repository / "by-alice.txt").exists()
    assert "README" in bob_sees, bob_sees
    assert "by-alice.txt" not in bob_sees, "the jail saw alice's worktree"
    assert "No such file or directory" in bob_sees
    assert (alice / "after-restart.txt").read_text() == "again\n", "the choice survived"
