"""Piano's MCP endpoint: Codex calls Piano's tools (the catalogue, `piano.tools.TOOLS`: web
fetch, browser, jailed shell, notes, send_message) on the daemon, each call scoped to the
thread that made it.

Wiring (the daemon):

```python
access = McpAccess.from_config(config.tools.mcp)          # address + thread tokens
children.append(child_spec(config.tools, access, publish=publish, notes=notes))  # before threads
...
ThreadStartParams(..., config=access.codex_thread_config(thread_id))  # and in thread/resume
```

`child_spec` is the ``tools`` supervisor (one_for_one): the tool actors of piano.tools and
the `McpEndpoint`. How a call finds its thread: every codex thread is started with its own MCP
server entry whose ``Authorization: Bearer`` header is that thread's token (`_auth`), so the
endpoint knows the thread from the token alone and refuses any request without a valid one.
Codex exposes the tools to the model as the namespace ``mcp__<server_name>`` (a call is a
``function_call`` with ``namespace: "mcp__piano"`` and ``name: "web_fetch"``), and reports
each call as an ``mcpToolCall`` item (a ``tool_call`` item in Piano's events and store).
"""

from __future__ import annotations

from piano.mcp._auth import ThreadTokens, require_token, thread_from_headers
from piano.mcp._endpoint import McpAccess, McpEndpoint
from piano.mcp._tools import TOOL_NAMES, build_server
from piano.mcp._tree import ENDPOINT, TOOLS, child_spec

__all__ = [
    "ENDPOINT",
    "TOOLS",
    "TOOL_NAMES",
    "McpAccess",
    "McpEndpoint",
    "ThreadTokens",
    "build_server",
    "child_spec",
    "require_token",
    "thread_from_headers",
]
