"""The tools an OpenAI agent calls, run through Piano's own tool actors.

An agent's ``tools`` option picks groups: ``web_fetch``, ``browser`` (the thread's headless
Chromium), ``shell`` (the thread's jailed bash), ``notes`` (save, get, list titles, per user)
and ``send_message`` (post to the chat while the turn goes on); an agent with ``handoffs``
also gets ``handoff`` (see `_handoff`). Calls go through a `ToolRunner` — the `Toolbox` of
piano.tools in the daemon — for the thread the agent works in.

A tool never fails the turn: a bad argument, a page that cannot be fetched or a crashed
browser becomes a failed item whose output (what the model reads) says what went wrong.

Shell commands are approved per the agent's `approval_policy`, as Codex does:
``never`` runs every command; ``on-request`` asks the user when the model sets
``require_approval`` (with a ``justification``), the analogue of Codex's escalation request;
``untrusted`` asks for every command but a few known read-only ones (``ls``, ``cat``,
``pwd``...); ``on-failure`` runs every command (there is no unsandboxed retry to ask for:
every command runs in the jail).
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol

import msgspec

from piano.agents.openai._history import ToolCall
from piano.agents.openai._notes import Notes
from piano.mcp import format_command, format_fetch
from piano.tools import ToolError
from piano.tools.browser import (
    Back,
    BrowserAction,
    Click,
    CurrentUrl,
    Find,
    PageInfo,
    ReadText,
    RunScript,
    Type,
    Visit,
)
from piano.tools.jail import CommandResult
from piano.tools.webfetch import FetchResult
from schemas import events as ev

__all__ = [
    "SHELL_CWD",
    "ToolContext",
    "ToolOutcome",
    "ToolRunner",
    "ToolSpec",
    "item_for",
    "needs_approval",
    "parse_arguments",
    "run_shell",
    "run_tool",
    "tool_specs",
]

SHELL_CWD: Final = "/workspace"


class ToolRunner(Protocol):
    """What runs the tools for a thread (`piano.tools.Toolbox` is one)."""

    async def fetch(self, thread_id: str, url: str) -> FetchResult: ...

    async def browse(self, thread_id: str, action: BrowserAction) -> Any: ...

    async def shell(
        self, thread_id: str, command: str, timeout: float | None = None
    ) -> CommandResult: ...


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A function tool as the model sees it (JSON schema parameters)."""

    name: str
    description: str
    parameters: dict[str, Any]


def _params(required: list[str], **properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required}


_STR: Final = {"type": "string"}
_SELECTOR: Final = {"type": "string", "description": "a CSS selector"}

_GROUPS: Final[dict[str, tuple[ToolSpec, ...]]] = {
    "web_fetch": (
        ToolSpec(
            "web_fetch",
            "Fetch a web page (http/https) and return its main content as Markdown, with its "
            "title and final URL.",
            _params(["url"], url=_STR),
        ),
    ),
    "browser": (
        ToolSpec(
            "browser_visit",
            "Open a URL in this conversation's browser; returns the title and URL.",
            _params(["url"], url=_STR),
        ),
        ToolSpec(
            "browser_click",
            "Click the first element matching a CSS selector.",
            _params(["selector"], selector=_SELECTOR),
        ),
        ToolSpec(
            "browser_type",
            "Type text into the first element matching a CSS selector (cleared first); "
            "submit=true presses Enter.",
            _params(
                ["selector", "text"], selector=_SELECTOR, text=_STR, submit={"type": "boolean"}
            ),
        ),
        ToolSpec(
            "browser_find",
            "List the elements matching a CSS selector as JSON lines.",
            _params(["selector"], selector=_SELECTOR, limit={"type": "integer"}),
        ),
        ToolSpec(
            "browser_read_text",
            "The visible text of the first element matching a CSS selector (default: body).",
            _params([], selector=_SELECTOR),
        ),
        ToolSpec("browser_current_url", "The browser's current title and URL.", _params([])),
        ToolSpec("browser_back", "Go back one page.", _params([])),
        ToolSpec(
            "browser_run_script",
            "Run JavaScript in the page; `return` a value to get it back as JSON.",
            _params(["script"], script=_STR),
        ),
    ),
    "shell": (
        ToolSpec(
            "shell",
            "Run a bash command in this conversation's jailed shell (no network; /workspace "
            "persists; the directory and exported variables carry over). Returns the exit code, "
            "stdout and stderr. Set require_approval (with a justification) to ask the user "
            "first for anything that changes or deletes their files.",
            _params(
                ["command"],
                command=_STR,
                timeout_seconds={"type": "number"},
                require_approval={"type": "boolean"},
                justification=_STR,
            ),
        ),
    ),
    "notes": (
        ToolSpec(
            "notes_save",
            "Save a note for this user under a title (replaces a note with the same title).",
            _params(["title", "text"], title=_STR, text=_STR),
        ),
        ToolSpec(
            "notes_get",
            "Read this user's note with the given title.",
            _params(["title"], title=_STR),
        ),
        ToolSpec("notes_list", "List the titles of this user's notes.", _params([])),
    ),
    "send_message": (
        ToolSpec(
            "send_message",
            "Post a message to the chat right away (progress on a long task); the turn goes on.",
            _params(["text"], text=_STR),
        ),
    ),
}


