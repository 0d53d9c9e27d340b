"""`TOOLS`: every tool Piano offers a model, declared once; each backend's view is generated.

A `Tool` is one entry: its name, the group an OpenAI agent's ``tools`` option enables it by,
the description the model reads, its parameters as a frozen msgspec struct (whose JSON schema
is what the model sees, and which validates the model's arguments), and `run`, which calls
the thread's toolbox and shapes the `ToolResult`. From this table:

- piano.mcp lists and dispatches the tools Codex calls over MCP (`piano.mcp.build_server`);
- piano.agents.openai makes the function tools of its agents (``tool_specs``).

So both backends offer the same tools, with the same parameters, descriptions and results;
a new tool is one entry here (and the toolbox method it calls).

```python
tool = TOOL_BY_NAME["web_fetch"]
tool.input_schema                      # {"type": "object", "properties": {"url": ...}, ...}
result = await tool.call(context, {"url": "https://example.org/"})    # ToolResult
```

Guarantees:
- arguments are validated against the parameters before anything runs: a bad or missing
  argument raises `ValueError` saying which (`Tool.parse`); unknown extra arguments are
  ignored (a backend may add its own, as OpenAI's shell adds its approval request);
- every failure of the tool itself is a `ToolError` (piano.tools) whose message says what
  went wrong: a page that cannot be fetched, a crashed browser, tools or notes that this
  Piano does not have (`ToolUnavailable`). A command that exits non-zero is a result, with
  its `exit_code`, not an error;
- a result is text, and for ``browser_screenshot`` also a PNG (`ToolResult.png`).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Final, Generic, Protocol, TypeVar

import msgspec

from piano.tools._errors import ToolError, ToolUnavailable
from piano.tools._notes import Notes
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

__all__ = [
    "TOOLS",
    "TOOL_BY_NAME",
    "TOOL_GROUPS",
    "Tool",
    "ToolContext",
    "ToolResult",
    "ToolRunner",
    "format_command",
    "format_fetch",
]


class ToolRunner(Protocol):
    """What runs the tools for a thread (`piano.tools.Toolbox` is one)."""

    async def workspace(self, thread_id: str) -> Path:
        """The thread's workspace directory (created): its shell's /workspace."""
        ...

    async def fetch(self, thread_id: str, url: str) -> FetchResult: ...

    async def browse(self, thread_id: str, action: BrowserAction) -> Any: ...

    async def shell(
        self, thread_id: str, command: str, timeout: float | None = None
    ) -> CommandResult: ...


@dataclass(frozen=True, slots=True)
class ToolContext:
    """Whom a call acts for: the thread (its browser and shell), the notes' owner, and the
    chat (`post` puts a message in it now). `runner` or `notes` is None in a Piano without
    them: their tools then fail with `ToolUnavailable`."""

    thread_id: str
    owner: str
    runner: ToolRunner | None
    notes: Notes | None
    post: Callable[[str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What a call produced: the text the model reads, a PNG for a screenshot, and a
    command's exit code; `succeeded` is False for a command that exited non-zero or timed
    out (a result, not an error: the model reads why)."""

    text: str
    png: bytes | None = None
    exit_code: int | None = None
    succeeded: bool = True


P = TypeVar("P", bound=msgspec.Struct)


@dataclass(frozen=True, slots=True)
class Tool(Generic[P]):
    """One tool: see the module documentation."""

    name: str
    group: str
    description: str
    parameters: type[P]
    run: Callable[[ToolContext, P], Awaitable[ToolResult]]

    @property
    def input_schema(self) -> dict[str, Any]:
        """The parameters' JSON schema, inline (an object with properties and required)."""
        schema = msgspec.json.schema(self.parameters)
        body = dict(schema["$defs"][self.parameters.__name__])
        body.pop("title", None)
        body.pop("description", None)
        body.setdefault("required", [])
        return body

    def parse(self, arguments: Mapping[str, Any]) -> P:
        """The arguments as the parameters struct; `ValueError` saying what is wrong."""
        try:
            return msgspec.convert(dict(arguments), self.parameters)
        except msgspec.ValidationError as exc:
            raise ValueError(f"bad arguments: {exc}") from None

    async def call(self, context: ToolContext, arguments: Mapping[str, Any]) -> ToolResult:
        """Validate `arguments` (`ValueError`) and run the tool (`ToolError` on failure)."""
        return await self.run(context, self.parse(arguments))


# -- the parameters ----------------------------------------------------------------------------

_Selector = Annotated[
    str, msgspec.Meta(description='a CSS selector (or an XPath expression with by="xpath")')
]
_By = Annotated[By, msgspec.Meta(description='how to read the selector: "css" or "xpath"')]


