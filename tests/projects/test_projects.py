"""Projects and worktrees (`piano.projects`): a conversation works only in a configured
project, ``/branch`` gives it a git worktree no other conversation shares, the choice survives
a restart, and the jailed shell sees the chosen directory and nothing else. Real git, real
bubblewrap; the commands run through `piano.commands.Commands` as every surface runs them."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import pytest

from actors import ActorSystem
from piano.agents import ThreadKey
from piano.commands import Commands
from piano.config import Config, ProjectConfig
from piano.mcp import TOOLS as TOOLS_SUPERVISOR
from piano.projects import Projects, worktree_path
from piano.tools import WORKSPACES, Toolbox, Workspace, WorkspaceOf, tool_specs
from supervisors import Supervisor
from tests.tools.conftest import start_store, tools_config

pytestmark = pytest.mark.anyio

A = ThreadKey("terminal", "alice", "default")
B = ThreadKey("terminal", "bob", "default")


def make_repository(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "README").write_text("the project\n")
    for args in (
        ["init", "-q", "-b", "main"],
        ["add", "README"],
        ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "0"],
    ):
        subprocess.run(["git", *args], cwd=path, check=True)
    return path


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    return make_repository(tmp_path / "repo")


def projects_actor(tmp_path: Path, repository: Path, threads: dict[str, ThreadKey]) -> Projects:
    return Projects(
        {"repo": ProjectConfig(path=str(repository), description="the test repository")},
        state=tmp_path / "state",
        worktrees=tmp_path / "state" / "worktrees",
        key_of=lambda thread_id: (
            (k.surface, k.conversation, k.agent) if (k := threads.get(thread_id)) else None
        ),
    )


@pytest.fixture
async def system(tmp_path: Path, repository: Path) -> AsyncIterator[ActorSystem]:
    async with ActorSystem() as system:
        await system.spawn(projects_actor(tmp_path, repository, {}), name=WORKSPACES)
        yield system


async def run(system: ActorSystem, key: ThreadKey, text: str) -> str:
    reply = await Commands(cast("Config", None)).run(
        text, system=system, key=key, thread_id=None, user="u", owner=False
    )
    assert reply is not None
    return reply


async def where(system: ActorSystem, key: ThreadKey) -> Workspace | None:
    projects = system.whereis(WORKSPACES)
    assert projects is not None
    answer: Workspace | None = await projects.call(
        WorkspaceOf("t", key.surface, key.conversation, key.agent)
    )
    return answer


def branch_of(path: Path) -> str:
    done = subprocess.run(
        ["git", "symbolic-ref", "--short", "HEAD"], cwd=path, capture_output=True, check=True
    )
    return done.stdout.decode().strip()


async def test_each_conversation_gets_a_worktree_of_its_own_and_no_branch_is_taken_twice(
    system: ActorSystem, repository: Path, tmp_path: Path
) -> None:
    assert "project repo" in await run(system, A, "/project repo")
    assert "project repo" in await run(system, B, "/project repo")
    assert (await where(system, A)) == Workspace(repository, "repo")

    assert "branch feature/a" in await run(system, A, "/branch feature/a")
    assert "branch b" in await run(system, B, "/branch b")
    taken = await run(system, B, "/branch feature/a")
    again = await run(system, A, "/branch feature/a")

    a, b = await where(system, A), await where(system, B)
    assert a is not None
    assert b is not None
    assert a.path == worktree_path(tmp_path / "state" / "worktrees", "repo", "feature/a")
    assert a.path.parent == b.path.parent == tmp_path / "state" / "worktrees" / "repo"
    assert (branch_of(a.path), branch_of(b.path)) == ("feature/a", "b")
    assert (a.path / "README").read_text() == (b.path / "README").read_text() == "the project\n"
    assert "another conversation" in taken, "a branch another conversation works on is refused"
    assert b.branch == "b", "the refused conversation keeps its own worktree"
    assert "branch feature/a" in again, "a conversation may come back to its own branch"
    assert (a.path.parent.stat().st_mode & 0o077) == 0, "worktrees are owner-only"


async def test_a_chat_can_only_name_a_configured_project_never_a_path(
    system: ActorSystem,
) -> None:
    for name in ("/etc", "../repo", "other"):
        reply = await run(system, A, f"/project {name}")
        assert reply == f"There is no project named {name!r} (projects: repo)."
        assert await where(system, A) is None
    assert "Choose a project first" in await run(system, A, "/branch x")


async def test_bad_branch_names_get_a_sentence_and_change_nothing(system: ActorSystem) -> None:
    await run(system, A, "/project repo")
    for name in ("-b", "a..b", "x.lock", "@{u}"):
        reply = await run(system, A, f"/branch {name}")
        assert f"{name!r} is not a valid branch name: choose another name." == reply
    assert "Usage: /branch NAME" in await run(system, A, "/branch two words")
    chosen = await where(system, A)
    assert chosen is not None
    assert chosen.branch is None


async def test_the_list_names_every_project_and_marks_this_conversations(
    system: ActorSystem,
) -> None:
    before = await run(system, A, "/project")
    await run(system, A, "/project repo")
    after = await run(system, A, "/project")
    back = await run(system, A, "/project none")

    assert "  repo — the test repository" in before
    assert "its agent's own workspace" in before
    assert "  repo (this conversation) — the test repository" in after
    assert back == "This conversation works in its agent's own workspace."
    assert await where(system, A) is None


async def test_branch_runs_no_hook_or_command_an_agent_planted_in_the_repository(
    system: ActorSystem, repository: Path, tmp_path: Path
) -> None:
    # An agent working in the project's checkout can write its .git: what it plants there
    # must not run with the daemon's rights, outside every jail, when /branch adds a worktree.
    ran = tmp_path / "ran"
    hook = repository / ".git" / "hooks" / "post-checkout"
    hook.write_text(f"#!/bin/sh\necho hook >> {ran}\n")
    hook.chmod(0o755)
    monitor = tmp_path / "monitor"
    monitor.write_text(f"#!/bin/sh\necho fsmonitor >> {ran}\n")
    monitor.chmod(0o755)
    with (repository / ".git" / "config").open("a") as config:
        config.write(f"[core]\n\tfsmonitor = {monitor}\n")
    await run(system, A, "/project repo")

    assert "branch hooked" in await run(system, A, "/branch hooked")
    chosen = await where(system, A)
    assert chosen is not None
    assert branch_of(chosen.path) == "hooked"
    assert not ran.exists(), "the repository's hook or fsmonitor ran in the daemon"


async def test_branch_refuses_a_filter_an_agent_planted_in_the_repositorys_config(
    system: ActorSystem, repository: Path, tmp_path: Path
) -> None:
    # A smudge filter is a command git runs on checkout; git cannot be told to ignore the
    # repository's own, so a repository defining one is refused before anything is checked out.
    ran = tmp_path / "ran"
    with (repository / ".git" / "config").open("a") as config:
        config.write(f"[filter \"evil\"]\n\tsmudge = sh -c 'echo smudge >> {ran}; cat'\n")
    (repository / ".git" / "info").mkdir(exist_ok=True)
    (repository / ".git" / "info" / "attributes").write_text("* filter=evil\n")
    await run(system, A, "/project repo")

    reply = await run(system, A, "/branch filtered")
    assert "filter.evil.smudge" in reply, reply
    assert "remove it from its .git/config" in reply
    assert not ran.exists(), "the repository's smudge filter ran in the daemon"
    assert not (tmp_path / "state" / "worktrees" / "repo" / "filtered").exists()


async def test_a_branch_in_a_project_that_is_no_repository_is_refused(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    async with ActorSystem() as system:
        await system.spawn(projects_actor(tmp_path, plain, {}), name=WORKSPACES)
        await run(system, A, "/project repo")
        assert await run(system, A, "/branch x") == (
            "Project repo is not a git repository: it has no branches."
        )


async def test_a_conversations_choice_survives_a_restart(tmp_path: Path, repository: Path) -> None:
    async with ActorSystem() as system:
        await system.spawn(projects_actor(tmp_path, repository, {}), name=WORKSPACES)
        await run(system, A, "/project repo")
        await run(system, A, "/branch kept")
    choices = tmp_path / "state" / "projects" / "choices.json"
    assert (choices.stat().st_mode & 0o077) == 0
    async with ActorSystem() as system:
        await system.spawn(projects_actor(tmp_path, repository, {}), name=WORKSPACES)
        chosen = await where(system, A)
        assert chosen is not None
        assert (chosen.project, chosen.branch) == ("repo", "kept")
        assert branch_of(chosen.path) == "kept"
        assert await where(system, B) is None


async def test_the_jailed_shell_works_in_the_chosen_worktree_and_sees_no_other(
    tmp_path: Path, repository: Path
) -> None:
    threads = {"thread-a": A, "thread-b": B}
    async with ActorSystem() as system:
        await start_store(system, tmp_path / "piano.db", "thread-a", "thread-b")
        await system.spawn(projects_actor(tmp_path, repository, threads), name=WORKSPACES)
        config = tools_config(tmp_path)
        await system.spawn(Supervisor(tool_specs(config)), name=TOOLS_SUPERVISOR)
        box = Toolbox(system, config)
        before = await box.shell("thread-a", "ls -A /workspace")
        for key, name in ((A, "a"), (B, "b")):
            await run(system, key, "/project repo")
            await run(system, key, f"/branch {name}")

        wrote = await box.shell("thread-a", "echo mine > made-by-a; ls -A /workspace")
        look = await box.shell("thread-a", f"ls {tmp_path}/state || ls {tmp_path} || ls /workspace")
        other = await box.shell("thread-b", "ls -A /workspace")

        a, b = await where(system, A), await where(system, B)
        assert a is not None
        assert b is not None
        assert before.stdout_text == "", "before /project: the thread's own empty workspace"
        assert wrote.exit_code == 0
        assert (a.path / "made-by-a").read_text() == "mine\n"
        assert not (b.path / "made-by-a").exists()
        assert not (repository / "made-by-a").exists()
        assert look.exit_code == 0
        assert look.stdout_text.split() == ["README", "made-by-a"], (
            "nothing of the host around the worktree is in the jail"
        )
        assert "made-by-a" not in other.stdout_text
        assert "README" in other.stdout_text
