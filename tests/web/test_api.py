"""The JSON HTTP API: access, threads, interactions and transcripts (from the store or from
recent events), messages, approvals and token rotation, against real sockets."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import structlog.testing
from aiohttp import ClientSession

from actors import ActorSystem, Registry
from piano.store import Writer
from piano.threads import MemoryDirectory
from piano.web import child_spec
from piano.web._sse import _frames
from schemas import events as ev
from tests.fakes.responses_provider import ExecCommand, Text
from tests.store.conftest import tool_approval
from tests.web.conftest import TOKEN, Web, WebCore, config

pytestmark = pytest.mark.anyio

AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def get(web: Web, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    async with web.session.get(
        f"{await web.base()}{path}", headers=AUTH if headers is None else headers
    ) as response:
        if response.content_type == "application/json":
            return response.status, await response.json()
        return response.status, await response.text()


async def post(
    web: Web, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    async with web.session.post(
        f"{await web.base()}{path}", json=body, headers=AUTH if headers is None else headers
    ) as response:
        return response.status, await response.json()


async def test_every_route_but_health_needs_the_token(web: Web) -> None:
    status, health = await get(web, "/api/health", headers={})
    assert status == 200
    assert health["ok"] is True
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}):
        status, body = await get(web, "/api/threads", headers=headers)
        assert status == 401
        assert body["error"]["code"] == "unauthorized"
    status, body = await post(web, "/api/messages", {"text": "hi"}, headers={})
    assert status == 401


async def test_pages_are_served_with_a_strict_content_security_policy(web: Web) -> None:
    for page in ("/chat", "/dashboard", "/static/stream.js"):
        async with web.session.get(f"{await web.base()}{page}") as response:
            assert response.status == 200
            assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    async with web.session.get(f"{await web.base()}/static/..%2Fapi.py") as response:
        assert response.status == 404


async def test_a_rotated_token_is_returned_once_and_the_old_one_keeps_working_for_its_grace(
    web: Web,
) -> None:
    status, rotated = await post(web, "/api/token/rotate", {"grace": 3600})
    assert status == 200
    new = {"Authorization": f"Bearer {rotated['token']}"}
    assert (await get(web, "/api/threads", headers=new))[0] == 200
    assert (await get(web, "/api/threads"))[0] == 200
    status, again = await post(web, "/api/token/rotate", {"grace": 0}, headers=new)
    assert status == 200
    status, body = await get(web, "/api/threads")
    assert (status, body["error"]["code"]) == (401, "token_expired")
    ok = {"Authorization": f"Bearer {again['token']}"}
    assert (await get(web, "/api/threads", headers=ok))[0] == 200


async def test_bad_bodies_get_clear_errors(web: Web) -> None:
    async with web.session.post(
        f"{await web.base()}/api/messages", data=b"{oops", headers=AUTH
    ) as response:
        assert response.status == 400
        assert (await response.json())["error"]["code"] == "bad_json"
    status, body = await post(web, "/api/messages", {"txt": "hi"})
    assert status == 400
    assert body["error"]["code"] == "bad_frame"
    assert "txt" in body["error"]["message"]
    status, body = await post(web, "/api/threads/nope/messages", {"text": "hi"})
    assert status == 503
    assert body["error"]["code"] == "unavailable"


async def test_messages_approvals_and_threads_through_the_api_without_a_store(
    web_core: WebCore,
) -> None:
    web_core.provider.script(
        ExecCommand("echo from-the-api", require_escalated=True), Text("api done")
    )
    status, sent = await post(web_core, "/api/messages", {"text": "run it", "conversation": "c9"})
    assert status == 202
    assert sent["outcome"] == "started"
    asked = await web_core.events.wait_for(lambda e: isinstance(e, ev.ApprovalRequested))
    thread_id = sent["thread_id"]
    status, body = await post(
        web_core, f"/api/threads/{thread_id}/approvals/nope", {"decision": "accept"}
    )
    assert (status, body["error"]["code"]) == (404, "not_found")
    status, body = await post(
        web_core, f"/api/threads/{thread_id}/approvals/{asked.approval_id}", {"decision": "accept"}
    )
    assert (status, body) == (200, {"ok": True})
    await web_core.events.wait_for(
        lambda e: isinstance(e, ev.TurnCompleted) and e.interaction_id == sent["interaction_id"]
    )
    status, listing = await get(web_core, "/api/threads")
    assert status == 200
    [row] = listing["threads"]
    assert (row["id"], row["surface"], row["conversation"]) == (thread_id, "web", "c9")
    status, body = await get(web_core, f"/api/threads/{thread_id}/interactions")
    [interaction] = body["interactions"]
    assert (interaction["text"], interaction["response"]) == ("run it", "api done")
    commands = [item for item in interaction["items"] if item["kind"] == "command"]
    assert "from-the-api" in commands[0]["output"]
    status, body = await get(web_core, f"/api/threads/{thread_id}/transcript")
    assert (status, body["error"]["code"]) == (503, "unavailable")
    status, body = await post(web_core, f"/api/threads/{thread_id}/messages", {"text": "again"})
    assert (status, body["thread_id"]) == (202, thread_id)


@pytest.fixture
async def stored(tmp_path: Path) -> AsyncIterator[Web]:
    path = tmp_path / "piano.db"
    with Writer(path) as writer:
        writer.upsert_surface("telegram", "telegram")
        writer.upsert_agent("codex", "codex")
        writer.create_thread("t1", "telegram", "chat:1", "codex")
        meta: dict[str, Any] = {"thread_id": "t1", "turn_id": "u1", "interaction_id": "i1"}
        item = ev.Item(id="m1", kind="agent_message", status="completed", text="stored answer")
        writer.write_batch(
            [
                ev.TurnStarted(
                    **meta, agent="codex", interaction=ev.Interaction(id="i1", text="question")
                ),
                ev.ItemStarted(**meta, item=ev.Item(id="m1", kind="agent_message")),
                ev.ItemCompleted(**meta, item=item),
                ev.TurnCompleted(**meta, status="completed", response="stored answer"),
            ]
        )
    async with ActorSystem() as system, ClientSession() as session:
        subscriptions = Registry(keys="duplicate")
        directory = MemoryDirectory()
        spec = child_spec(
            config(),
            subscriptions=subscriptions,
            directory=directory,
            store_path=str(path),
            token=TOKEN,
        )
        await system.spawn(spec.start(), name="web")
        yield Web(system, subscriptions, directory, session, "web")


async def test_threads_interactions_and_transcripts_come_from_the_store(stored: Web) -> None:
    status, listing = await get(stored, "/api/threads")
    assert status == 200
    assert [(t["id"], t["surface"], t["conversation"]) for t in listing["threads"]] == [
        ("t1", "telegram", "chat:1")
    ]
    status, body = await get(stored, "/api/threads/t1/interactions")
    [interaction] = body["interactions"]
    assert (interaction["text"], interaction["response"]) == ("question", "stored answer")
    assert [item["text"] for item in interaction["items"]] == ["stored answer"]
    status, markdown = await get(stored, "/api/threads/t1/transcript")
    assert status == 200
    assert "question" in markdown
    assert "stored answer" in markdown
    status, body = await get(stored, "/api/threads/t404/transcript")
    assert (status, body["error"]["code"]) == (404, "not_found")
    status, body = await get(stored, "/api/threads/t404/interactions")
    assert status == 404


def test_an_sse_approval_frame_carries_the_tool_and_its_arguments() -> None:
    asked = tool_approval()
    [frame], _ = _frames(asked, "codex")
    event, data = frame.decode().split("\n", 1)
    assert event == "event: approval"
    body = json.loads(data.removeprefix("data: ").strip())
    assert (body["kind"], body["tool"], body["arguments"]) == (
        "tool_call",
        asked.tool,
        asked.arguments,
    )


async def test_an_unexpected_exception_in_an_api_handler_is_a_logged_json_500() -> None:
    from aiohttp import web

    from piano.web._api import json_errors

    async def broken(request: web.Request) -> web.StreamResponse:
        raise RuntimeError("a bug in a handler")

    app = web.Application(middlewares=[json_errors])
    app.router.add_get("/api/broken", broken)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/api/broken"
        with structlog.testing.capture_logs() as logs:
            async with ClientSession() as session, session.get(url) as response:
                assert response.status == 500
                assert response.content_type == "application/json"
                assert (await response.json())["error"]["code"] == "internal"
    finally:
        await runner.cleanup()
    [failed] = [entry for entry in logs if entry["event"] == "web.request_failed"]
    assert failed["path"] == "/api/broken"


async def test_render_answers_sanitised_html_for_each_text_and_refuses_a_bad_body(
    web: Web,
) -> None:
    status, body = await post(
        web, "/api/render", {"texts": ["# Title", "<script>alert(1)</script>", ""]}
    )
    assert status == 200
    assert body["html"] == [
        "<h1>Title</h1>\n",
        "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>\n",
        "",
    ]
    status, body = await post(web, "/api/render", {"texts": "not a list"})
    assert (status, body["error"]["code"]) == (400, "bad_frame")
    status, body = await post(web, "/api/render", {"texts": ["x"]}, headers={})
    assert status == 401


async def test_an_answer_longer_than_a_client_frame_is_rendered(web: Web) -> None:
    long = "word " * 40_000  # 200 kB: more than max_frame, less than the render limit
    status, body = await post(web, "/api/render", {"texts": [long]})
    assert status == 200
    assert body["html"][0].startswith("<p>word word")


async def test_the_transcript_as_html_is_rendered_markdown(stored: Web) -> None:
    async with stored.session.get(
        f"{await stored.base()}/api/threads/t1/transcript?format=html", headers=AUTH
    ) as response:
        assert response.status == 200
        assert response.content_type == "text/html"
        html = await response.text()
    assert "stored answer" in html
    assert "<h" in html


async def test_an_actor_is_shown_with_its_state_statistics_links_monitors_and_restarts(
    web: Web,
) -> None:
    status, dashboard = await get(web, "/api/dashboard")
    [root] = dashboard["tree"]
    [surface] = [n for n in root["children"] if n["child_id"] == "web"]
    status, supervisor = await get(web, f"/api/actors/{root['actor_id']}")
    assert status == 200
    assert supervisor["statistics"] == {
        "children": 1,
        "running": 1,
        "restarts": 0,
        "max_restarts": 3,
        "max_seconds": 5.0,
    }
    status, actor = await get(web, f"/api/actors/{surface['actor_id']}")
    assert status == 200
    assert actor["statistics"] is None  # the surface keeps no statistics
    assert (actor["actor_class"], actor["name"], actor["restarts"]) == (
        "WebSurface",
        "surface:web",
        0,
    )
    assert actor["path"] == "piano/web"
    assert actor["parent"]["actor_id"] == root["actor_id"]
    assert root["actor_id"] in [peer["actor_id"] for peer in actor["links"]]
    assert actor["state"]["tokens"] == "'<redacted>'"
    assert TOKEN not in json.dumps(actor)
    status, body = await get(web, "/api/actors/999999")
    assert (status, body["error"]["code"]) == (404, "not_found")
    status, body = await get(web, "/api/actors/nope")
    assert (status, body["error"]["code"]) == (400, "bad_frame")


async def test_the_dashboard_snapshot_carries_the_same_activity_as_the_stream_frames(
    web: Web,
) -> None:
    client = await web.connect(subscribe="*")
    web.publish(ev.TokenUsage(thread_id="t-activity", total_tokens=42))
    await client.of_type("usage")
    status, dashboard = await get(web, "/api/dashboard")
    assert status == 200
    snapshot = dashboard["activity"]
    assert snapshot["tokens_total"] == 42
    assert snapshot["events_total"] >= 1
    assert snapshot["threads"] == {"t-activity": 1}
    await client.send({"type": "dashboard", "on": True})
    frame = (await client.of_type("dashboard")).activity
    # reading the snapshot took nothing from the frame: both come from one producer
    assert (frame.tokens_total, frame.threads) == (42, {"t-activity": 1})