class _Params(msgspec.Struct, frozen=True, kw_only=True):
    pass


class UrlParams(_Params, frozen=True, kw_only=True):
    url: Annotated[str, msgspec.Meta(description="an http or https URL")]


class NoParams(_Params, frozen=True, kw_only=True):
    pass


class ClickParams(_Params, frozen=True, kw_only=True):
    selector: _Selector
    by: _By = "css"


class TypeParams(_Params, frozen=True, kw_only=True):
    selector: _Selector
    text: str
    submit: Annotated[bool, msgspec.Meta(description="press Enter afterwards")] = False
    by: _By = "css"


class FindParams(_Params, frozen=True, kw_only=True):
    selector: _Selector
    limit: Annotated[int, msgspec.Meta(ge=1, description="at most this many elements")] = 20
    by: _By = "css"


class ReadTextParams(_Params, frozen=True, kw_only=True):
    selector: _Selector = "body"
    by: _By = "css"


class ScriptParams(_Params, frozen=True, kw_only=True):
    script: Annotated[str, msgspec.Meta(description="JavaScript; `return` a value")]


class ShellParams(_Params, frozen=True, kw_only=True):
    command: Annotated[str, msgspec.Meta(description="a bash command")]
    timeout_seconds: (
        Annotated[
            float,
            msgspec.Meta(
                description="kill it after this long; the jail clamps it to its configured limit"
            ),
        ]
        | None
    ) = None


class TextParams(_Params, frozen=True, kw_only=True):
    text: str


class NoteParams(_Params, frozen=True, kw_only=True):
    title: Annotated[str, msgspec.Meta(min_length=1)]
    text: str


class TitleParams(_Params, frozen=True, kw_only=True):
    title: str


# -- results as the model reads them ------------------------------------------------------------


def format_fetch(result: FetchResult) -> str:
    """A fetch result as the text the model reads (raises the `ToolError` of a failed fetch)."""
    if not result.ok:
        raise ToolError(f"{result.error_kind}: {result.error_message}")
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


def _page(page: PageInfo) -> ToolResult:
    return ToolResult(f"{page.title}\n{page.url}" if page.title else page.url)


# -- what each tool does ------------------------------------------------------------------------


def _runner(ctx: ToolContext) -> ToolRunner:
    if ctx.runner is None:
        raise ToolUnavailable("Piano's tools are not available here")
    return ctx.runner


def _notes(ctx: ToolContext) -> Notes:
    if ctx.notes is None:
        raise ToolUnavailable("notes are not available in this Piano")
    return ctx.notes


async def _browse(ctx: ToolContext, action: BrowserAction) -> Any:
    return await _runner(ctx).browse(ctx.thread_id, action)


async def _web_fetch(ctx: ToolContext, p: UrlParams) -> ToolResult:
    return ToolResult(format_fetch(await _runner(ctx).fetch(ctx.thread_id, p.url)))


async def _visit(ctx: ToolContext, p: UrlParams) -> ToolResult:
    return _page(await _browse(ctx, Visit(p.url)))


async def _click(ctx: ToolContext, p: ClickParams) -> ToolResult:
    return _page(await _browse(ctx, Click(p.selector, by=p.by)))


async def _type(ctx: ToolContext, p: TypeParams) -> ToolResult:
    return _page(await _browse(ctx, Type(p.selector, p.text, submit=p.submit, by=p.by)))


async def _find(ctx: ToolContext, p: FindParams) -> ToolResult:
    found = await _browse(ctx, Find(p.selector, limit=p.limit, by=p.by))
    if not found:
        return ToolResult(f"no element matches {p.selector!r}")
    return ToolResult("\n".join(msgspec.json.encode(element).decode() for element in found))


async def _read_text(ctx: ToolContext, p: ReadTextParams) -> ToolResult:
    return ToolResult(str(await _browse(ctx, ReadText(p.selector or "body", by=p.by))))


async def _screenshot(ctx: ToolContext, p: NoParams) -> ToolResult:
    png: bytes = await _browse(ctx, Screenshot())
    return ToolResult(f"a PNG screenshot of the viewport ({len(png)} bytes)", png=png)


async def _current_url(ctx: ToolContext, p: NoParams) -> ToolResult:
    return _page(await _browse(ctx, CurrentUrl()))


async def _run_script(ctx: ToolContext, p: ScriptParams) -> ToolResult:
    return ToolResult(json.dumps(await _browse(ctx, RunScript(p.script)), ensure_ascii=False))


async def _back(ctx: ToolContext, p: NoParams) -> ToolResult:
    return _page(await _browse(ctx, Back()))


