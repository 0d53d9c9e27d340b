"""Tools through their actors: what an agent's tool call costs inside the daemon.

One JSON line per measurement (median and p99 in ms over `n` calls), all on 127.0.0.1:
- ``jail_start``: a thread's first shell command (JailSession start: limits, bwrap, bash);
- ``jail_command``: ``true`` in a warm JailSession via the Toolbox, store audit included;
- ``webfetch_page``: fetch + extraction of a small article through the WebFetchTool actor;
- ``browser_<action>``: one action on a warm BrowserSession (local page, headless Chromium);
- ``mcp_<tool>``: a tools/call over streamable HTTP to the endpoint (token check included).
The raw JailedShell and WebFetcher are measured by the ``jail`` and ``webfetch`` benchmarks.
"""

from __future__ import annotations

import asyncio
import functools
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from aiohttp import web

from actors import ActorSystem
from bench.harness import Options
from piano.mcp import McpAccess, child_spec
from piano.store import STORE, CreateThread, StoreWriter, UpsertAgent, UpsertSurface
from piano.tools import JailToolConfig, Toolbox, ToolsConfig, WebFetchToolConfig
from piano.tools.browser import (
    BrowserConfig,
    Click,
    CurrentUrl,
    Find,
    ReadText,
    RunScript,
    Screenshot,
    Visit,
)

__all__ = ["run"]

PAGE = (
    "<!doctype html><html><head><title>Bench</title></head><body><main><h1>Bench page</h1>"
    + "<p>Piano measures how long its tools take for an agent. " * 40
    + "</p><a id='a' href='#x'>link</a><button id='b' onclick='window.n=(window.n||0)+1'>b</button>"
    "</main></body></html>"
)


def _line(what: str, samples: list[float]) -> dict[str, Any]:
    ordered = sorted(samples)
    n = len(ordered)
    return {
        "bench": "tools",
        "what": what,
        "n": n,
        "median_ms": round(statistics.median(ordered) * 1000, 3),
        "p99_ms": round(ordered[min(n - 1, int(n * 0.99))] * 1000, 3),
    }


async def _time(n: int, action: Callable[[], Awaitable[object]]) -> list[float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        await action()
        samples.append(time.perf_counter() - started)
    return samples


async def _serve() -> tuple[web.AppRunner, str]:
    app = web.Application()

    async def page(_request: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    app.router.add_get("/", page)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/"


async def _measure(n: int, starts: int, root: Path) -> list[dict[str, Any]]:
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    lines: list[dict[str, Any]] = []
    runner, url = await _serve()
    config = ToolsConfig(
        browser=BrowserConfig(block_dns=True, allowed_networks=["127.0.0.1/32"]),
        jail=JailToolConfig(workspace_root=str(root / "jails")),
        webfetch=WebFetchToolConfig(allowed_networks=["127.0.0.1/32"]),
    )
    try:
        async with ActorSystem() as system:
            store = await system.spawn(StoreWriter(root / "piano.db"), name=STORE)
            await store.call(UpsertSurface("bench", "bench"))
            await store.call(UpsertAgent("codex", "codex"))
            threads = [f"t{i}" for i in range(starts + 1)]
            for thread_id in threads:
                await store.call(CreateThread(thread_id, "bench", thread_id, "codex"))
            access = McpAccess(config.mcp)
            spec = child_spec(config, access, publish=None)
            await system.spawn(spec.start(), name=spec.name, init_timeout=None)
            box = Toolbox(system, config)

            starts_samples = []
            for thread_id in threads[1:]:
                began = time.perf_counter()
                await box.shell(thread_id, "true")
                starts_samples.append(time.perf_counter() - began)
            lines.append(_line("jail_start", starts_samples))
            lines.append(_line("jail_command", await _time(n, lambda: box.shell("t1", "true"))))
            lines.append(_line("webfetch_page", await _time(n, lambda: box.fetch("t0", url))))

            await box.browse("t0", Visit(url))
            actions: dict[str, Any] = {
                "visit": Visit(url),
                "click": Click("#b"),
                "find": Find("a, button"),
                "read_text": ReadText("main"),
                "run_script": RunScript("return window.n"),
                "current_url": CurrentUrl(),
                "screenshot": Screenshot(),
            }
            for name, action in actions.items():
                samples = await _time(n, functools.partial(box.browse, "t0", action))
                lines.append(_line(f"browser_{name}", samples))

            headers = {"Authorization": f"Bearer {access.token('t1')}"}
            async with (
                create_mcp_http_client(headers=headers) as http,
                Client(streamable_http_client(access.url, http_client=http)) as client,
            ):
                calls = {
                    "shell": ("shell", {"command": "true"}),
                    "browser_current_url": ("browser_current_url", {}),
                }
                await client.call_tool("browser_current_url", {})
                for name, (tool, arguments) in calls.items():
                    samples = await _time(n, functools.partial(client.call_tool, tool, arguments))
                    lines.append(_line(f"mcp_{name}", samples))
    finally:
        await runner.cleanup()
    return lines


def run(options: Options) -> Iterator[dict[str, Any]]:
    """Measure every tool path (see the module documentation)."""
    n, starts = (5, 2) if options.quick else (200, 10)
    with tempfile.TemporaryDirectory(prefix="piano-bench-tools-") as root:
        yield from asyncio.run(_measure(n, starts, Path(root)))
