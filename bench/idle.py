"""Memory of idle actors, measured in a fresh interpreter: ``python -m bench.idle WHO N METHOD``.

WHO is piano, raw_asyncio or pykka; METHOD is ``tracemalloc`` (bytes the Python allocator handed
out, exact and repeatable, but blind to thread stacks and allocator slack) or ``rss`` (growth of
the resident set: what the machine pays, page-grained and including allocator slack).

An actor is idle once it has handled one call and nothing is queued: N actors are spawned, each
is called once, and (for Piano) the lingering drain tasks are let go. The list holding the N
references is counted too (8 bytes each), the same for every contender. Prints one JSON line:
{"bytes_per_actor": ..., "tasks": tasks besides main, "alive": ...}.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sys
import tracemalloc
from collections.abc import Callable

from actors import LINGER, ActorSystem
from bench.contenders import PianoEcho, PykkaEcho, RawRef, raw_spawn

_PAGE = os.sysconf("SC_PAGE_SIZE")


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * _PAGE


def _meter(method: str) -> Callable[[], int]:
    if method == "tracemalloc":
        tracemalloc.start()
        return lambda: tracemalloc.get_traced_memory()[0]
    return _rss


def _report(n: int, before: int, after: int, tasks: int, alive: int) -> None:
    print(json.dumps({"bytes_per_actor": (after - before) / n, "tasks": tasks, "alive": alive}))
    sys.stdout.flush()


async def _piano(n: int, meter: Callable[[], int]) -> None:
    async with ActorSystem() as system:
        gc.collect()
        before = meter()
        refs = [await system.spawn(PianoEcho()) for _ in range(n)]
        for ref in refs:
            await ref.call(None)
        await asyncio.sleep(LINGER * 2)
        gc.collect()
        after = meter()
        _report(n, before, after, len(asyncio.all_tasks()) - 1, system.statistics().alive)
        os._exit(0)


async def _raw(n: int, meter: Callable[[], int]) -> None:
    gc.collect()
    before = meter()
    refs: list[RawRef] = [raw_spawn() for _ in range(n)]
    for ref in refs:
        await ref.call(None)
    gc.collect()
    after = meter()
    _report(n, before, after, len(asyncio.all_tasks()) - 1, sum(not r.task.done() for r in refs))
    os._exit(0)


def _pykka(n: int, meter: Callable[[], int]) -> None:
    gc.collect()
    before = meter()
    refs = [PykkaEcho.start() for _ in range(n)]
    for ref in refs:
        ref.ask(None)
    gc.collect()
    after = meter()
    _report(n, before, after, 0, sum(ref.is_alive() for ref in refs))
    os._exit(0)


def main() -> None:
    who, n, method = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    meter = _meter(method)
    if who == "piano":
        asyncio.run(_piano(n, meter))
    elif who == "raw_asyncio":
        asyncio.run(_raw(n, meter))
    elif who == "pykka":
        _pykka(n, meter)
    else:
        raise SystemExit(f"unknown contender {who!r}")


if __name__ == "__main__":
    main()
