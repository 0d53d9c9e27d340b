"""Benchmark: fetch + extraction per page through WebFetcher against a local aiohttp server.

Prints one JSON line per page kind: {"bench": "webfetch", "page": ..., "n": ..., "median_ms": ...,
"p99_ms": ...}. Run: .venv/bin/python bench/bench_webfetch.py [--n 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import time
from pathlib import Path

import structlog
from aiohttp import web

from piano.tools.webfetch import FetchConfig, WebFetcher

ARTICLE = (
    Path(__file__).parent.parent / "tests" / "data" / "webfetch" / "article.html"
).read_bytes()


def _large(copies: int) -> bytes:
    start, end = ARTICLE.index(b"<h2>Why the docks?</h2>"), ARTICLE.index(b"</article>")
    return ARTICLE[:start] + ARTICLE[start:end] * copies + ARTICLE[end:]


PAGES = {f"article_{len(body) // 1024}kb": body for body in (ARTICLE, _large(45), _large(250))}


async def _serve() -> tuple[web.AppRunner, int]:
    app = web.Application()
    for name, body in PAGES.items():

        async def handler(_request: web.Request, body: bytes = body) -> web.Response:
            return web.Response(body=body, content_type="text/html")

        app.router.add_get(f"/{name}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, runner.addresses[0][1]


async def main(n: int) -> None:
    runner, port = await _serve()
    config = FetchConfig(allowed_networks=("127.0.0.1/32",), inline_limit=10_000_000)
    try:
        async with WebFetcher(config) as fetcher:
            for name, body in PAGES.items():
                url = f"http://127.0.0.1:{port}/{name}"
                await fetcher.fetch(url)
                samples = []
                for _ in range(n):
                    started = time.perf_counter()
                    result = await fetcher.fetch(url)
                    samples.append((time.perf_counter() - started) * 1000)
                    assert result.ok, result.error_message
                samples.sort()
                print(
                    json.dumps(
                        {
                            "bench": "webfetch",
                            "page": name,
                            "bytes": len(body),
                            "n": n,
                            "median_ms": round(statistics.median(samples), 3),
                            "p99_ms": round(samples[min(n - 1, int(n * 0.99))], 3),
                        }
                    ),
                    flush=True,
                )
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=200)
    asyncio.run(main(parser.parse_args().n))
