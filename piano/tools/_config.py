"""`ToolsConfig`: the ``[tools]`` section of piano.toml, one sub-table per tool.

```toml
[tools.browser]
max_sessions = 4            # live headless Chromiums across all threads
idle_timeout = 600
allowed_networks = []       # as for web fetch: every request of every page is vetted

[tools.jail]
workspace_root = "~/piano-jails"  # a thread's jail sees <root>/<thread id>; 0700; never inside
                                  # a codex agent's workspace (that agent could write every jail)
timeout = 60                # the default and the maximum of a command's timeout_seconds
cpu_limit = 1.0             # cores per jail (cgroups; RLIMIT_CPU per process where not writable)

[tools.webfetch]
allowed_networks = []       # CIDRs let through the private-address guard (tests: 127.0.0.1/32)

[tools.mcp]
port = 0                    # 0: a free loopback port, kept across restarts of the endpoint
approval_mode = "approve"   # "prompt": the user approves each tool call on their surface
```
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Literal

import msgspec

from piano.store import STORE
from piano.tools.browser import BrowserConfig
from piano.tools.jail import JailConfig
from piano.tools.webfetch import FetchConfig

__all__ = ["JailToolConfig", "McpConfig", "ToolsConfig", "WebFetchToolConfig"]

MiB = 1024 * 1024
_SAFE_ID = re.compile(r"[A-Za-z0-9._:@-]{1,200}")


class JailToolConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """The jailed shell's settings; `store` names the store writer actor that audits commands
    (empty: audit to the log only). `timeout` is the default and the maximum of a command's
    timeout; `cpu_limit` is in cores. The workspace has no disk quota of its own: bound it by
    putting `workspace_root` on a size-limited filesystem or under a project quota."""

    enabled: bool = True
    workspace_root: str = "~/piano-jails"
    """Beside the default agent workspace (``~/piano-workspace``), not in it: a codex agent
    writes its whole workspace, and the jails of other conversations must be out of its reach
    (the configuration refuses a root inside a ``workspace-write`` agent's workspace)."""
    timeout: float = 60.0
    output_cap_bytes: int = 1 * MiB
    memory_limit_mib: int | None = 1024
    pids_limit: int | None = 256
    cpu_limit: float | None = 1.0
    max_sessions: int = 16
    idle_timeout: float = 1800.0
    store: str = STORE

    def workspace(self, thread_id: str) -> Path:
        """The thread's workspace directory (the thread id must be a safe file name)."""
        if not _SAFE_ID.fullmatch(thread_id) or thread_id in (".", ".."):
            raise ValueError(f"thread id {thread_id!r} cannot name a workspace directory")
        return Path(self.workspace_root).expanduser() / thread_id

    def make_workspace(self, thread_id: str) -> Path:
        """The thread's workspace, created. The root is made owner-only (0700): files the jail
        writes belong to the daemon's uid, and no other local user may reach them."""
        root = Path(self.workspace_root).expanduser()
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        with contextlib.suppress(PermissionError):  # not ours: the jail logs a warning
            root.chmod(0o700)
        path = self.workspace(thread_id)
        path.mkdir(mode=0o700, exist_ok=True)
        return path

    def jail_config(self, thread_id: str, workspace: Path | None = None) -> JailConfig:
        """The thread's jail: its own workspace, or `workspace` (a project the conversation
        chose), with the jails' root, never visible to a jail, for the driver's private files."""
        memory = None if self.memory_limit_mib is None else self.memory_limit_mib * MiB
        return JailConfig(
            workspace=self.workspace(thread_id) if workspace is None else workspace,
            private_dir=None if workspace is None else Path(self.workspace_root).expanduser(),
            timeout=self.timeout,
            output_cap_bytes=self.output_cap_bytes,
            memory_limit_bytes=memory,
            pids_limit=self.pids_limit,
            cpu_limit=self.cpu_limit,
        )


class WebFetchToolConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """The web-fetch tool's settings (see `FetchConfig` for what each limit means)."""

    enabled: bool = True
    timeout: float = 30.0
    max_bytes: int = 5 * MiB
    max_redirects: int = 5
    max_concurrent: int = 4
    allowed_networks: list[str] = msgspec.field(default_factory=list)
    inline_limit: int = 20_000

    def fetch_config(self) -> FetchConfig:
        return FetchConfig(
            timeout=self.timeout,
            max_bytes=self.max_bytes,
            max_redirects=self.max_redirects,
            allowed_networks=tuple(self.allowed_networks),
            inline_limit=self.inline_limit,
            preview_chars=min(2_000, self.inline_limit),
        )


class McpConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """The MCP endpoint Codex calls Piano's tools through.

    `server_name` is the name codex knows the server by (its tools reach the model as the
    ``mcp__<server_name>`` namespace). `approval_mode` is codex's
    ``mcp_servers.<name>.default_tools_approval_mode``: "approve" runs Piano's tools without
    asking (they are sandboxed and scoped to the thread); "prompt" asks before every call, and
    "auto" / "writes" before some: codex sends an ``mcpServer/elicitation/request``, which Piano
    forwards to the thread's surface as an approval of kind "tool_call" (the tool and its
    arguments; accept, decline or cancel; declined when it expires). `secret_env` names an
    environment variable holding the key thread tokens are signed with (default: a random key
    per daemon run).
    """

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 0
    path: str = "/mcp"
    server_name: str = "piano"
    approval_mode: Literal["auto", "prompt", "writes", "approve"] = "approve"
    secret_env: str | None = None
    tool_timeout_sec: float = 300.0


class ToolsConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """Every tool's settings: the ``[tools]`` section."""

    browser: BrowserConfig = msgspec.field(default_factory=BrowserConfig)
    jail: JailToolConfig = msgspec.field(default_factory=JailToolConfig)
    webfetch: WebFetchToolConfig = msgspec.field(default_factory=WebFetchToolConfig)
    mcp: McpConfig = msgspec.field(default_factory=McpConfig)
