"""The git a conversation's worktree needs, run as ``git`` processes (never a shell).

`add_worktree` gives a branch a worktree at a path of Piano's choosing: the branch is created
from the repository's HEAD when it does not exist, checked out when it does; git itself refuses
a branch already checked out elsewhere (another worktree, the main checkout), and that refusal
is what the user reads. Git's environment is the daemon's without ``GIT_*`` variables (which
could point it at another repository) and without prompts.

The daemon's git runs outside every jail, in a repository an agent may have written (a
conversation's jail or codex's cwd is the project's checkout, ``.git`` included): so it runs no
hook (``core.hooksPath``: a ``post-checkout`` planted by the agent would run with the daemon's
rights when ``/branch`` adds a worktree) and no fsmonitor command, and it refuses to check out a
repository whose own configuration (``.git/config`` and what it includes, not the operator's
global or system files) defines a filter: a smudge filter is a command git runs on checkout,
and git has no switch to ignore the repository's.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Final

__all__ = ["GitError", "add_worktree", "check_branch", "is_repository", "worktree_branch"]


class GitError(Exception):
    """git refused; the message is git's own last line, for the user."""


def _environment() -> dict[str, str]:
    environ = {name: value for name, value in os.environ.items() if not name.startswith("GIT_")}
    environ["GIT_TERMINAL_PROMPT"] = "0"
    return environ


_NOTHING_TO_RUN: Final = ("-c", f"core.hooksPath={os.devnull}", "-c", "core.fsmonitor=false")
"""What keeps the repository's own configuration from making the daemon's git run a command."""


async def _git(*args: str, cwd: Path, timeout: float = 60.0) -> tuple[int, str]:
    """Run ``git args`` in `cwd`: its exit status and its output (stdout then stderr)."""
    process = await asyncio.create_subprocess_exec(
        "git",
        *_NOTHING_TO_RUN,
        *args,
        cwd=cwd,
        env=_environment(),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise GitError(f"git {args[0]} did not finish in {timeout:g}s") from None
    text = (out + err).decode("utf-8", "replace").strip()
    assert process.returncode is not None
    return process.returncode, text


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "git failed without a message"


async def is_repository(path: Path) -> bool:
    """Whether `path` is the top of a git working tree."""
    if not await asyncio.to_thread(path.is_dir):
        return False
    status, top = await _git("rev-parse", "--show-toplevel", cwd=path)
    return status == 0 and await asyncio.to_thread(_same, Path(top), path)


def _same(one: Path, other: Path) -> bool:
    return one.resolve() == other.resolve()


async def check_branch(repository: Path, name: str) -> None:
    """`GitError` unless `name` is a valid branch name (``git check-ref-format --branch``),
    and not an option in disguise."""
    if name.startswith("-"):
        raise GitError(f"{name!r} is not a valid branch name")
    status, _ = await _git("check-ref-format", "--branch", name, cwd=repository)
    if status != 0:
        raise GitError(f"{name!r} is not a valid branch name")


async def worktree_branch(path: Path) -> str | None:
    """The branch checked out at `path`, or None when it is no git worktree."""
    if not await asyncio.to_thread(path.is_dir):
        return None
    status, branch = await _git("symbolic-ref", "--quiet", "--short", "HEAD", cwd=path)
    return branch if status == 0 else None


async def add_worktree(repository: Path, path: Path, branch: str) -> None:
    """A worktree of `repository` at `path` (which must not exist) on `branch`, created from
    HEAD if the repository has no such branch yet."""
    exists, _ = await _git(
        "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}", cwd=repository
    )
    if exists == 0:
        args = ["worktree", "add", "--", str(path), branch]
    else:
        args = ["worktree", "add", "-b", branch, "--", str(path)]
    await _refuse_repository_filters(repository)
    status, text = await _git(*args, cwd=repository)
    if status != 0:
        raise GitError(_last_line(text))


async def _refuse_repository_filters(repository: Path) -> None:
    """`GitError` if the repository's own configuration defines a filter (see the module
    documentation); the operator's global and system configuration are trusted."""
    _, listed = await _git("config", "--show-scope", "--get-regexp", r"^filter\.", cwd=repository)
    for line in listed.splitlines():
        scope, _, entry = line.partition("\t")
        if scope.strip() not in ("global", "system"):
            key = entry.split(" ", 1)[0]
            raise GitError(
                f"the repository's own git configuration defines {key}, a command git would "
                "run when checking out; remove it from its .git/config to use /branch"
            )
