"""The MCP endpoint over real HTTP on 127.0.0.1: the tools listed, a token required (and
checked), a foreign Host refused, and every tool acting for the thread its token names."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from piano.mcp import TOOL_NAMES, ThreadTokens
from schemas.events import Notice
from tests.test_webfetch import LocalSite
from tests.tools.conftest import Tools

pytestmark = pytest.mark.anyio

INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "0"},
    },
}
ACCEPT = {"Accept": "application/json, text/event-stream"}


@asynccontextmanager
async def client(tools: Tools, token: str) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        create_mcp_http_client(headers=headers) as http,
        Client(streamable_http_client(tools.access.url, http_client=http)) as session,
    ):
        yield session


def text(result: object) -> str:
    content = getattr(result, "content", [])
    return "\n".join(getattr(part, "text", "") for part in content)


async def test_the_endpoint_lists_every_tool(tools: Tools) -> None:
    async with client(tools, tools.access.token("thread-a")) as session:
        listed = await session.list_tools()

    assert sorted(tool.name for tool in listed.tools) == sorted(TOOL_NAMES)


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer nonsense", "Basic dGhyZWFkLWE=", "forged"],
)
async def test_a_request_without_a_valid_thread_token_is_refused(
    tools: Tools, authorization: str | None
) -> None:
    if authorization == "forged":
        other = ThreadTokens(b"k" * 32).token("thread-a")
        authorization = f"Bearer {other}"
    headers = dict(ACCEPT)
    if authorization is not None:
        headers["Authorization"] = authorization
    async with (
        aiohttp.ClientSession() as http,
        http.post(tools.access.url, json=INIT, headers=headers) as response,
    ):
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_a_valid_token_with_a_foreign_host_header_is_refused(tools: Tools) -> None:
    headers = {
        **ACCEPT,
        "Authorization": f"Bearer {tools.access.token('thread-a')}",
        "Host": "evil.example:80",
    }
    async with (
        aiohttp.ClientSession() as http,
        http.post(tools.access.url, json=INIT, headers=headers) as response,
    ):
        assert response.status == 421


async def test_tools_act_for_the_thread_whose_token_called_them(
    tools: Tools, site: LocalSite
) -> None:
    async with client(tools, tools.access.token("thread-a")) as a:
        wrote = await a.call_tool("shell", {"command": "echo from-a > note.txt; pwd"})
        fetched = await a.call_tool("web_fetch", {"url": site.url("/")})
        sent = await a.call_tool("send_message", {"text": "halfway"})
        failed = await a.call_tool("shell", {"command": "exit 7"})
    async with client(tools, tools.access.token("thread-b")) as b:
        listing = await b.call_tool("shell", {"command": "ls -A; echo done"})

    assert not wrote.is_error
    assert text(wrote) == "exit code: 0\nstdout:\n/workspace\n"
    assert "quick brown fox" in text(fetched)
    assert text(sent) == "sent"
    assert [(type(e), e.thread_id, getattr(e, "message", None)) for e in tools.published] == [
        (Notice, "thread-a", "halfway")
    ]
    assert text(failed) == "exit code: 7"  # `exit` ends only its command's bash
    assert text(listing) == "exit code: 0\nstdout:\ndone\n"
    assert (tools.config.jail.workspace("thread-a") / "note.txt").read_text() == "from-a\n"


async def test_a_tool_failure_is_a_tool_error_result_that_says_why(tools: Tools) -> None:
    async with client(tools, tools.access.token("thread-a")) as a:
        blocked = await a.call_tool("web_fetch", {"url": "file:///etc/passwd"})

    assert blocked.is_error
    assert "blocked_scheme" in text(blocked)
