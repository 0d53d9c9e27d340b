"""The tool catalogue is the one declaration of Piano's tools: Codex's MCP list and OpenAI
agents' function tools are generated from it, and a call is validated against it before
anything runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from piano.agents.openai import APPROVAL_PROPERTIES, tool_specs
from piano.tools import TOOL_BY_NAME, TOOL_GROUPS, TOOLS, ToolContext, thread_owner
from piano.tools.browser import BrowserAction
from piano.tools.jail import CommandResult
from piano.tools.webfetch import FetchResult
from tests.tools.conftest import Tools
from tests.tools.test_mcp import client, text

pytestmark = pytest.mark.anyio


async def test_the_mcp_endpoint_lists_exactly_the_catalogue_with_its_schemas(
    tools: Tools,
) -> None:
    async with client(tools, tools.access.token("thread-a")) as session:
        listed = await session.list_tools()

    assert [tool.name for tool in listed.tools] == [tool.name for tool in TOOLS]
    for mcp_tool, tool in zip(listed.tools, TOOLS, strict=True):
        assert mcp_tool.input_schema == tool.input_schema, tool.name
        assert mcp_tool.description == tool.description, tool.name


def test_openai_function_tools_are_the_catalogue_plus_the_shells_approval_request() -> None:
    specs = tool_specs(list(TOOL_GROUPS))

    assert [spec.name for spec in specs] == [tool.name for tool in TOOLS]
    for spec, tool in zip(specs, TOOLS, strict=True):
        expected = tool.input_schema
        if tool.name == "shell":
            expected["properties"] |= APPROVAL_PROPERTIES
            assert spec.description.startswith(tool.description)
        else:
            assert spec.description == tool.description
        assert spec.parameters == expected, tool.name


def test_both_backends_offer_screenshot_xpath_and_notes() -> None:
    names = {spec.name for spec in tool_specs(list(TOOL_GROUPS))}
    click = TOOL_BY_NAME["browser_click"].input_schema["properties"]

    assert {"browser_screenshot", "notes_save", "notes_get", "notes_list"} <= names
    assert click["by"]["enum"] == ["css", "xpath"]


class _Recorder:
    """A runner that records what reached it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    async def workspace(self, thread_id: str) -> Path:
        raise AssertionError("not used")

    async def fetch(self, thread_id: str, url: str) -> FetchResult:
        self.calls.append(("fetch", url))
        raise AssertionError("a bad call reached the runner")

    async def browse(self, thread_id: str, action: BrowserAction) -> Any:
        self.calls.append(("browse", action))
        raise AssertionError("a bad call reached the runner")

    async def shell(
        self, thread_id: str, command: str, timeout: float | None = None
    ) -> CommandResult:
        self.calls.append(("shell", command))
        raise AssertionError("a bad call reached the runner")


async def _post(text: str) -> None:
    raise AssertionError("a bad call posted")


@pytest.mark.parametrize(
    ("name", "arguments", "why"),
    [
        ("web_fetch", {}, "url"),
        ("browser_find", {"selector": "a", "limit": 0}, "limit"),
        ("browser_click", {"selector": "a", "by": "regex"}, "by"),
        ("shell", {"command": ["ls"]}, "command"),
        ("shell", {"command": "ls", "timeout_seconds": "soon"}, "timeout_seconds"),
        ("send_message", {"text": 3}, "text"),
        ("notes_save", {"title": "", "text": "x"}, "title"),
    ],
)
async def test_bad_arguments_are_refused_naming_the_argument_before_anything_runs(
    name: str, arguments: dict[str, Any], why: str
) -> None:
    runner = _Recorder()
    context = ToolContext("thread-a", "owner", runner, None, _post)

    with pytest.raises(ValueError, match=why):
        await TOOL_BY_NAME[name].call(context, arguments)
    assert runner.calls == []


async def test_codex_notes_over_mcp_belong_to_the_thread_that_saved_them(tools: Tools) -> None:
    async with client(tools, tools.access.token("thread-a")) as a:
        saved = await a.call_tool("notes_save", {"title": "plan", "text": "buy milk"})
        got = await a.call_tool("notes_get", {"title": "plan"})
        listed = await a.call_tool("notes_list", {})
    async with client(tools, tools.access.token("thread-b")) as b:
        other = await b.call_tool("notes_list", {})
        missing = await b.call_tool("notes_get", {"title": "plan"})

    assert text(saved) == "saved the note 'plan'"
    assert text(got) == "buy milk"
    assert text(listed) == "plan"
    assert text(other) == "no notes yet"
    assert text(missing) == "no note titled 'plan'; titles: none"
    assert await tools.notes.get(thread_owner("thread-a"), "plan") == "buy milk"


async def test_bad_arguments_over_mcp_are_a_tool_error_naming_the_argument(tools: Tools) -> None:
    async with client(tools, tools.access.token("thread-a")) as a:
        bad = await a.call_tool("browser_find", {"selector": "a", "limit": "many"})

    assert bad.is_error
    assert "limit" in text(bad)
