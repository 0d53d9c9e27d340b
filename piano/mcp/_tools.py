"""The tools Piano offers Codex over MCP, each acting for the thread whose token called it.

- ``web_fetch(url)``: fetch a page, return its main content as Markdown;
- ``browser_visit(url)``, ``browser_click(selector)``, ``browser_type(selector, text,
  submit)``, ``browser_find(selector, limit)``, ``browser_read_text(selector)``,
  ``browser_screenshot()``, ``browser_current_url()``, ``browser_run_script(script)``,
  ``browser_back()``: drive the thread's headless Chromium (started on first use, kept
  between calls);
- ``shell(command, timeout_seconds)``: run a command in the thread's jailed bash (state
  persists between calls; every command is audited);
- ``send_message(text)``: post a message to the thread's chat now, while the turn goes on.

Results are plain text (a screenshot is a PNG image). A failure is an MCP tool error whose
text says what went wrong and what to do (``isError: true``), never a protocol error; a
command that exits non-zero is a normal result that shows its exit code.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
from mcp.server.mcpserver import Context, Image, MCPServer
from mcp.server.mcpserver.exceptions import ToolError as McpToolError

from piano.mcp._auth import ThreadTokens, thread_from_headers
from piano.tools._errors import ToolError
from piano.tools._toolbox import Toolbox
from piano.tools.browser import (
    Back,
    BrowserAction,
    By,
    Click,
    CurrentUrl,
    Find,
    PageInfo,
    ReadText,
    RunScript,
    Screenshot,
    Type,
    Visit,
)
from piano.tools.jail import CommandResult
from piano.tools.webfetch import FetchResult

__all__ = ["TOOL_NAMES", "build_server", "format_command", "format_fetch"]

TOOL_NAMES = (
    "web_fetch",
    "browser_visit",
    "browser_click",
    "browser_type",
    "browser_find",
    "browser_read_text",
    "browser_screenshot",
    "browser_current_url",
    "browser_run_script",
    "browser_back",
    "shell",
    "send_message",
)

_INSTRUCTIONS = (
    "Piano's tools for this conversation: fetch web pages, drive a headless browser, run "
    "commands in a jailed shell whose /workspace persists, and post messages to the chat. "
    "The browser and the shell belong to this conversation and keep their state between calls."
)


def format_fetch(result: FetchResult) -> str:
    """A fetch result as the text the model reads (raises the tool error of a failed fetch)."""
    if not result.ok:
        raise McpToolError(f"{result.error_kind}: {result.error_message}")
    lines = [f"# {result.title}" if result.title else "", f"URL: {result.final_url}"]
    if result.saved_path is not None:
        lines.append(
            f"The page has {result.content_chars} characters; the full text is saved in the "
            f"shell's workspace as webfetch/{result.saved_path.rsplit('/', 1)[-1]} "
            "(below: the beginning)."
        )
    elif result.truncated:
        lines.append(f"(first {len(result.content)} of {result.content_chars} characters)")
    return "\n".join(line for line in lines if line) + "\n\n" + result.content


def format_command(result: CommandResult) -> str:
    """A command result as the text the model reads: exit code, restart notice, output."""
    if result.timed_out:
        head = f"timed out after {result.duration:.1f}s: the command was killed"
    else:
        head = f"exit code: {result.exit_code}"
    parts = [head]
    if result.restart_reason is not None:
        parts.append(
            f"the jail was restarted ({result.restart_reason.value}): the shell's working "
            "directory and exported variables are gone; files in /workspace remain"
        )
    for name, text, cut in (
        ("stdout", result.stdout_text, result.stdout_truncated),
        ("stderr", result.stderr_text, result.stderr_truncated),
    ):
        if text or cut:
            parts.append(f"{name}:\n{text}" + ("\n[output truncated]" if cut else ""))
    return "\n".join(parts)


def _page(page: PageInfo) -> str:
    return f"{page.title}\n{page.url}" if page.title else page.url


def build_server(toolbox: Toolbox, tokens: ThreadTokens, name: str = "piano") -> MCPServer:
    """An MCP server whose tools act through `toolbox` for the thread a token names."""
    server: MCPServer = MCPServer(name, instructions=_INSTRUCTIONS, log_level="WARNING")

    def thread_of(ctx: Context) -> str:
        request = ctx.request_context.request
        transport = getattr(ctx, "transport", None)
        headers = getattr(request, "headers", None) or getattr(transport, "headers", None)
        thread_id = thread_from_headers(tokens, headers)
        if thread_id is None:
            raise McpToolError("this call carries no valid Piano thread token")
        return thread_id

    async def act(ctx: Context, coroutine_fn: Any, *args: Any) -> Any:
        thread_id = thread_of(ctx)
        try:
            return await coroutine_fn(thread_id, *args)
        except ToolError as exc:
            raise McpToolError(str(exc)) from None

    async def browse(ctx: Context, action: BrowserAction) -> Any:
        return await act(ctx, toolbox.browse, action)

    def tool(fn: Any) -> Any:
        server.add_tool(fn, structured_output=False)
        return fn

    @tool
    async def web_fetch(url: str, ctx: Context) -> str:
        """Fetch a web page (http/https) and return its main content as Markdown, with its
        title and final URL. Long pages are saved in the shell's /workspace/webfetch/."""
        result: FetchResult = await act(ctx, toolbox.fetch, url)
        return format_fetch(result)

    @tool
    async def browser_visit(url: str, ctx: Context) -> str:
        """Open `url` in this conversation's browser and wait for it to load. Returns the
        page title and URL."""
        return _page(await browse(ctx, Visit(url)))

    @tool
    async def browser_click(selector: str, ctx: Context, by: By = "css") -> str:
        """Click the first element matching the CSS selector (or XPath with by="xpath").
        Returns the page title and URL after the click."""
        return _page(await browse(ctx, Click(selector, by=by)))

    @tool
    async def browser_type(
        selector: str, text: str, ctx: Context, submit: bool = False, by: By = "css"
    ) -> str:
        """Type text into the first element matching the selector (cleared first); with
        submit=true, press Enter afterwards. Returns the page title and URL."""
        return _page(await browse(ctx, Type(selector, text, submit=submit, by=by)))

    @tool
    async def browser_find(selector: str, ctx: Context, limit: int = 20, by: By = "css") -> str:
        """List the elements matching the selector (tag, text, telling attributes), as JSON
        lines, at most `limit`."""
        found = await browse(ctx, Find(selector, limit=limit, by=by))
        if not found:
            return f"no element matches {selector!r}"
        return "\n".join(msgspec.json.encode(element).decode() for element in found)

    @tool
    async def browser_read_text(ctx: Context, selector: str = "body", by: By = "css") -> str:
        """The visible text of the first element matching the selector (the whole page by
        default)."""
        text: str = await browse(ctx, ReadText(selector, by=by))
        return text

    @tool
    async def browser_screenshot(ctx: Context) -> Image:
        """A PNG screenshot of the browser's viewport."""
        png: bytes = await browse(ctx, Screenshot())
        return Image(data=png, format="png")

    @tool
    async def browser_current_url(ctx: Context) -> str:
        """The browser's current page title and URL."""
        return _page(await browse(ctx, CurrentUrl()))

    @tool
    async def browser_run_script(script: str, ctx: Context) -> str:
        """Run JavaScript in the page; `return` a value to get it back as JSON."""
        value = await browse(ctx, RunScript(script))
        return json.dumps(value, ensure_ascii=False)

    @tool
    async def browser_back(ctx: Context) -> str:
        """Go back one page. Returns the page title and URL."""
        return _page(await browse(ctx, Back()))

    @tool
    async def shell(command: str, ctx: Context, timeout_seconds: float | None = None) -> str:
        """Run a bash command in this conversation's jailed shell (no network; /workspace is
        the only writable directory and persists). The working directory and exported
        variables carry over to the next call; functions, aliases and background processes do
        not. Returns the exit code, stdout and stderr."""
        result: CommandResult = await act(ctx, toolbox.shell, command, timeout_seconds)
        return format_command(result)

    @tool
    async def send_message(text: str, ctx: Context) -> str:
        """Post a message to this conversation's chat right away (e.g. progress on a long
        task); the turn goes on."""
        await act(ctx, toolbox.send_message, text)
        return "sent"

    return server
