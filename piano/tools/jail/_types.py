"""Configuration, results and errors of the jailed shell.

`JailConfig` is everything a session decides about its jail; `CommandResult` is what one command
produced and is what the audit hook receives (a frozen msgspec struct, so a store can encode it
as-is). Output is kept as bytes, byte-exact; `stdout_text`/`stderr_text` decode it for display.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Literal

import msgspec

MiB = 1024 * 1024

LimitBackend = Literal["auto", "cgroup", "prlimit"]


@dataclass(frozen=True)
class JailConfig:
    """What a session's jail may see and use.

    `workspace` is the only host directory the jail can write; it appears as `jail_workdir`
    inside and is created (owner-only, like its parent) if missing. `extra_ro_binds` maps host
    paths to jail paths, bound read-only. `env` is added to a cleared environment (PATH, HOME,
    LANG, TERM are set by default): nothing of the driver's own environment reaches the jail.
    `timeout` is both the default and the maximum per-command timeout in seconds: a longer,
    negative or non-finite request is clamped (`clamp_timeout`). `output_cap_bytes` caps each of
    stdout and stderr of one command (the rest is drained and dropped). `memory_limit_bytes`,
    `pids_limit` and `cpu_limit` (in cores) are enforced by cgroups when writable, else by
    rlimits (see `_limits`).
    `host_uid`/`host_gid`, when the driver runs as root, run the jail as that unprivileged host
    user (the workspace must be writable by it); otherwise the jail's uid maps to the driver's.
    `private_dir` is where the driver keeps what the jail must not see (its copy of bash):
    default the workspace's parent, which is Piano's own for a thread's workspace but not for
    a project's checkout (then the jails' root is given).
    """

    workspace: Path
    timeout: float = 60.0
    output_cap_bytes: int = 1 * MiB
    memory_limit_bytes: int | None = 1024 * MiB
    pids_limit: int | None = 256
    cpu_limit: float | None = 1.0
    tmpfs_size_bytes: int = 256 * MiB
    file_size_limit_bytes: int = 1024 * MiB
    open_files_limit: int = 1024
    extra_ro_binds: tuple[tuple[Path, str], ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    jail_workdir: str = "/workspace"
    jail_uid: int = 1000
    jail_gid: int = 1000
    host_uid: int | None = None
    host_gid: int | None = None
    limit_backend: LimitBackend = "auto"
    start_timeout: float = 10.0
    private_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.timeout <= 0 or self.start_timeout <= 0:
            raise ValueError("timeouts must be positive")
        if self.output_cap_bytes < 0:
            raise ValueError("output_cap_bytes must be >= 0")
        if self.cpu_limit is not None and not (0.01 <= self.cpu_limit <= 1024):
            raise ValueError("cpu_limit is a number of cores between 0.01 and 1024")
        if self.pids_limit is not None and self.pids_limit < 4:
            raise ValueError("pids_limit below 4 cannot even run the shell")
        if not self.jail_workdir.startswith("/"):
            raise ValueError("jail_workdir must be an absolute path inside the jail")
        if (self.host_uid is None) != (self.host_gid is None):
            raise ValueError("host_uid and host_gid go together")

    def clamp_timeout(self, requested: float | None) -> float:
        """The timeout a command gets when `requested` is asked for: never more than `timeout`;
        the default (`timeout`) for None, zero, negative or non-finite requests."""
        if requested is None or not math.isfinite(requested) or requested <= 0:
            return self.timeout
        return min(requested, self.timeout)


class RestartReason(StrEnum):
    """Why the jail was restarted around a command (its shell state is then lost)."""

    TIMEOUT = "timeout"
    SHELL_EXITED = "shell exited during the command"  # the driver shell, not the command's
    SHELL_DIED_BEFORE = "shell had died before the command"
    CANCELLED = "the previous command was cancelled"
    LEFTOVERS = "processes the command left behind could not be stopped"
    ABANDONED = "its caller went away, so the command was killed"


class CommandResult(msgspec.Struct, frozen=True, kw_only=True):
    """One command's outcome.

    `exit_code` is None only when the command timed out (the jail was killed). When
    `restart_reason` is set the jail was restarted: the working directory and exported
    variables of the previous jail are gone (files in the workspace remain). For
    `SHELL_EXITED` (the driver shell was killed), `exit_code` is its exit status; for
    `SHELL_DIED_BEFORE` and `CANCELLED` the command ran in the fresh jail. The exit code and
    output are those of the command's own bash, as its parent, the driver shell, saw them: a
    command chooses its own, never another's (see `_protocol`).
    """

    command: str
    exit_code: int | None
    stdout: bytes
    stderr: bytes
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    timed_out: bool = False
    duration: float
    started_at: float
    restart_reason: RestartReason | None = None

    @property
    def jail_restarted(self) -> bool:
        return self.restart_reason is not None

    @property
    def stdout_text(self) -> str:
        return self.stdout.decode("utf-8", "replace")

    @property
    def stderr_text(self) -> str:
        return self.stderr.decode("utf-8", "replace")


class JailError(Exception):
    """Base of every error raised by the jail driver."""


class BwrapNotFoundError(JailError):
    """bubblewrap is not installed."""

    def __init__(self) -> None:
        super().__init__(
            "bwrap (bubblewrap) not found on PATH: run scripts/bootstrap "
            "(or apt-get install bubblewrap)"
        )


class JailStartError(JailError):
    """The jail did not come up (bad bind, bwrap refused, limits could not be applied...)."""


class JailClosedError(JailError):
    """The shell was closed; start a new one."""
