"""Where a conversation works: the one question the tools and the agents ask the projects.

A conversation works in its agent's workspace until it chooses a configured project
(``/project NAME``, and ``/branch NAME`` for a git worktree of its own); then codex's cwd, the
jailed shell's ``/workspace`` and the files the tools save all follow the choice. The actor that
knows the choices (`piano.projects.Projects`) registers as `WORKSPACES` and answers
`WorkspaceOf` with a `Workspace`, or None for "the agent's own". The question is declared here,
below the agents and the tools that ask it, so neither needs the projects package.

`workspace_of` asks it: None when no such actor runs (a Piano built without it, the tools'
tests) or when the conversation chose nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from actors import ActorSystem

__all__ = ["WORKSPACES", "Workspace", "WorkspaceOf", "workspace_of"]

WORKSPACES: Final = "projects"
"""The registered name of the actor that answers `WorkspaceOf`."""


@dataclass(frozen=True, slots=True)
class Workspace:
    """The directory a conversation chose: a project's checkout or a worktree of it."""

    path: Path
    project: str
    branch: str | None = None
    """The branch of the conversation's own worktree; None: the project's checkout itself."""

    def describe(self) -> str:
        where = f"project {self.project}"
        return f"{where}, branch {self.branch}" if self.branch else where


@dataclass(frozen=True, slots=True)
class WorkspaceOf:
    """Where does the conversation of `thread_id` work? Reply: `Workspace`, or None for its
    agent's own workspace. The conversation's actor names its conversation too (`surface`,
    `conversation`, `agent`); the tools know only the thread and the answer comes from the
    store's record of it."""

    thread_id: str
    surface: str | None = None
    conversation: str | None = None
    agent: str | None = None


async def workspace_of(
    system: ActorSystem,
    thread_id: str,
    *,
    surface: str | None = None,
    conversation: str | None = None,
    agent: str | None = None,
    timeout: float = 30.0,
) -> Workspace | None:
    """The conversation's chosen workspace (see the module documentation)."""
    projects = system.whereis(WORKSPACES)
    if projects is None:
        return None
    answer: Workspace | None = await projects.call(
        WorkspaceOf(thread_id, surface, conversation, agent), timeout=timeout
    )
    return answer
