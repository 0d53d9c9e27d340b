"""Piano's web surface: a chat page, a live dashboard, a WebSocket event stream and a JSON API.

```python
from piano.web import WebConfig, child_spec
surfaces.append(child_spec(config.web, subscriptions=subscriptions, directory=directory))
```

Pages: ``/chat`` and ``/dashboard`` (open ``http://127.0.0.1:8470/chat#token=<token>``).
The package imports only its config and the dashboard at import time, so piano.config may
import `WebConfig` from it without a cycle (the surface itself needs piano.threads, which
needs piano.config). The stream protocol (`schemas.stream`), the HTTP API (`piano.web._api`)
and the access model (`piano.web._auth`) are documented in docs/web.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from piano.config import PriceConfig, WebConfig
from piano.store import StoreLocation
from piano.web._dashboard import RECENT_ERRORS, Observer, record_errors
from piano.web._messages import (
    accept_streams,
    drop_clients,
    rotate_token,
    stream_address,
    stream_stats,
)
from piano.web._names import SURFACE, WEB
from supervisors import ChildSpec

if TYPE_CHECKING:
    from actors import Registry
    from piano.commands import Commands
    from piano.media import Media
    from piano.threads import ThreadDirectory

__all__ = [
    "RECENT_ERRORS",
    "SURFACE",
    "WEB",
    "Observer",
    "WebConfig",
    "accept_streams",
    "child_spec",
    "drop_clients",
    "record_errors",
    "rotate_token",
    "stream_address",
    "stream_stats",
]


def child_spec(
    config: WebConfig,
    *,
    subscriptions: Registry,
    directory: ThreadDirectory,
    store_path: str | StoreLocation | None = None,
    default_agent: str = "default",
    root: str = "piano",
    token: str | None = None,
    media: Media | None = None,
    tokens_path: str | None = None,
    commands: Commands | None = None,
    prices: Mapping[str, PriceConfig] | None = None,
) -> ChildSpec:
    """The web surface as a child of the surfaces supervisor (token from `config.token_env`
    unless given; token rotations saved in `tokens_path`, if given, and restored from it).
    ``spec.start()`` makes a `WebSurface` to spawn by hand."""
    from piano.web._surface import WebSurface

    return ChildSpec(
        SURFACE,
        start=lambda: WebSurface(
            config,
            subscriptions,
            directory,
            default_agent=default_agent,
            store_path=store_path,
            root=root,
            token=token,
            media=media,
            tokens_path=tokens_path,
            commands=commands,
            prices=prices,
        ),
        name=WEB,
        shutdown=10.0,
    )
