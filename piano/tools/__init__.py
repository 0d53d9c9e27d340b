"""Tools that agents use, each run as supervised actors.

- `piano.tools.webfetch`: fetch a page and extract its main content (`WebFetchTool` actor);
- `piano.tools.browser`: a headless Chromium per thread (`BrowserSession`, a thread actor);
- `piano.tools.jail`: a jailed persistent bash per thread (`JailSession`), audited in the store;
- `Toolbox`: a thread's tools, found or started on demand (what the MCP endpoint calls);
- `ToolsConfig`: the ``[tools]`` config section; `tool_specs` the supervisor's children.

piano.mcp serves these tools to Codex.
"""

from __future__ import annotations

from piano.tools._config import JailToolConfig, McpConfig, ToolsConfig, WebFetchToolConfig
from piano.tools._errors import SessionLimitReached, ToolError, ToolUnavailable
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

__all__ = [
    "BROWSERS",
    "JAILS",
    "WEBFETCH",
    "JailToolConfig",
    "McpConfig",
    "Publish",
    "SessionLimitReached",
    "ToolError",
    "ToolUnavailable",
    "Toolbox",
    "ToolsConfig",
    "WebFetchToolConfig",
    "browser_name",
    "jail_name",
    "tool_specs",
]
