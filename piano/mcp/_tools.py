"""The tools Piano offers Codex over MCP: the catalogue (`piano.tools.TOOLS`), each call acting
for the thread whose token made it.

The list (``tools/list``) is the catalogue's names, descriptions and parameter schemas; a call
(``tools/call``) validates its arguments against the tool's parameters and runs the tool with
a `ToolContext` for the token's thread: its browser and shell through the `Toolbox`, its
notes (owner `thread_owner`: notes are per conversation, since the endpoint knows the thread
and not the user), and its chat (``send_message`` posts through the toolbox).

Results are text (a screenshot is a PNG image). A failure — bad arguments, a tool error, a
call without a valid thread token — is an MCP tool error whose text says what went wrong
and what to do (``isError: true``), never a protocol error; a command that exits non-zero is
a normal result that shows its exit code.
"""

from __future__ import annotations

import base64
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError as McpToolError
from mcp.types import CallToolResult, ImageContent, TextContent
from mcp.types import Tool as McpTool

from piano.mcp._auth import ThreadTokens, thread_from_headers
from piano.tools import (
    TOOL_BY_NAME,
    TOOLS,
    Notes,
    Toolbox,
    ToolContext,
    ToolError,
    thread_owner,
)

__all__ = ["TOOL_NAMES", "build_server"]

TOOL_NAMES = tuple(tool.name for tool in TOOLS)
"""The names of the tools the endpoint lists: the whole catalogue."""

_INSTRUCTIONS = (
    "Piano's tools for this conversation: fetch web pages, drive a headless browser, run "
    "commands in a jailed shell whose /workspace persists, keep notes, and post messages to "
    "the chat. The browser, the shell and the notes belong to this conversation and keep "
    "their state between calls."
)


class _CatalogueServer(MCPServer):
    """An `MCPServer` whose tools are the catalogue's, listed and dispatched from the table."""

    def __init__(
        self, name: str, toolbox: Toolbox, tokens: ThreadTokens, notes: Notes | None
    ) -> None:
        super().__init__(name, instructions=_INSTRUCTIONS, log_level="WARNING")
        self.toolbox = toolbox
        self.tokens = tokens
        self.notes = notes

    async def list_tools(self) -> list[McpTool]:
        return [
            McpTool(name=tool.name, description=tool.description, input_schema=tool.input_schema)
            for tool in TOOLS
        ]

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult:
        tool = TOOL_BY_NAME.get(name)
        if tool is None:
            raise McpToolError(f"no tool named {name!r}")
        thread_id = self._thread_of(context)
        toolbox = self.toolbox

        async def post(text: str) -> None:
            await toolbox.send_message(thread_id, text)

        ctx = ToolContext(thread_id, thread_owner(thread_id), toolbox, self.notes, post)
        try:
            result = await tool.call(ctx, arguments)
        except (ToolError, ValueError) as exc:
            raise McpToolError(str(exc)) from None
        if result.png is not None:
            image = base64.b64encode(result.png).decode()
            return CallToolResult(
                content=[ImageContent(type="image", data=image, mime_type="image/png")]
            )
        return CallToolResult(content=[TextContent(type="text", text=result.text)])

    def _thread_of(self, context: Context[Any, Any] | None) -> str:
        request = context.request_context.request if context is not None else None
        transport = getattr(context, "transport", None)
        headers = getattr(request, "headers", None) or getattr(transport, "headers", None)
        thread_id = thread_from_headers(self.tokens, headers)
        if thread_id is None:
            raise McpToolError("this call carries no valid Piano thread token")
        return thread_id


def build_server(
    toolbox: Toolbox, tokens: ThreadTokens, name: str = "piano", *, notes: Notes | None = None
) -> MCPServer:
    """An MCP server whose tools act through `toolbox` (and `notes`) for the thread a token
    names."""
    return _CatalogueServer(name, toolbox, tokens, notes)
