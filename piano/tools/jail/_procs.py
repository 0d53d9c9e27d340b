"""What a command leaves behind: finding and stopping the jail's processes other than its shell.

Inside the jail the process tree is always: bwrap's outer process (host side, the driver's
child) -> bwrap's init (pid 1 of the jail's pid namespace, reaps orphans) -> the persistent
bash -> whatever the current command started. Once a command has answered, anything still
alive under init besides the shell is a leftover (a background job, a daemonised busy loop, the
rest of a fork bomb, a process reading the command pipe): `stop_leftovers` SIGKILLs them until
none is left, so nothing a command starts outlives it and the next command's frame is read by
the shell alone. The tree is read from /proc (`PPid` of every process: the jail's cgroup
when it has one, else every process of the host), so it works with and without cgroups.

`strip_setid` removes set-user-id and set-group-id bits from everything in the workspace: files
written by the jail belong, on the host, to the jail's host uid (root when the daemon runs as
root), and a set-id binary left there would lend that uid to whoever can reach it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import time
from collections.abc import Iterable
from pathlib import Path

__all__ = ["JailTree", "find_tree", "nothing_left", "stop_leftovers", "strip_setid"]

_STOP_SECONDS = 5.0


class JailTree:
    """Host pids of a running jail's fixed processes: bwrap outside, its init, the shell."""

    def __init__(self, outer: int, init: int, shell: int) -> None:
        self.outer = outer
        self.init = init
        self.shell = shell


def _live_parents(pids: Iterable[int]) -> dict[int, int]:
    """pid -> parent pid of every live (not zombie) process among `pids`."""
    parents: dict[int, int] = {}
    for pid in pids:
        try:
            raw = Path(f"/proc/{pid}/stat").read_bytes()
        except OSError:
            continue
        fields = raw[raw.rfind(b")") + 2 :].split()
        if len(fields) >= 2 and fields[0] not in (b"Z", b"X"):
            parents[pid] = int(fields[1])
    return parents


def _scope(cgroup_dirs: tuple[Path, ...]) -> list[int]:
    """The pids that may belong to the jail: its cgroup's (every process of the jail is in
    each of its cgroups) if it has one, else every process of the host."""
    for directory in cgroup_dirs:
        with contextlib.suppress(OSError):
            return [int(p) for p in (directory / "cgroup.procs").read_text().split()]
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _descendants(root: int, parents: dict[int, int]) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    found: set[int] = set()
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def find_tree(outer: int, cgroup_dirs: tuple[Path, ...]) -> JailTree | None:
    """The jail's init and shell under bwrap's outer process (None if not exactly one each)."""
    parents = _live_parents(_scope(cgroup_dirs))
    inits = [pid for pid, parent in parents.items() if parent == outer]
    if len(inits) != 1:
        return None
    shells = [pid for pid, parent in parents.items() if parent == inits[0]]
    if len(shells) != 1:
        return None
    return JailTree(outer, inits[0], shells[0])


def nothing_left(tree: JailTree, cgroup_dirs: tuple[Path, ...]) -> bool:
    """True when the jail's cgroup holds only bwrap, its init and the shell: the common case,
    answered from one small file without scanning /proc (False without a cgroup)."""
    if not cgroup_dirs:
        return False
    return set(_scope(cgroup_dirs)) <= {tree.outer, tree.init, tree.shell}


def stop_leftovers(tree: JailTree, cgroup_dirs: tuple[Path, ...]) -> int | None:
    """SIGKILL every process of the jail but its init and shell, until none is left.

    Returns how many processes were killed, or None if some were still alive (or appearing:
    a fork bomb racing the kills) after `_STOP_SECONDS`; the caller then restarts the jail.
    Blocking: call from a thread.
    """
    killed: set[int] = set()
    deadline = time.monotonic() + _STOP_SECONDS
    while time.monotonic() < deadline:
        parents = _live_parents(_scope(cgroup_dirs))
        leftovers = _descendants(tree.init, parents) - {tree.shell}
        if not leftovers:
            return len(killed)
        if leftovers <= killed:
            time.sleep(0.001)  # SIGKILLed, not yet gone: nothing to do but let them die
        for pid in leftovers:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        killed |= leftovers
    return None


def strip_setid(workspace: Path) -> list[str]:
    """Clear the set-uid and set-gid bits of every file and directory under `workspace`
    (symlinks are not followed); the paths changed, relative to it. Blocking."""
    changed: list[str] = []
    for top, dirs, files in os.walk(workspace):
        for name in (*dirs, *files):
            path = os.path.join(top, name)
            try:
                mode = os.lstat(path).st_mode
            except OSError:
                continue
            if mode & (stat.S_ISUID | stat.S_ISGID) and not stat.S_ISLNK(mode):
                with contextlib.suppress(OSError):
                    os.chmod(path, stat.S_IMODE(mode) & ~(stat.S_ISUID | stat.S_ISGID))
                    changed.append(os.path.relpath(path, workspace))
    return changed
