"""Where codex's files are and what an agent may write without asking, as the configuration
says: `piano.config` refuses a state directory inside what an agent may write, and
`piano.codex` (which re-exports these) starts codex with them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from piano.config import Config

__all__ = ["codex_dirs", "codex_writable_roots", "worktrees_root"]


def codex_dirs(config: Config) -> tuple[Path, Path]:
    """CODEX_HOME (configured, or under the state directory) and the TMPDIR codex gets.

    Codex refuses to create its sandbox helpers under its temp directory, and then every
    sandboxed command fails; so codex gets a TMPDIR of its own beside CODEX_HOME, never above it.
    """
    home = (
        Path(config.codex.home).expanduser()
        if config.codex.home
        else config.state_path("codex-home")
    )
    tmp = home.parent / f"{home.name}-tmp"
    return home, tmp


def worktrees_root(config: Config) -> Path:
    """Where ``/branch`` makes the conversations' git worktrees: ``worktrees/`` in the state
    directory (``<project>/<branch>`` under it), out of every project, so an agent working in
    a project's own checkout cannot write another conversation's worktree."""
    return config.state_path("worktrees")


def codex_writable_roots(config: Config) -> list[tuple[str, Path]]:
    """What an agent may write without asking, by the configuration key that sets it: each
    codex agent's workspace (unless its sandbox is read-only; ``danger-full-access`` writes
    everywhere and is the operator's explicit choice), each project a conversation may choose
    and the worktrees made in them (a conversation's chosen project is its codex cwd), and
    codex's TMPDIR. /tmp is not one (`codex_args` excludes it)."""
    roots = [
        (f"agents.{name}.workspace", Path(agent.workspace).expanduser())
        for name, agent in config.agents.items()
        if agent.backend == "codex" and agent.sandbox == "workspace-write"
    ]
    roots += [
        (f"projects.{name}.path", Path(project.path).expanduser())
        for name, project in config.projects.items()
    ]
    roots.append(("codex.home", codex_dirs(config)[1]))
    return roots
