"""`Projects`: which project (and worktree) each conversation works in, kept and answered.

It is the actor registered as `piano.tools.WORKSPACES`: codex's conversations ask it for their
cwd at every turn, the tools for their jail's ``/workspace`` (`WorkspaceOf`), the chat commands
change it (`ChooseProject`, `ChooseBranch`, `ListProjects`). One actor does all of it, so two
``/branch`` of one repository never run git at once and never both take one branch.

Choices are kept in ``projects/choices.json`` in the state directory (owner-only, replaced
atomically: a crash leaves the old file or the new one), beside the worktrees they name — both
belong to this machine, whatever store the daemon uses — and read back when the actor starts,
so a conversation's choice survives restarts. A choice whose project left the configuration is
dropped (the conversation is back in its agent's workspace); its worktree stays on disk.
"""

from __future__ import annotations

import asyncio
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from actors import NOREPLY, Actor, Caller
from piano._fs import save_into
from piano.projects._git import (
    GitError,
    add_worktree,
    check_branch,
    is_repository,
    worktree_branch,
)
from piano.tools import Workspace, WorkspaceOf

if TYPE_CHECKING:
    from piano.config import ProjectConfig

__all__ = [
    "ChooseBranch",
    "ChooseProject",
    "ListProjects",
    "ProjectListing",
    "Projects",
    "ProjectsRefused",
    "worktree_path",
]

KeyOf = Callable[[str], "tuple[str, str, str] | None"]
"""A thread id's conversation, (surface, conversation, agent), as the store records it."""

_Key = tuple[str, str, str]


class ProjectsRefused(Exception):
    """A choice that cannot be made; the message is the sentence the user reads."""


@dataclass(frozen=True, slots=True)
class ChooseProject:
    """Work in `project` (None: back to the agent's workspace). Reply: `Workspace | None`."""

    key: _Key
    project: str | None
    thread_id: str | None = None


@dataclass(frozen=True, slots=True)
class ChooseBranch:
    """Work in a worktree of the chosen project on `branch`. Reply: `Workspace`."""

    key: _Key
    branch: str
    thread_id: str | None = None


@dataclass(frozen=True, slots=True)
class ListProjects:
    """The configured projects and this conversation's choice. Reply: `ProjectListing`."""

    key: _Key


@dataclass(frozen=True, slots=True)
class ProjectListing:
    projects: tuple[tuple[str, str], ...]
    """Each configured project's name and description, by name."""
    chosen: Workspace | None


class _Choice(msgspec.Struct, frozen=True, kw_only=True):
    surface: str
    conversation: str
    agent: str
    project: str
    branch: str | None = None
    chosen_at: float = 0.0


class _Choices(msgspec.Struct, kw_only=True):
    version: int = 1
    choices: list[_Choice] = msgspec.field(default_factory=list)


def worktree_path(root: Path, project: str, branch: str) -> Path:
    """Where `branch` of `project` gets its worktree: one directory per project under `root`,
    the branch's name made one file name (``feature/x`` → ``feature%2Fx``)."""
    return root / project / urllib.parse.quote(branch, safe="")


