"""The tool actors' child specs: what the ``tools`` supervisor starts (piano.mcp adds the endpoint).

```
tools:webfetch   WebFetchTool: fetches, many in flight
tools:browsers   DynamicSupervisor (max_children = browser.max_sessions): BrowserSession per thread
tools:jails      DynamicSupervisor (max_children = jail.max_sessions): JailSession per thread
```

Sessions are transient children (restarted after a crash, not after an idle close). The
session supervisors tolerate 10 restarts in 60 s (a browser crash costs one) before giving up
to the ``tools`` supervisor, which then starts them afresh with no sessions.
"""

from __future__ import annotations

from piano.tools._config import ToolsConfig
from piano.tools._toolbox import BROWSERS, JAILS, WEBFETCH
from piano.tools.webfetch import WebFetchTool
from supervisors import ChildSpec, DynamicSupervisor

__all__ = ["tool_specs"]


def tool_specs(config: ToolsConfig) -> list[ChildSpec]:
    """The child specs of the tool actors (see the module documentation)."""
    specs: list[ChildSpec] = []
    if config.webfetch.enabled:
        fetch = config.webfetch
        concurrent = fetch.max_concurrent
        specs.append(
            ChildSpec(
                WEBFETCH,
                start=lambda: WebFetchTool(fetch.fetch_config(), max_concurrent=concurrent),
                name=WEBFETCH,
            )
        )
    specs.append(
        ChildSpec(
            BROWSERS,
            start=lambda: DynamicSupervisor(
                max_children=config.browser.max_sessions, max_restarts=10, max_seconds=60.0
            ),
            name=BROWSERS,
            type="supervisor",
        )
    )
    if config.jail.enabled:
        specs.append(
            ChildSpec(
                JAILS,
                start=lambda: DynamicSupervisor(
                    max_children=config.jail.max_sessions, max_restarts=10, max_seconds=60.0
                ),
                name=JAILS,
                type="supervisor",
            )
        )
    return specs
