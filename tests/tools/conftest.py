"""Fixtures for the tool actors: a local site on 127.0.0.1, a store with threads, and an actor
system running the tools tree (tool actors + MCP endpoint) against them."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from actors import ActorSystem
from piano.mcp import McpAccess, child_spec
from piano.store import STORE, CreateThread, StoreWriter, UpsertAgent, UpsertSurface
from piano.tools import (
    JailToolConfig,
    McpConfig,
    MemoryNotes,
    Toolbox,
    ToolsConfig,
    WebFetchToolConfig,
)
from piano.tools.browser import BrowserConfig
from schemas.events import ThreadEvent
from tests.test_webfetch import LocalSite

PAGE = """<!doctype html>
<html><head><title>Piano test page</title></head>
<body>
<main>
<h1 id="heading">Hello from the test page</h1>
<p>The quick brown fox jumps over the lazy dog. A second sentence makes this an article that
the extractor keeps, with enough words to count as main content for trafilatura.</p>
<p>Piano drives tools for agents: a browser, a jailed shell and a web fetcher.</p>
<form action="/result" method="get">
  <input name="q" placeholder="search">
  <button id="go" type="submit">Go</button>
</form>
<a id="next" href="/second">Second page</a>
<button id="counter" onclick="this.textContent = 'clicked ' + (++window.n)">press</button>
<script>window.n = 0;</script>
</main>
</body></html>
"""
SECOND = "<html><head><title>Second</title></head><body><p>second page text</p></body></html>"
THREADS = ("thread-a", "thread-b")


def require_binaries() -> None:
    for path, package in (
        ("/usr/bin/chromium", "chromium"),
        ("/usr/bin/chromedriver", "chromium-driver"),
    ):
        if not os.access(path, os.X_OK):
            pytest.fail(f"{path} not found: run scripts/bootstrap (apt-get install {package})")


@pytest.fixture
async def site() -> AsyncIterator[LocalSite]:
    """The test pages; ``/slow`` answers only once ``release`` is set (``entered`` says it
    has been asked for)."""
    local = LocalSite()
    local.page("/", PAGE)
    local.page("/second", SECOND)

    async def result(request: web.Request) -> web.StreamResponse:
        query = request.query.get("q", "")
        return web.Response(
            text=f"<html><head><title>Result</title></head><body>you searched {query}</body>"
            "</html>",
            content_type="text/html",
        )

    async def slow(_request: web.Request) -> web.StreamResponse:
        local.entered.set()
        await local.release.wait()
        return web.Response(text=SECOND, content_type="text/html")

    local.route("/result", result)
    local.route("/slow", slow)
    async with local:
        yield local


def tools_config(tmp_path: Path, **browser: Any) -> ToolsConfig:
    """Tools for tests: the browser and web fetch may reach 127.0.0.1 (the local site)."""
    options: dict[str, Any] = {"block_dns": True, "allowed_networks": ["127.0.0.1/32"]}
    return ToolsConfig(
        browser=BrowserConfig(**(options | browser)),
        jail=JailToolConfig(workspace_root=str(tmp_path / "jails"), timeout=20.0),
        webfetch=WebFetchToolConfig(allowed_networks=["127.0.0.1/32"], timeout=10.0),
        mcp=McpConfig(),
    )


@dataclass
class Tools:
    """A running tools tree with its store and what `send_message` published."""

    system: ActorSystem
    config: ToolsConfig
    access: McpAccess
    toolbox: Toolbox
    db: Path
    published: list[ThreadEvent] = field(default_factory=list)
    notes: MemoryNotes = field(default_factory=MemoryNotes)


async def start_store(system: ActorSystem, db: Path, *threads: str) -> None:
    store = await system.spawn(StoreWriter(db), name=STORE)
    await store.call(UpsertSurface("test", "test"))
    await store.call(UpsertAgent("codex", "codex"))
    for thread_id in threads:
        await store.call(CreateThread(thread_id, "test", f"chat:{thread_id}", "codex"))


@pytest.fixture
async def tools(tmp_path: Path) -> AsyncIterator[Tools]:
    async with ActorSystem() as system:
        db = tmp_path / "piano.db"
        await start_store(system, db, *THREADS)
        config = tools_config(tmp_path)
        access = McpAccess(config.mcp)
        published: list[ThreadEvent] = []
        notes = MemoryNotes()
        spec = child_spec(config, access, publish=published.extend, notes=notes)
        await system.spawn(spec.start(), name=spec.name, init_timeout=None)
        yield Tools(
            system,
            config,
            access,
            Toolbox(system, config, publish=published.extend),
            db,
            published,
            notes,
        )
