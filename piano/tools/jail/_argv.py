"""The bubblewrap command line of a jail.

Every namespace is unshared (user, pid, net, ipc, uts, cgroup, mount), so the jail has its own
process tree, no network interface but its own loopback (the host's 127.0.0.1 is unreachable) and
a filesystem made only of: /usr, /etc/alternatives, the CA certificates and the loader cache
(all read-only), fresh /proc and /dev, size-capped tmpfs on /tmp and /dev/shm, the workspace
(read-write) and any extra read-only binds. The root and /dev are remounted read-only, so the
workspace, /tmp and /dev/shm are the only writable places, and no set-id bit can be set in
them (`_seccomp`). The shell runs as an unprivileged uid
with every capability dropped and no_new_privs, cannot create further user namespaces, runs in a
new session (no terminal to inject into), and dies with its parent.

The environment is built, never inherited: `jail_environment` (PATH, LANG, TERM, HOME and what
the config names) is both the environment bwrap itself is started with (bwrap's pid 1 inside
the jail keeps the environment it was started with, readable as /proc/1/environ) and the one
`--clearenv --setenv` gives the shell, so no secret of the daemon's environment reaches the jail.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from piano.tools.jail._protocol import SHELL_PATH
from piano.tools.jail._types import BwrapNotFoundError, JailConfig

SHELL = (SHELL_PATH, "--noprofile", "--norc", "-s")

_shell_copies: set[Path] = set()

_BASE_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "TERM": "dumb",
}


def find_bwrap() -> str:
    """The bwrap executable, or `BwrapNotFoundError` naming the fix."""
    path = shutil.which("bwrap")
    if path is None:
        raise BwrapNotFoundError
    return path


def shell_copy(config: JailConfig) -> Path:
    """An execute-only (0111) copy of bash for the driver shell, refreshed once per process.

    The kernel marks a process that executes a file it may not read non-dumpable: no other
    process of the jail may then trace it or read its memory or descriptors (see `_protocol`).
    The copy lives in the config's `private_dir`, by default beside the workspace (in its
    parent, which the jail never sees, and not in /tmp, which may be mounted noexec), is bound
    read-only (the jail cannot chmod it back) and is replaced atomically, so jails
    starting at once never see it half written."""
    directory = (config.private_dir or config.workspace.resolve().parent).resolve()
    copy = directory / ".piano-jail-bash"
    if copy in _shell_copies and copy.exists():
        return copy
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=".piano-jail-bash.")
    try:
        with open(os.path.realpath("/bin/bash"), "rb") as source, os.fdopen(fd, "wb") as target:
            shutil.copyfileobj(source, target)
        os.chmod(temporary, 0o111)
        if config.host_uid is not None and config.host_gid is not None:
            os.chown(temporary, config.host_uid, config.host_gid)
        os.replace(temporary, copy)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _shell_copies.add(copy)
    return copy


def jail_environment(config: JailConfig) -> dict[str, str]:
    """The whole environment of every process of the jail, bwrap's own included."""
    return {**_BASE_ENV, "HOME": config.jail_workdir, **config.env}


def bwrap_argv(
    bwrap: str, config: JailConfig, shell: Path, seccomp_fd: int | None = None
) -> list[str]:
    """The full bwrap command that starts the jail's driver shell (`shell`, a `shell_copy`),
    with the seccomp filter of `_seccomp` read from `seccomp_fd` when given."""
    workspace = str(config.workspace.resolve())
    argv = [
        bwrap,
        "--unshare-all",
        "--die-with-parent",
        "--new-session",
        "--unshare-user",
        "--disable-userns",
        "--uid",
        str(config.jail_uid),
        "--gid",
        str(config.jail_gid),
        "--cap-drop",
        "ALL",
        "--hostname",
        "jail",
        "--ro-bind",
        "/usr",
        "/usr",
        "--symlink",
        "usr/bin",
        "/bin",
        "--symlink",
        "usr/sbin",
        "/sbin",
        "--symlink",
        "usr/lib",
        "/lib",
        "--symlink",
        "usr/lib64",
        "/lib64",
        "--ro-bind-try",
        "/etc/alternatives",
        "/etc/alternatives",
        "--ro-bind-try",
        "/etc/ssl/certs",
        "/etc/ssl/certs",
        "--ro-bind-try",
        "/etc/ld.so.cache",
        "/etc/ld.so.cache",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--size",
        str(config.tmpfs_size_bytes),
        "--tmpfs",
        "/dev/shm",
        "--size",
        str(config.tmpfs_size_bytes),
        "--tmpfs",
        "/tmp",
        "--bind",
        workspace,
        config.jail_workdir,
    ]
    for host_path, jail_path in config.extra_ro_binds:
        argv += ["--ro-bind", str(host_path), jail_path]
    argv += ["--ro-bind", str(shell), SHELL_PATH]
    argv += ["--remount-ro", "/dev", "--remount-ro", "/", "--chdir", config.jail_workdir]
    if seccomp_fd is not None:
        argv += ["--seccomp", str(seccomp_fd)]
    argv.append("--clearenv")
    for name, value in jail_environment(config).items():
        argv += ["--setenv", name, value]
    argv += ["--", *SHELL]
    return argv
