"""The SSE chat endpoint read by a real HTTP client: a turn with a handoff and a tool call
as its event sequence, a failed turn, and the web API's token."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from piano.web._auth import Tokens
from piano.web._sse import SSE_PATH, add_sse_routes, token_check
from tests.agents.conftest import Start, World
from tests.agents.fake_openai import Call, Text, Truncate

pytestmark = pytest.mark.anyio

TOKEN = "web-token"


@pytest.fixture
async def served(agents: Start) -> AsyncIterator[tuple[World, str]]:
    world = await agents()
    app = web.Application()
    add_sse_routes(
        app,
        system=world.system,
        subscriptions=world.subscriptions,
        directory=world.directory,
        default_agent="concierge",
        check_token=token_check(Tokens(TOKEN)),
    )
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield world, f"http://127.0.0.1:{port}{SSE_PATH}"
    finally:
        await runner.cleanup()


async def read_events(response: aiohttp.ClientResponse) -> list[tuple[str, dict[str, Any]]]:
    events: list[tuple[str, dict[str, Any]]] = []
    name = ""
    async for raw in response.content:
        line = raw.decode().rstrip("\n")
        if line.startswith("event: "):
            name = line[len("event: ") :]
        elif line.startswith("data: "):
            events.append((name, json.loads(line[len("data: ") :])))
    return events


async def post(url: str, body: dict[str, Any], token: str | None = TOKEN) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json=body, headers=headers) as response,
    ):
        if response.headers.get("Content-Type", "").startswith("text/event-stream"):
            return response.status, await read_events(response)
        return response.status, await response.json()


async def test_a_posted_message_streams_its_turn_as_server_sent_events(
    served: tuple[World, str],
) -> None:
    world, url = served
    world.fake.script(
        Call("handoff", {"agent": "archivist"}),
        Call("notes_save", {"title": "t", "text": "x"}),
        Text("Saved it for you.", deltas=3),
    )
    status, events = await post(url, {"text": "keep x", "conversation": "sse", "user": "ada"})
    assert status == 200
    names = [name for name, _ in events]
    assert names == [
        "user_message",
        "agent",
        "agent",
        "tool_call",
        "tool_result",
        "delta",
        "delta",
        "delta",
        "done",
    ]
    data = [d for _, d in events]
    assert (data[0]["text"], data[0]["outcome"]) == ("keep x", "started")
    assert data[1] == {"agent": "concierge", "previous": None}
    assert data[2] == {"agent": "archivist", "previous": "concierge"}
    assert (data[3]["tool"], data[4]["status"]) == ("notes_save", "completed")
    assert "".join(d["text"] for d in data[5:8]) == "Saved it for you."
    assert data[8]["status"] == "completed"
    assert (data[8]["response"], data[8]["agent"]) == ("Saved it for you.", "archivist")


async def test_a_failed_turn_streams_an_error_before_done(served: tuple[World, str]) -> None:
    world, url = served
    world.fake.script(Truncate("half an ans"))
    status, events = await post(url, {"text": "hello"})
    assert status == 200
    assert [name for name, _ in events][-2:] == ["error", "done"]
    assert "incomplete" in events[-2][1]["message"]
    assert events[-1][1]["status"] == "failed"


async def test_the_endpoint_needs_the_web_token(served: tuple[World, str]) -> None:
    world, url = served
    for token in (None, "wrong"):
        status, body = await post(url, {"text": "hello"}, token=token)
        assert status == 401
        assert body["error"]["code"] == "unauthorized"
    assert world.fake.requests == []