async def _shell(ctx: ToolContext, p: ShellParams) -> ToolResult:
    result = await _runner(ctx).shell(ctx.thread_id, p.command, p.timeout_seconds)
    succeeded = result.exit_code == 0 and not result.timed_out
    return ToolResult(format_command(result), exit_code=result.exit_code, succeeded=succeeded)


async def _send_message(ctx: ToolContext, p: TextParams) -> ToolResult:
    await ctx.post(p.text)
    return ToolResult("sent")


async def _notes_save(ctx: ToolContext, p: NoteParams) -> ToolResult:
    title = p.title.strip()
    if not title:
        raise ValueError("bad arguments: the title is empty")
    await _notes(ctx).save(ctx.owner, title, p.text)
    return ToolResult(f"saved the note {title!r}")


async def _notes_get(ctx: ToolContext, p: TitleParams) -> ToolResult:
    notes = _notes(ctx)
    body = await notes.get(ctx.owner, p.title)
    if body is None:
        titles = await notes.titles(ctx.owner)
        return ToolResult(f"no note titled {p.title!r}; titles: {', '.join(titles) or 'none'}")
    return ToolResult(body)


async def _notes_list(ctx: ToolContext, p: NoParams) -> ToolResult:
    titles = await _notes(ctx).titles(ctx.owner)
    return ToolResult("\n".join(titles) if titles else "no notes yet")


# -- the table ---------------------------------------------------------------------------------

TOOLS: Final[tuple[Tool[Any], ...]] = (
    Tool(
        "web_fetch",
        "web_fetch",
        "Fetch a web page (http/https) and return its main content as Markdown, with its "
        "title and final URL. Long pages are saved in the shell's /workspace/webfetch/.",
        UrlParams,
        _web_fetch,
    ),
    Tool(
        "browser_visit",
        "browser",
        "Open a URL in this conversation's browser and wait for it to load. Returns the page "
        "title and URL.",
        UrlParams,
        _visit,
    ),
    Tool(
        "browser_click",
        "browser",
        'Click the first element matching the CSS selector (or XPath with by="xpath"). '
        "Returns the page title and URL after the click.",
        ClickParams,
        _click,
    ),
    Tool(
        "browser_type",
        "browser",
        "Type text into the first element matching the selector (cleared first); with "
        "submit=true, press Enter afterwards. Returns the page title and URL.",
        TypeParams,
        _type,
    ),
    Tool(
        "browser_find",
        "browser",
        "List the elements matching the selector (tag, text, telling attributes), as JSON "
        "lines, at most `limit`.",
        FindParams,
        _find,
    ),
    Tool(
        "browser_read_text",
        "browser",
        "The visible text of the first element matching the selector (the whole page by default).",
        ReadTextParams,
        _read_text,
    ),
    Tool(
        "browser_screenshot",
        "browser",
        "A PNG screenshot of the browser's viewport.",
        NoParams,
        _screenshot,
    ),
    Tool(
        "browser_current_url",
        "browser",
        "The browser's current page title and URL.",
        NoParams,
        _current_url,
    ),
    Tool(
        "browser_run_script",
        "browser",
        "Run JavaScript in the page; `return` a value to get it back as JSON.",
        ScriptParams,
        _run_script,
    ),
    Tool(
        "browser_back",
        "browser",
        "Go back one page. Returns the page title and URL.",
        NoParams,
        _back,
    ),
    Tool(
        "shell",
        "shell",
        "Run a bash command in this conversation's jailed shell (no network; /workspace is "
        "the only writable directory and persists). The working directory and exported "
        "variables carry over to the next call; functions, aliases and background processes "
        "do not. Returns the exit code, stdout and stderr.",
        ShellParams,
        _shell,
    ),
    Tool(
        "notes_save",
        "notes",
        "Save a note under a title (replaces a note with the same title); notes outlive the "
        "conversation's context.",
        NoteParams,
        _notes_save,
    ),
    Tool(
        "notes_get",
        "notes",
        "Read the note with the given title.",
        TitleParams,
        _notes_get,
    ),
    Tool(
        "notes_list",
        "notes",
        "List the titles of the saved notes.",
        NoParams,
        _notes_list,
    ),
    Tool(
        "send_message",
        "send_message",
        "Post a message to this conversation's chat right away (e.g. progress on a long "
        "task); the turn goes on.",
        TextParams,
        _send_message,
    ),
)

TOOL_BY_NAME: Final[Mapping[str, Tool[Any]]] = {tool.name: tool for tool in TOOLS}

TOOL_GROUPS: Final[tuple[str, ...]] = tuple(dict.fromkeys(tool.group for tool in TOOLS))
"""The groups an OpenAI agent's ``tools`` option names, in the table's order."""
