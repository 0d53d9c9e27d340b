"""A jailed shell for one session: bash inside bubblewrap, driven command by command.

Only the session's workspace is writable; the rest of the host is hidden or read-only; there is
no network (not even the host's loopback); the shell runs as an unprivileged uid without
capabilities, with an environment built from nothing (no secret of the daemon's reaches it),
under memory/process/CPU limits (cgroups where writable, rlimits otherwise: see `_limits`).
Each command has a timeout capped by the config (the jail is then killed and restarted, and the
result says so), capped output, streaming to subscribers, and an audit hook; nothing a command
starts outlives it, and no file can get a set-id bit (`_seccomp`). Each command runs in a fresh
bash that inherits only the working directory and exported variables of the one before; the
trusted driver shell that frames results is out of every command's reach, so no command can
forge another's result (`_protocol`). The workspace has no size quota of its own: bound it
outside Piano (a size-limited filesystem or a project quota for `workspace_root`).

    async with JailedShell(JailConfig(workspace=path), on_command=record) as shell:
        result = await shell.run("cd src && make", timeout=30)
        result.exit_code, result.stdout, result.stderr, result.restart_reason

In the daemon each thread's shell is a `JailSession` actor (`_actor`) whose commands are
audited in the store's ``shell_commands`` table before they run (`BeginCommand`, then
`RecordCommand`; read back by `command_log`).
"""

from __future__ import annotations

from piano.tools.jail._actor import AuditFailed, JailSession, RunCommand
from piano.tools.jail._audit import (
    AUDIT_OUTPUT_LIMIT,
    JAIL_TABLES,
    BeginCommand,
    CommandRecord,
    RecordCommand,
    command_log,
)
from piano.tools.jail._limits import LimitReport
from piano.tools.jail._shell import AuditHook, JailedShell, OutputCallback, StreamName
from piano.tools.jail._types import (
    BwrapNotFoundError,
    CommandResult,
    JailClosedError,
    JailConfig,
    JailError,
    JailStartError,
    RestartReason,
)

__all__ = [
    "AUDIT_OUTPUT_LIMIT",
    "JAIL_TABLES",
    "AuditFailed",
    "AuditHook",
    "BeginCommand",
    "BwrapNotFoundError",
    "CommandRecord",
    "CommandResult",
    "JailClosedError",
    "JailConfig",
    "JailError",
    "JailSession",
    "JailStartError",
    "JailedShell",
    "LimitReport",
    "OutputCallback",
    "RecordCommand",
    "RestartReason",
    "RunCommand",
    "StreamName",
    "command_log",
]
