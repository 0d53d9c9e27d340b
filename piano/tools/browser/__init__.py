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
crashed browser, idle close) and `_sandbox` for how Chromium is started: offline-safe, in a
network and pid namespace of its own that no other local user can reach and that dies with
the daemon. `start_browser` gives the same sandboxed browser to plain synchronous code.
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
from piano.tools.browser._sandbox import Browser, start_browser
from piano.tools.browser._session import BrowserSession

__all__ = [
    "Back",
    "Browser",
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
    "start_browser",
]
