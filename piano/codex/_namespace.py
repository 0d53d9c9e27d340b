"""Codex runs in a mount namespace where Piano's own state is not there to read.

Why: codex's sandbox (bubblewrap + seccomp, ``workspace-write`` or ``read-only``) keeps the
agent's commands from *writing* outside their roots, but lets them *read* the whole file
system. A prompt-injected agent could then read ``piano.db`` (every conversation of every
surface), ``web-tokens.json``, the jails of other conversations, and connect to the console
socket (a Python prompt inside the daemon) or the chat socket. So `codex app-server` itself is
started by bubblewrap in a mount namespace of its own, where:

* the whole host is visible as it is (``--dev-bind / /``), so codex, its sandbox helper, the
  agent's tools and the network (the provider, Piano's MCP endpoint on 127.0.0.1) work as
  before: codex's network namespace is the daemon's; only its sandboxed children lose the
  network, as they always did;
* Piano's state directory, the database's directory and the jails' root are each covered by an
  empty owner-only tmpfs (`hidden`), so nothing there can be read, listed or connected to (a
  database configured outside the state directory hides its whole directory: give it one of
  its own);
* what codex needs inside them is bound back (`kept`): its CODEX_HOME, its TMPDIR, every
  codex agent's workspace and, with projects configured, the conversations' git worktrees.
  Mounts are applied parents first, so a workspace that holds a hidden directory still has it
  hidden, and a CODEX_HOME under the state directory is still there;
* codex gets a PID namespace and a /proc of its own (``--unshare-pid --proc /proc``): without
  them, ``/proc/<daemon pid>/root/`` would lead back into the daemon's view of the file system
  (and ``/proc/<daemon pid>/environ`` to its secrets), for an agent in ``danger-full-access``
  or any command codex does not sandbox;
* ``--die-with-parent``: codex dies with the daemon, even when the daemon is SIGKILLed; and
  when codex exits, the kernel kills every process left in its PID namespace, so no command
  the agent started (sandboxed or not) outlives it.

* codex has no capability, so no command of the agent, sandboxed or not, can unmount what
  hides the state: bubblewrap drops them for a user, and a daemon running as root runs codex
  as uid `_AS` in a user namespace of its own with ``--cap-drop ALL`` (as root, an agent in
  ``danger-full-access`` unmounted the tmpfs and read piano.db). In a namespace of its own
  making, the covering mounts are locked by the kernel.

Codex's own sandbox still works inside, nested (it needs unprivileged user namespaces, as it
does anyway): checked with codex, the daemon running as root (tests/acceptance/
test_agent_reach.py); as another user a nested bubblewrap (not codex) was checked.

What remains readable to the agent: everything else the daemon's user can read (its home, its
other files: keep Piano's user for Piano), and all of CODEX_HOME, because one codex process
serves every conversation and needs its whole home: the rollouts (``sessions/``) and codex's
databases of the *other* conversations codex runs are readable by any agent of this daemon.
Separating them would take one codex process, or one CODEX_HOME, per conversation.

Bubblewrap is required (it is for the jailed shell too): without it codex does not start, and
the error says how to install it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from piano.config import worktrees_root

if TYPE_CHECKING:
    from piano.config import Config

__all__ = ["BubblewrapMissing", "codex_namespace", "hiding_prefix"]


_AS = "1000"
"""The uid and gid a daemon running as root gives codex: in a user namespace of its own, where
root's files are its own (so it writes its home as before) and it has no capability. Not 0:
as uid 0, codex's nested bubblewrap would take itself for privileged and fail without them."""


class BubblewrapMissing(FileNotFoundError):
    """``bwrap`` is not on PATH."""


def hiding_prefix(hidden: Iterable[Path], kept: Iterable[Path]) -> list[str]:
    """The argv prefix that runs a command in a mount namespace where each `hidden` directory
    is empty, except the `kept` directories under it (see the module documentation).

    Every path must exist (a mount point that does not would be created on the host). Paths
    are resolved first, so a symlink cannot point a mount elsewhere than it was meant to go.
    """
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise BubblewrapMissing(
            "bubblewrap (bwrap) is not installed: Piano runs codex in a mount namespace that "
            "hides its state from the agent; install it (apt-get install bubblewrap)"
        )
    covered = sorted({path.resolve() for path in hidden})
    mounts = [(path, 0, ["--perms", "0700", "--tmpfs", str(path)]) for path in covered]
    for path in sorted({path.resolve() for path in kept}):
        if any(path.is_relative_to(root) for root in covered):
            mounts.append((path, 1, ["--bind", str(path), str(path)]))
    # Parents first; where a path is both hidden and kept, the bind (what codex needs) wins.
    mounts.sort(key=lambda mount: (len(mount[0].parts), mount[1]))
    argv = [bwrap, "--die-with-parent", "--unshare-pid", "--dev-bind", "/", "/", "--proc", "/proc"]
    if os.geteuid() == 0:
        # Root keeps CAP_SYS_ADMIN in a namespace bubblewrap makes, and an unsandboxed command
        # (danger-full-access, an approved escalation) could then unmount what hides the state.
        argv[1:1] = ["--unshare-user", "--uid", _AS, "--gid", _AS, "--cap-drop", "ALL"]
    for _, _, options in mounts:
        argv += options
    return [*argv, "--"]


def codex_namespace(config: Config, home: Path, tmp: Path) -> list[str]:
    """The argv prefix codex runs under for `config` (`home` and `tmp`: its CODEX_HOME and
    TMPDIR): the state directory, the database's directory and the jails' root hidden; codex's
    home, its TMPDIR and every codex agent's workspace kept. Creates them (owner-only) if
    missing."""
    hidden = [
        config.state_path("."),
        config.state_path(config.daemon.database).parent,
        Path(config.tools.jail.workspace_root).expanduser(),
    ]
    kept = [home, tmp]
    if config.projects:  # the conversations' git worktrees (`piano.projects`)
        kept.append(worktrees_root(config))
    kept += [
        Path(agent.workspace).expanduser()
        for agent in config.agents.values()
        if agent.backend == "codex"
    ]
    for path in (*hidden, *kept):
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return hiding_prefix(hidden, kept)
