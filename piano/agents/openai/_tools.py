"""The tools an OpenAI agent calls: function tools generated from Piano's catalogue.

The tools are `piano.tools.TOOLS`, the same table Codex's MCP tools come from: an agent's
``tools`` option picks their groups: ``web_fetch``, ``browser`` (the thread's headless
Chromium), ``shell`` (the thread's jailed bash), ``notes`` (save, get, list titles, per user)
and ``send_message`` (post to the chat while the turn goes on); an agent with ``handoffs``
also gets ``handoff`` (see `_handoff`). Calls go through a `ToolRunner` — the `Toolbox` of
piano.tools in the daemon — for the thread the agent works in. A screenshot is saved in the
thread's workspace (``screenshots/``) and sent back to the model as an image with the
call's output (the Responses API; Chat Completions gets the text only).

A tool never fails the turn: a bad argument, a page that cannot be fetched or a crashed
browser becomes a failed item whose output (what the model reads) says what went wrong.

Shell commands are approved per the agent's `approval_policy`, as Codex does:
``never`` runs every command; ``on-request`` asks the user when the model sets
``require_approval`` (with a ``justification``), the analogue of Codex's escalation request;
``untrusted`` asks for every command but a few known read-only ones (``ls``, ``cat``,
``pwd``...); ``on-failure`` runs every command (there is no unsandboxed retry to ask for:
every command runs in the jail). The shell's function tool is the catalogue's plus the
approval request (``require_approval``, ``justification``): Codex has approvals of its own.
"""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import uuid
from dataclasses import dataclass
from typing import Any, Final

from piano.agents.openai._history import ToolCall
from piano.tools import (
    TOOL_BY_NAME,
    TOOLS,
    Tool,
    ToolContext,
    ToolError,
    ToolResult,
    ToolRunner,
)
from schemas import events as ev

__all__ = [
    "APPROVAL_PROPERTIES",
    "SHELL_CWD",
    "ToolContext",
    "ToolOutcome",
    "ToolRunner",
    "ToolSpec",
    "function_tool",
    "item_for",
    "needs_approval",
    "parse_arguments",
    "run_shell",
    "run_tool",
    "tool_specs",
]

SHELL_CWD: Final = "/workspace"


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A function tool as the model sees it (JSON schema parameters)."""

    name: str
    description: str
    parameters: dict[str, Any]


APPROVAL_PROPERTIES: Final[dict[str, dict[str, Any]]] = {
    "require_approval": {
        "type": "boolean",
        "description": "ask the user before running the command",
    },
    "justification": {"type": "string", "description": "why, shown to the user"},
}
"""What the shell's function tool adds to the catalogue's parameters: the approval request."""

_APPROVAL_NOTE: Final = (
    " Set require_approval (with a justification) to ask the user first for anything that "
    "changes or deletes their files."
)


def function_tool(tool: Tool[Any]) -> ToolSpec:
    """The function tool of a catalogue entry (the shell's with its approval request)."""
    if tool.name != "shell":
        return ToolSpec(tool.name, tool.description, tool.input_schema)
    schema = tool.input_schema
    schema["properties"] = {**schema["properties"], **APPROVAL_PROPERTIES}
    return ToolSpec(tool.name, tool.description + _APPROVAL_NOTE, schema)


def tool_specs(groups: list[str]) -> list[ToolSpec]:
    """The function tools of the catalogue's groups `groups`, in the catalogue's order
    (unknown groups are ignored)."""
    return [function_tool(tool) for tool in TOOLS if tool.group in groups]


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    """What a call produced: the text the model reads, the item's status and exit code, and
    the images (paths) sent back with the text."""

    output: str
    status: ev.ItemStatus = "completed"
    exit_code: int | None = None
    images: tuple[str, ...] = ()


def parse_arguments(call: ToolCall) -> dict[str, Any]:
    """The call's arguments as a dict; `ValueError` saying why when they are not."""
    try:
        arguments = json.loads(call.arguments or "{}")
    except json.JSONDecodeError as exc:
        raise ValueError(f"the arguments are not valid JSON: {exc}") from None
    if not isinstance(arguments, dict):
        raise ValueError("the arguments must be a JSON object")
    return arguments


def item_for(call: ToolCall, item_id: str, agent: str) -> ev.Item:
    """The item that shows a call while it runs: a command for the shell, a tool call else."""
    if call.name == "shell":
        try:
            command = str(parse_arguments(call).get("command", ""))
        except ValueError:
            command = call.arguments
        return ev.Item(id=item_id, kind="command", command=command, cwd=SHELL_CWD, agent=agent)
    return ev.Item(
        id=item_id, kind="tool_call", tool=call.name, arguments=call.arguments, agent=agent
    )


_SAFE_PROGRAMS: Final = frozenset(
    {"ls", "cat", "pwd", "echo", "head", "tail", "wc", "grep", "which", "whoami", "date",
     "true", "stat", "file", "tree", "du", "df", "uname", "id", "sort", "uniq", "nl"}
)  # fmt: skip
_UNSAFE_SYNTAX: Final = re.compile(r"[;&|<>`$()\n]")


def _known_safe(command: str) -> bool:
    if _UNSAFE_SYNTAX.search(command):
        return False
    try:
        words = shlex.split(command)
    except ValueError:
        return False
    return bool(words) and words[0] in _SAFE_PROGRAMS


def needs_approval(policy: str, command: str, requested: bool) -> bool:
    """Whether a shell command waits for the user's approval (see the module documentation)."""
    if policy == "on-request":
        return requested
    if policy == "untrusted":
        return not _known_safe(command)
    return False


async def run_shell(ctx: ToolContext, arguments: dict[str, Any]) -> ToolOutcome:
    """Run an (approved) shell call in the thread's jail."""
    return await _run(TOOL_BY_NAME["shell"], arguments, ctx)


async def run_tool(call: ToolCall, ctx: ToolContext) -> ToolOutcome:
    """Run one call (not the shell's, which needs its approval first: `run_shell`)."""
    tool = TOOL_BY_NAME.get(call.name)
    if tool is None:
        return ToolOutcome(f"{call.name}: no tool named {call.name!r}", "failed")
    try:
        arguments = parse_arguments(call)
    except ValueError as exc:
        return ToolOutcome(f"{call.name}: {exc}", "failed")
    return await _run(tool, arguments, ctx)


async def _run(tool: Tool[Any], arguments: dict[str, Any], ctx: ToolContext) -> ToolOutcome:
    try:
        result = await tool.call(ctx, arguments)
    except (ToolError, ValueError) as exc:
        return ToolOutcome(f"{tool.name}: {exc}", "failed")
    status: ev.ItemStatus = "completed" if result.succeeded else "failed"
    if result.png is not None:
        return await _with_image(result, ctx, status)
    return ToolOutcome(result.text, status, result.exit_code)


async def _with_image(result: ToolResult, ctx: ToolContext, status: ev.ItemStatus) -> ToolOutcome:
    """A screenshot saved in the thread's workspace, sent back to the model with the text."""
    png, runner = result.png, ctx.runner
    assert png is not None  # only a screenshot comes here, and it came from the runner
    assert runner is not None
    name = f"screenshots/{uuid.uuid4().hex[:12]}.png"

    workspace = await runner.workspace(ctx.thread_id)

    def save() -> str:
        path = workspace / name
        path.parent.mkdir(mode=0o700, exist_ok=True)
        path.write_bytes(png)
        return str(path)

    path = await asyncio.to_thread(save)
    text = f"{result.text}, saved in the shell's workspace as {name}"
    return ToolOutcome(text, status, result.exit_code, images=(path,))
