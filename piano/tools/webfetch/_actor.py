"""`WebFetchTool`: the web fetcher as a supervised actor, many fetches in flight at once.

```python
fetcher = await system.spawn(WebFetchTool(FetchConfig()), name="tools:webfetch")
result = await fetcher.call(Fetch("https://example.org/", workspace=path), timeout=60)
```

A fetch can take up to `FetchConfig.timeout`, so the actor does not fetch inside its handler:
each `Fetch` runs as a task of the actor (at most `max_concurrent` at once, the rest wait their
turn) and is answered when done, while the actor keeps taking new requests. Whatever the page
or network does comes back as a `FetchResult` (see piano.tools.webfetch); only misuse (a
workspace that is not a directory) fails the call. Stopping the actor cancels the fetches in
flight (their callers get `ActorExited`) and closes the HTTP session.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actors import NOREPLY, Actor, Caller

from ._config import FetchConfig
from ._fetch import WebFetcher

__all__ = ["Fetch", "WebFetchTool"]


@dataclass(frozen=True, slots=True)
class Fetch:
    """Fetch `url`; long content is saved under `workspace`. Reply: `FetchResult`."""

    url: str
    workspace: Path | None = None


class WebFetchTool(Actor):
    """The web-fetch tool; see the module documentation."""

    def __init__(self, config: FetchConfig, *, max_concurrent: int = 4) -> None:
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        self.config = config
        self.max_concurrent = max_concurrent
        self.fetcher: WebFetcher | None = None
        self.slots: asyncio.Semaphore | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.fetched = 0

    def describe(self) -> str:
        return f"web fetch, {len(self.tasks)} in flight, {self.fetched} done"

    async def init(self) -> None:
        self.trap_exits = True
        self.slots = asyncio.Semaphore(self.max_concurrent)
        fetcher = WebFetcher(self.config)
        await fetcher.start()
        self.fetcher = fetcher

    async def handle_call(self, message: Any, caller: Caller) -> Any:
        if isinstance(message, Fetch) and self.fetcher is not None:
            task = asyncio.get_running_loop().create_task(self._fetch(message, caller))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
            return NOREPLY
        return await super().handle_call(message, caller)

    async def _fetch(self, message: Fetch, caller: Caller) -> None:
        fetcher, slots = self.fetcher, self.slots
        assert fetcher is not None
        assert slots is not None
        try:
            async with slots:
                result = await fetcher.fetch(message.url, workspace=message.workspace)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            caller.fail(exc)
            return
        self.fetched += 1
        caller.reply(result)

    async def terminate(self, reason: object) -> None:
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        fetcher, self.fetcher = self.fetcher, None
        if fetcher is not None:
            await fetcher.close()
