"""Browser sessions for agents: one headless Chromium per thread, each an actor on its own thread.

```python
session = await system.spawn(BrowserSession("thread-1", BrowserConfig()))
page = await session.call(Visit("http://127.0.0.1:8000/"), timeout=60)     # PageInfo(url, title)
await session.call(Type("input[name=q]", "piano", submit=True), timeout=60)
text = await session.call(ReadText("main"), timeout=60)
png = await session.call(Screenshot(), timeout=60)
```

In the daemon the sessions live under a `DynamicSupervisor` bounded by
`BrowserConfig.max_sessions`, registered as ``tools:browser:<thread id>``, and are started on
demand by the `Toolbox` (piano.tools). See `_session` for the guarantees (page errors vs. a
crashed browser, idle close) and `_driver` for how Chromium is started offline-safe.
"""

from __future__ import annotations

from piano.tools.browser._actions import (
    Back,
    BrowserAction,
    BrowserActionError,
    BrowserCrashed,
    By,
    Click,
    CurrentUrl,
    ElementInfo,
    Find,
    PageInfo,
    ReadText,
    RunScript,
    Screenshot,
    Type,
    Visit,
)
from piano.tools.browser._config import BrowserConfig
from piano.tools.browser._driver import browser_pids, start_driver, stop_driver
from piano.tools.browser._session import BrowserSession

__all__ = [
    "Back",
    "BrowserAction",
    "BrowserActionError",
    "BrowserConfig",
    "BrowserCrashed",
    "BrowserSession",
    "By",
    "Click",
    "CurrentUrl",
    "ElementInfo",
    "Find",
    "PageInfo",
    "ReadText",
    "RunScript",
    "Screenshot",
    "Type",
    "Visit",
    "browser_pids",
    "start_driver",
    "stop_driver",
]
