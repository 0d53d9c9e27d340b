"""Tools that agents use, each run as supervised actors.

- `piano.tools.webfetch`: fetch a page and extract its main content (`WebFetchTool` actor);
- `piano.tools.browser`: a headless Chromium per thread (`BrowserSession`, a thread actor);
- `piano.tools.jail`: a jailed persistent bash per thread (`JailSession`), audited in the store;
- `Toolbox`: a thread's tools, found or started on demand (what the MCP endpoint calls);
- `TOOLS`: the catalogue, every tool a model can call declared once (`Tool`); piano.mcp
  serves it to Codex and piano.agents.openai makes its agents' function tools from it;
- `Notes`: what the notes tools keep (`SqliteNotes` in the store's database);
- `ToolsConfig`: the ``[tools]`` config section; `tool_specs` the supervisor's children;
- `WorkspaceOf`: where a conversation works (its chosen project), asked of `WORKSPACES`.
"""

from __future__ import annotations

from piano.tools._catalogue import (
    TOOL_BY_NAME,
    TOOL_GROUPS,
    TOOLS,
    Tool,
    ToolContext,
    ToolResult,
    ToolRunner,
    format_command,
    format_fetch,
)
from piano.tools._config import JailToolConfig, McpConfig, ToolsConfig, WebFetchToolConfig
from piano.tools._errors import SessionLimitReached, ToolError, ToolUnavailable
from piano.tools._notes import (
    NOTES_TABLES,
    MemoryNotes,
    Notes,
    PostgresNotes,
    SqliteNotes,
    owner_of,
    thread_owner,
)
from piano.tools._toolbox import (
    BROWSERS,
    JAILS,
    WEBFETCH,
    Publish,
    Toolbox,
    browser_name,
    jail_name,
)
from piano.tools._tree import tool_specs
from piano.tools._workspaces import WORKSPACES, Workspace, WorkspaceOf, workspace_of

__all__ = [
    "BROWSERS",
    "JAILS",
    "NOTES_TABLES",
    "TOOLS",
    "TOOL_BY_NAME",
    "TOOL_GROUPS",
    "WEBFETCH",
    "WORKSPACES",
    "JailToolConfig",
    "McpConfig",
    "MemoryNotes",
    "Notes",
    "PostgresNotes",
    "Publish",
    "SessionLimitReached",
    "SqliteNotes",
    "Tool",
    "ToolContext",
    "ToolError",
    "ToolResult",
    "ToolRunner",
    "ToolUnavailable",
    "Toolbox",
    "ToolsConfig",
    "WebFetchToolConfig",
    "Workspace",
    "WorkspaceOf",
    "browser_name",
    "format_command",
    "format_fetch",
    "jail_name",
    "owner_of",
    "thread_owner",
    "tool_specs",
    "workspace_of",
]
