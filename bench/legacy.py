"""Adapters that plug stand-alone benchmark scripts into ``python -m bench``.

The scripts print their own JSON lines, so these yield nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

from bench.harness import Options

__all__ = ["jail", "webfetch"]


def webfetch(options: Options) -> Iterator[dict[str, Any]]:
    """bench/bench_webfetch.py: fetch + extraction per page against a local server."""
    from bench import bench_webfetch

    asyncio.run(bench_webfetch.main(5 if options.quick else 200))
    yield from ()


def jail(options: Options) -> Iterator[dict[str, Any]]:
    """bench/bench_jail.py: jail start and per-command round trips (needs bwrap)."""
    from bench import bench_jail

    if options.quick:
        asyncio.run(bench_jail.main(5, 2))
    else:
        asyncio.run(bench_jail.main(500, 30))
    yield from ()
