"""The embeddable chat in real Chromium, through `piano run` with the real codex and the fake
provider: a page served from another origin (a second local HTTP server) carries one
``<script src=".../embed.js">`` tag; the user chats through the iframe it inserts and reads the
answer; the embed token opens nothing else (the dashboard, the threads' API, usage, chat
commands, the SSE stream); and a page from an origin not in ``[web.embed] frame_ancestors``
cannot frame it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest
from aiohttp import web
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.acceptance.daemon import daemon_running
from tests.acceptance.test_surfaces import AUTH, WEB_ENV, free_port, web_base, web_config
from tests.fakes.responses_provider import CodexDirs, FakeResponsesProvider, Text
from tests.web.test_browser import run, until

pytestmark = pytest.mark.anyio

EMBED_TOKEN = "embed-token-for-the-shop-page-0123456789"
EMBED = {"Authorization": f"Bearer {EMBED_TOKEN}"}


@contextlib.asynccontextmanager
async def host_page(daemon: str, port: int) -> AsyncIterator[str]:
    """Another origin (127.0.0.1 on `port`) serving a page with the script tag; its origin."""
    html = (
        "<!doctype html><html><body><h1>The shop</h1>"
        f'<script src="{daemon}/embed.js" data-token="{EMBED_TOKEN}" data-height="400" async>'
        "</script></body></html>"
    )

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=html, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", page)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def embed_config(dirs: CodexDirs, provider: FakeResponsesProvider, allowed: str) -> Path:
    return web_config(dirs, provider, f'[web.embed]\nframe_ancestors = ["{allowed}"]\n')


async def framed_chat(driver: WebDriver, page: str) -> bool:
    """Open `page`, wait until it and its frames have loaded; whether the iframe shows the
    embedded chat (False: the browser refused to frame it)."""
    await run(driver.get, page)
    await until(driver, lambda d: d.execute_script("return document.readyState") == "complete")
    frame = await run(driver.find_element, By.CSS_SELECTOR, "iframe.piano-embed")
    await run(driver.switch_to.frame, frame)
    try:
        return bool(await run(driver.find_elements, By.ID, "embed-input"))
    finally:
        await run(driver.switch_to.default_content)


async def test_a_page_of_another_origin_chats_through_the_embed_and_gets_the_answer(
    dirs: CodexDirs, browser: WebDriver
) -> None:
    async with FakeResponsesProvider(default=Text("Embedded answer, from the agent")) as provider:
        # the allowed origin's port is known before the daemon starts: reserve it first
        port = free_port()
        allowed = f"http://127.0.0.1:{port}"
        config = embed_config(dirs, provider, allowed)
        env = {**WEB_ENV, "PIANO_WEB_EMBED_TOKEN": EMBED_TOKEN}
        async with daemon_running(config, dirs.root / "state" / "chat.sock", env=env):
            base = web_base(config)
            async with host_page(base, port), host_page(base, free_port()) as elsewhere:
                assert await framed_chat(browser, allowed + "/")
                frame = await run(browser.find_element, By.CSS_SELECTOR, "iframe.piano-embed")
                await run(browser.switch_to.frame, frame)

                def ask() -> None:
                    browser.find_element(By.ID, "embed-input").send_keys("What is on sale?")
                    browser.find_element(By.ID, "embed-send").click()

                await run(ask)
                await until(
                    browser,
                    lambda d: (
                        "Embedded answer, from the agent" in d.find_element(By.ID, "exchanges").text
                    ),
                    timeout=60,
                )
                shown = await run(lambda: browser.find_element(By.ID, "exchanges").text)
                assert "What is on sale?" in shown
                await run(browser.switch_to.default_content)
                # a page of an origin not in frame_ancestors gets no chat in its frame
                assert not await framed_chat(browser, elsewhere + "/")


async def test_the_embed_token_reaches_its_conversation_and_nothing_else(
    dirs: CodexDirs,
) -> None:
    async with FakeResponsesProvider(default=Text("scoped answer")) as provider:
        config = embed_config(dirs, provider, "https://shop.example.org")
        env = {**WEB_ENV, "PIANO_WEB_EMBED_TOKEN": EMBED_TOKEN}
        async with (
            daemon_running(config, dirs.root / "state" / "chat.sock", env=env),
            aiohttp.ClientSession() as http,
        ):
            base = web_base(config)
            # the owner's own conversation, through the web token
            async with http.post(
                f"{base}/api/messages",
                json={"conversation": "owner-private", "text": "secret plans"},
                headers=AUTH,
            ) as sent:
                assert sent.status == 202, await sent.text()
                owner_thread = (await sent.json())["thread_id"]
            # the embed token is refused everywhere but the embed's own routes
            for path in (
                "/api/dashboard",
                "/api/threads",
                f"/api/threads/{owner_thread}/interactions",
                f"/api/threads/{owner_thread}/transcript",
                "/api/usage",
                "/api/commands",
            ):
                async with http.get(base + path, headers=EMBED) as refused:
                    assert refused.status == 401, (path, refused.status)
            for path, body in (
                (f"/api/threads/{owner_thread}/messages", {"text": "hi"}),
                ("/api/messages/stream", {"conversation": "owner-private", "text": "hi"}),
                ("/api/commands", {"text": "/whoami"}),
            ):
                async with http.post(base + path, json=body, headers=EMBED) as refused:
                    assert refused.status == 401, (path, refused.status)
            async with http.ws_connect(f"{base}/stream", headers=EMBED) as stream:
                async for _ in stream:  # the error frame, then the close
                    pass
                assert stream.close_code == 4001
            # ... and the web token is no embed token either
            conversation = "a" * 32
            async with http.post(
                f"{base}/embed/api/messages",
                json={"conversation": conversation, "text": "hi"},
                headers=AUTH,
            ) as refused:
                assert refused.status == 401
            # without the token the body is not even read; with it, a body is read only so far
            async with http.post(f"{base}/embed/api/messages", data=b"{not json") as refused:
                assert refused.status == 401
            huge = {"conversation": conversation, "text": "x" * 1_000_000}
            async with http.post(f"{base}/embed/api/messages", json=huge, headers=EMBED) as big:
                assert big.status == 413
            async with http.post(
                f"{base}/embed/api/messages",
                json={"conversation": conversation, "text": "what do you sell?"},
                headers=EMBED,
            ) as sent:
                assert sent.status == 202, await sent.text()
                embed_thread = (await sent.json())["thread_id"]
            assert embed_thread != owner_thread
            async with http.get(
                f"{base}/embed/api/conversations/{conversation}", headers=EMBED
            ) as got:
                exchanges = (await got.json())["exchanges"]
            assert [x["text"] for x in exchanges] == ["what do you sell?"]
            assert "secret plans" not in str(exchanges)
            # a visitor who only opens the page (it asks for its exchanges on every load)
            # leaves no thread behind
            silent = "b" * 32
            async with http.get(f"{base}/embed/api/conversations/{silent}", headers=EMBED) as got:
                assert got.status == 200
                assert (await got.json())["exchanges"] == []
            async with http.get(f"{base}/api/threads", headers=AUTH) as listed:
                conversations = {t["conversation"] for t in (await listed.json())["threads"]}
            assert f"embed:{conversation}" in conversations
            assert f"embed:{silent}" not in conversations
            # framing: only the configured origin; CORS closed
            async with http.get(f"{base}/embed") as page:
                csp = page.headers["Content-Security-Policy"]
                assert "frame-ancestors https://shop.example.org" in csp
                assert "X-Frame-Options" not in page.headers
            async with http.get(f"{base}/chat") as chat_page:
                assert chat_page.headers["X-Frame-Options"] == "DENY"
                assert "frame-ancestors 'none'" in chat_page.headers["Content-Security-Policy"]
            async with http.get(
                f"{base}/embed/api/conversations/{conversation}",
                headers={**EMBED, "Origin": "https://shop.example.org"},
            ) as cross:
                assert "Access-Control-Allow-Origin" not in cross.headers


async def test_embed_visitors_are_one_user_whom_the_daily_limits_hold(dirs: CodexDirs) -> None:
    async with FakeResponsesProvider(default=Text("one answer")) as provider:
        extra = "[limits]\nturns_per_day = 1\n"
        config = web_config(dirs, provider, f"{extra}[web.embed]\nframe_ancestors = []\n")
        env = {**WEB_ENV, "PIANO_WEB_EMBED_TOKEN": EMBED_TOKEN}
        async with (
            daemon_running(config, dirs.root / "state" / "chat.sock", env=env),
            aiohttp.ClientSession() as http,
        ):
            base = web_base(config)

            async def ask(conversation: str, text: str) -> dict[str, Any]:
                """Send `text` as a visitor of `conversation`; its exchange once it ended."""
                body = {"conversation": conversation, "text": text}
                async with http.post(
                    f"{base}/embed/api/messages", json=body, headers=EMBED
                ) as sent:
                    assert sent.status == 202, await sent.text()
                url = f"{base}/embed/api/conversations/{conversation}"
                with anyio.fail_after(60):
                    while True:  # as the embed page does: ask again until the turn ended
                        async with http.get(url, headers=EMBED) as got:
                            exchanges: list[dict[str, Any]] = (await got.json())["exchanges"]
                        [exchange] = exchanges
                        if exchange["status"] not in ("pending", "in_progress"):
                            return exchange
                        await anyio.sleep(0.2)

            first = await ask("visitor-one-0123456789", "hello")
            # another visitor (a fresh conversation id) is still the same user: refused
            second = await ask("visitor-two-0123456789", "hello again")
    assert (first["status"], first["response"]) == ("completed", "one answer")
    assert second["status"] == "failed"
    assert "you have used your 1 turn for today" in second["error"]
    assert len(provider.requests) == 1, "the refused message reached the model"
