"""The chat commands ``/project`` and ``/branch`` (declared in `piano.commands.COMMANDS`)."""

from __future__ import annotations

from actors import ActorExited, ActorTimeout
from piano.commands import CommandError, Invocation
from piano.projects._actor import (
    ChooseBranch,
    ChooseProject,
    ListProjects,
    ProjectListing,
    ProjectsRefused,
)
from piano.tools import WORKSPACES, Workspace

__all__ = ["branch", "project"]

_NONE = "none"
"""``/project none``: back to the agent's own workspace."""


async def _ask(invocation: Invocation, message: object) -> object:
    projects = invocation.system.whereis(WORKSPACES)
    if projects is None:
        raise CommandError("Projects are not available in this Piano right now; try again.")
    try:
        return await projects.call(message, timeout=120)
    except ProjectsRefused as exc:
        raise CommandError(str(exc)) from None
    except (ActorExited, ActorTimeout):
        raise CommandError("Projects did not answer; try again in a moment.") from None


def _key(invocation: Invocation) -> tuple[str, str, str]:
    key = invocation.key
    return (key.surface, key.conversation, key.agent)


def _here(workspace: Workspace | None) -> str:
    if workspace is None:
        return "This conversation works in its agent's own workspace."
    if workspace.branch is None:
        return f"This conversation works in project {workspace.project}."
    return (
        f"This conversation works in project {workspace.project}, on branch "
        f"{workspace.branch} (a git worktree of its own)."
    )


async def project(invocation: Invocation, argument: str) -> str:
    """``/project``: list the projects; ``/project NAME``: work in one; ``/project none``:
    back to the agent's workspace. The agent's shell and codex follow from the next turn."""
    if not argument:
        listing = await _ask(invocation, ListProjects(_key(invocation)))
        assert isinstance(listing, ProjectListing)
        chosen = listing.chosen
        if not listing.projects:
            return "No projects are configured ([projects.NAME] path = ... in the config)."
        lines = ["Projects:"]
        for known, description in listing.projects:
            mark = " (this conversation)" if chosen is not None and chosen.project == known else ""
            lines.append(f"  {known}{mark}" + (f" — {description}" if description else ""))
        lines.append(_here(chosen))
        lines.append("/project NAME to work in one, /branch NAME for a worktree of your own.")
        return "\n".join(lines)
    if " " in argument:
        raise CommandError("A project's name is one word: /project NAME (/project lists them).")
    name = None if argument.lower() == _NONE else argument
    chosen_now = await _ask(invocation, ChooseProject(_key(invocation), name, invocation.thread_id))
    assert chosen_now is None or isinstance(chosen_now, Workspace)
    return _here(chosen_now) + (" It applies from the next message." if name else "")


async def branch(invocation: Invocation, argument: str) -> str:
    """``/branch NAME``: work in a git worktree of the chosen project on branch NAME (made
    from the project's HEAD if the branch is new); two conversations never share one."""
    if not argument or " " in argument:
        raise CommandError("Usage: /branch NAME (a git branch of this conversation's project).")
    chosen = await _ask(invocation, ChooseBranch(_key(invocation), argument, invocation.thread_id))
    assert isinstance(chosen, Workspace)
    return _here(chosen) + " It applies from the next message."
