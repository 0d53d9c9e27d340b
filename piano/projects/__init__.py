"""Projects and worktrees: which directory a conversation works in.

```toml
[projects.piano]
path = "~/src/piano"          # a directory the operator chose; chats can only name projects
description = "the orchestrator"
```

In a chat, ``/project`` lists the configured projects, ``/project NAME`` makes the conversation
work in one, ``/project none`` takes it back to its agent's workspace, and ``/branch NAME``
gives it a git worktree of its own on branch NAME (created from the project's HEAD when the
branch is new). From the next message, codex's cwd (and with it the writable root of codex's
sandbox), the jailed shell's ``/workspace`` and the files the tools save are that directory.

- **Where worktrees live**: ``worktrees/<project>/<branch>`` in the state directory (owner-only;
  a branch name with ``/`` is one escaped file name), never inside a project, so an agent working
  in a project's own checkout cannot write another conversation's worktree. Codex runs with
  the state directory hidden (`piano.codex`), with this one directory bound back.
- **No collisions**: one branch of a project belongs to one conversation at a time; another
  conversation asking for it is refused with a sentence. git itself refuses a branch already
  checked out in the project's main checkout.
- **Only configured paths**: a chat names a project, never a path; the configuration refuses a
  project inside Piano's state or the jails' root (`piano.config`).
- **The jail still sees one directory**: the conversation's project (or its worktree) is the
  jail's only host directory; another conversation's worktree is not in it. In a worktree,
  git's own data (``<project>/.git``) is outside the jail, so git commands run in the jail do
  not work there; files do.
- **Kept across restarts**: the choices are kept beside the worktrees (see `Projects`).

Codex keeps a turn's cwd for the thread (``turn/start`` takes ``cwd``), so a conversation moves
without a new Codex thread: its history stays.
"""

from __future__ import annotations

from piano.projects._actor import (
    ChooseBranch,
    ChooseProject,
    ListProjects,
    ProjectListing,
    Projects,
    ProjectsRefused,
    worktree_path,
)
from piano.projects._commands import branch, project
from piano.projects._git import GitError

__all__ = [
    "ChooseBranch",
    "ChooseProject",
    "GitError",
    "ListProjects",
    "ProjectListing",
    "Projects",
    "ProjectsRefused",
    "branch",
    "project",
    "worktree_path",
]