def tool_specs(groups: list[str]) -> list[ToolSpec]:
    """The specs of the tool groups `groups` (unknown groups are ignored)."""
    return [spec for group in groups for spec in _GROUPS.get(group, ())]


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    """What a call produced: the text the model reads, the item's status and exit code."""

    output: str
    status: ev.ItemStatus = "completed"
    exit_code: int | None = None


@dataclass(frozen=True, slots=True)
class ToolContext:
    """Whom a call acts for: the thread (tools), the notes owner, and the chat (messages)."""

    thread_id: str
    owner: str
    runner: ToolRunner | None
    notes: Notes | None
    post: Callable[[str], Awaitable[None]]


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
    if ctx.runner is None:
        return ToolOutcome("the shell is not available in this Piano", "failed")
    timeout = arguments.get("timeout_seconds")
    try:
        result = await ctx.runner.shell(
            ctx.thread_id,
            str(arguments["command"]),
            float(timeout) if isinstance(timeout, int | float) else None,
        )
    except ToolError as exc:
        return ToolOutcome(str(exc), "failed")
    status: ev.ItemStatus = "completed" if result.exit_code == 0 else "failed"
    return ToolOutcome(format_command(result), status, result.exit_code)


def _page(page: PageInfo) -> str:
    return f"{page.title}\n{page.url}" if page.title else page.url


def _browser_action(name: str, a: dict[str, Any]) -> BrowserAction:
    match name:
        case "browser_visit":
            return Visit(str(a["url"]))
        case "browser_click":
            return Click(str(a["selector"]))
        case "browser_type":
            return Type(str(a["selector"]), str(a["text"]), submit=bool(a.get("submit")))
        case "browser_find":
            return Find(str(a["selector"]), limit=int(a.get("limit", 20)))
        case "browser_read_text":
            return ReadText(str(a.get("selector") or "body"))
        case "browser_current_url":
            return CurrentUrl()
        case "browser_back":
            return Back()
        case "browser_run_script":
            return RunScript(str(a["script"]))
    raise ValueError(f"no tool named {name!r}")


def _browser_output(action: BrowserAction, value: Any) -> str:
    if isinstance(value, PageInfo):
        return _page(value)
    if isinstance(action, Find):
        if not value:
            return f"no element matches {action.selector!r}"
        return "\n".join(msgspec.json.encode(element).decode() for element in value)
    if isinstance(action, RunScript):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


async def run_tool(call: ToolCall, ctx: ToolContext) -> ToolOutcome:
    """Run one call (not the shell's, which needs its approval first: `run_shell`)."""
    try:
        arguments = parse_arguments(call)
        return await _run(call.name, arguments, ctx)
    except (KeyError, TypeError, ValueError) as exc:
        missing = f"missing argument {exc}" if isinstance(exc, KeyError) else str(exc)
        return ToolOutcome(f"{call.name}: {missing}", "failed")
    except ToolError as exc:
        return ToolOutcome(f"{call.name}: {exc}", "failed")


async def _run(name: str, arguments: dict[str, Any], ctx: ToolContext) -> ToolOutcome:
    if name.startswith("notes_"):
        return await _notes(name, arguments, ctx)
    if name == "send_message":
        await ctx.post(str(arguments["text"]))
        return ToolOutcome("sent")
    if ctx.runner is None:
        return ToolOutcome(f"{name}: Piano's tools are not available here", "failed")
    if name == "web_fetch":
        result = await ctx.runner.fetch(ctx.thread_id, str(arguments["url"]))
        if not result.ok:
            return ToolOutcome(f"{result.error_kind}: {result.error_message}", "failed")
        return ToolOutcome(format_fetch(result))
    if name.startswith("browser_"):
        action = _browser_action(name, arguments)
        return ToolOutcome(_browser_output(action, await ctx.runner.browse(ctx.thread_id, action)))
    raise ValueError(f"no tool named {name!r}")


async def _notes(name: str, arguments: dict[str, Any], ctx: ToolContext) -> ToolOutcome:
    if ctx.notes is None:
        return ToolOutcome("notes are not available in this Piano", "failed")
    if name == "notes_save":
        title = str(arguments["title"]).strip()
        if not title:
            raise ValueError("the title is empty")
        await ctx.notes.save(ctx.owner, title, str(arguments["text"]))
        return ToolOutcome(f"saved the note {title!r}")
    if name == "notes_get":
        title = str(arguments["title"])
        body = await ctx.notes.get(ctx.owner, title)
        if body is None:
            titles = await ctx.notes.titles(ctx.owner)
            return ToolOutcome(f"no note titled {title!r}; titles: {', '.join(titles) or 'none'}")
        return ToolOutcome(body)
    if name == "notes_list":
        titles = await ctx.notes.titles(ctx.owner)
        return ToolOutcome("\n".join(titles) if titles else "no notes yet")
    raise ValueError(f"no tool named {name!r}")
