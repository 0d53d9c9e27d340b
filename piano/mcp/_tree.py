"""`child_spec`: the daemon's ``tools`` subtree, the tool actors and the MCP endpoint.

```
tools (Supervisor, one_for_one)
├── tools:webfetch   WebFetchTool
├── tools:browsers   DynamicSupervisor of BrowserSession (one per thread)
├── tools:jails      DynamicSupervisor of JailSession (one per thread)
└── tools:mcp        McpEndpoint: uvicorn on 127.0.0.1 in the daemon's loop
```
"""

from __future__ import annotations

from piano.mcp._endpoint import McpAccess, McpEndpoint
from piano.tools import Notes, Publish, Toolbox, ToolsConfig, tool_specs
from supervisors import ChildSpec, Supervisor

__all__ = ["ENDPOINT", "TOOLS", "child_spec"]

TOOLS = "tools"
ENDPOINT = "tools:mcp"


def child_spec(
    config: ToolsConfig,
    access: McpAccess,
    *,
    publish: Publish | None,
    notes: Notes | None = None,
) -> ChildSpec:
    """The ``tools`` supervisor; `publish` delivers `send_message` notices to the surfaces,
    `notes` keeps what the notes tools save (without it they say notes are unavailable)."""
    children = tool_specs(config)
    if config.mcp.enabled:
        children.append(
            ChildSpec(
                ENDPOINT,
                start=lambda: McpEndpoint(
                    access, lambda system: Toolbox(system, config, publish=publish), notes=notes
                ),
                name=ENDPOINT,
                shutdown=10.0,
                init_timeout=15.0,
            )
        )
    return ChildSpec(
        TOOLS,
        start=lambda: Supervisor(children, max_restarts=5, max_seconds=30.0),
        name=TOOLS,
        type="supervisor",
    )