class Projects(Actor):
    """See the module documentation."""

    def __init__(
        self,
        projects: Mapping[str, ProjectConfig],
        *,
        state: Path,
        worktrees: Path,
        key_of: KeyOf | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.projects = dict(projects)
        self.state = state
        self.worktrees = worktrees
        self.key_of = key_of
        self.clock = clock
        self.choices: dict[_Key, _Choice] = {}
        self.threads: dict[str, _Key] = {}

    def describe(self) -> str:
        return f"{len(self.projects)} projects, {len(self.choices)} conversations in one"

    async def init(self) -> None:
        self.choices = await asyncio.to_thread(self._load)

    # -- requests -----------------------------------------------------------------------------

    async def handle_call(self, message: Any, caller: Caller) -> Any:
        try:
            return await self._answer(message, caller)
        except ProjectsRefused as exc:  # the caller's error, not the actor's
            caller.fail(exc)
            return NOREPLY

    async def _answer(self, message: Any, caller: Caller) -> Any:
        match message:
            case WorkspaceOf():
                return await self._workspace_of(message)
            case ChooseProject(key=key, project=project, thread_id=thread_id):
                self._remember(thread_id, key)
                return await self._choose_project(key, project)
            case ChooseBranch(key=key, branch=branch, thread_id=thread_id):
                self._remember(thread_id, key)
                return await self._choose_branch(key, branch)
            case ListProjects(key=key):
                listing = tuple(
                    (name, self.projects[name].description) for name in sorted(self.projects)
                )
                return ProjectListing(listing, self._workspace(self.choices.get(key)))
        return await super().handle_call(message, caller)

    def _remember(self, thread_id: str | None, key: _Key) -> None:
        if thread_id is not None:
            self.threads[thread_id] = key

    async def _workspace_of(self, asked: WorkspaceOf) -> Workspace | None:
        if not self.choices:
            return None
        if asked.surface is not None and asked.conversation is not None and asked.agent:
            key: _Key | None = (asked.surface, asked.conversation, asked.agent)
            self.threads[asked.thread_id] = (asked.surface, asked.conversation, asked.agent)
        else:
            key = self.threads.get(asked.thread_id)
            if key is None and self.key_of is not None:
                key = await asyncio.to_thread(self.key_of, asked.thread_id)
                if key is not None:
                    self.threads[asked.thread_id] = key
        return self._workspace(self.choices.get(key)) if key is not None else None

    def _workspace(self, choice: _Choice | None) -> Workspace | None:
        if choice is None or choice.project not in self.projects:
            return None
        if choice.branch is None:
            path = _project_path(self.projects[choice.project])
        else:
            path = worktree_path(self.worktrees, choice.project, choice.branch)
        return Workspace(path=path, project=choice.project, branch=choice.branch)

    async def _choose_project(self, key: _Key, project: str | None) -> Workspace | None:
        if project is None:
            if self.choices.pop(key, None) is not None:
                await self._save()
            return None
        config = self.projects.get(project)
        if config is None:
            known = ", ".join(sorted(self.projects)) or "none are configured"
            raise ProjectsRefused(f"There is no project named {project!r} (projects: {known}).")
        if not await asyncio.to_thread(_project_path(config).is_dir):
            raise ProjectsRefused(
                f"Project {project}'s directory does not exist on the daemon's machine; "
                "ask the daemon's owner to create it or fix projects.{project}.path."
            )
        return await self._set(key, project, None)

    async def _choose_branch(self, key: _Key, branch: str) -> Workspace:
        choice = self.choices.get(key)
        if choice is None or choice.project not in self.projects:
            raise ProjectsRefused("Choose a project first: /project NAME (/project lists them).")
        project = choice.project
        repository = _project_path(self.projects[project])
        if not await is_repository(repository):
            raise ProjectsRefused(f"Project {project} is not a git repository: it has no branches.")
        try:
            await check_branch(repository, branch)
        except GitError as exc:
            raise ProjectsRefused(f"{exc}: choose another name.") from None
        for other, taken in self.choices.items():
            if other != key and taken.project == project and taken.branch == branch:
                raise ProjectsRefused(
                    f"Branch {branch} of project {project} is being worked on in another "
                    "conversation; choose another branch name."
                )
        path = worktree_path(self.worktrees, project, branch)
        if await asyncio.to_thread(path.exists):
            if await worktree_branch(path) != branch:
                raise ProjectsRefused(
                    f"The worktree for branch {branch} of project {project} is no longer on "
                    "that branch; choose another branch name."
                )
        else:
            await asyncio.to_thread(_make_private, path.parent, self.worktrees)
            try:
                await add_worktree(repository, path, branch)
            except GitError as exc:
                raise ProjectsRefused(f"git could not make the worktree: {exc}") from None
            self.log.info("projects.worktree_added", project=project, branch=branch)
        workspace = await self._set(key, project, branch)
        assert workspace is not None
        return workspace

    async def _set(self, key: _Key, project: str, branch: str | None) -> Workspace | None:
        surface, conversation, agent = key
        self.choices[key] = _Choice(
            surface=surface,
            conversation=conversation,
            agent=agent,
            project=project,
            branch=branch,
            chosen_at=self.clock(),
        )
        await self._save()
        self.log.info("projects.chosen", surface=surface, project=project, branch=branch)
        return self._workspace(self.choices[key])

    # -- the file -----------------------------------------------------------------------------

    def _load(self) -> dict[_Key, _Choice]:
        path = self.state / "projects" / "choices.json"
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return {}
        try:
            stored = msgspec.json.decode(data, type=_Choices)
        except msgspec.DecodeError as exc:
            self.log.error("projects.choices_unreadable", path=str(path), error=str(exc))
            return {}
        return {
            (c.surface, c.conversation, c.agent): c
            for c in stored.choices
            if c.project in self.projects
        }

    async def _save(self) -> None:
        data = msgspec.json.encode(_Choices(choices=list(self.choices.values())))
        await asyncio.to_thread(save_into, self.state, "projects", "choices.json", data)


def _project_path(config: ProjectConfig) -> Path:
    return Path(config.path).expanduser()


def _make_private(directory: Path, root: Path) -> None:
    """`directory` and `root` above it, created owner-only."""
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
