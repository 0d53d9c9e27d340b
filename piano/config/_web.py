"""`WebConfig`: the ``[web]`` section of piano.toml.

```toml
[web]
enabled = true
host = "127.0.0.1"              # loopback only unless you put it behind a proxy you trust
port = 8470
token_env = "PIANO_WEB_TOKEN"   # the access token comes from this environment variable
allowed_origins = []            # extra browser origins allowed to open the stream
```

The token is never in the file. Sizes bound what one client can cost the server: `client_queue`
frames waiting for a client before it is dropped, `max_frame` bytes per client frame.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

__all__ = ["WebConfig", "WebEmbedConfig"]


Count = Annotated[int, msgspec.Meta(ge=1)]
Seconds = Annotated[float, msgspec.Meta(gt=0)]


class WebEmbedConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The embeddable chat (``<script src=".../embed.js" data-token=...>``, docs/web.md): an
    iframe of ``/embed`` whose token reaches one agent's conversations of that page and
    nothing else (no dashboard, no other threads, no other API)."""

    token_env: str = "PIANO_WEB_EMBED_TOKEN"
    """The variable holding the embed token (unset: no embed); it must differ from the web
    token, and it is visible to whoever reads the embedding page."""
    agent: str | None = None
    """The agent embedded chats talk to (None: the web surface's default agent)."""
    frame_ancestors: list[str] = msgspec.field(default_factory=list)
    """The origins whose pages may frame the chat (``https://shop.example.org``); empty: none
    may (the Content-Security-Policy's ``frame-ancestors``)."""


class WebConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 8470
    token_env: str = "PIANO_WEB_TOKEN"
    allowed_origins: list[str] = msgspec.field(default_factory=list)
    """Browser origins besides the server's own (http://127.0.0.1:port, http://localhost:port)."""
    rotation_grace: Annotated[float, msgspec.Meta(ge=0)] = 300.0
    """Seconds the previous token stays valid after a rotation."""
    replay_buffer: Count = 10_000
    """Thread events kept for clients that reconnect (`Resume`)."""
    client_queue: Count = 2_000
    """Frames queued for one client; one more and the client is dropped as too slow."""
    max_frame: Count = 64 * 1024
    """Largest client frame, in bytes; larger ones get a `frame_too_large` error."""
    auth_timeout: Seconds = 10.0
    """Seconds a stream client without an Authorization header has to send `Auth`."""
    heartbeat: Seconds = 20.0
    dashboard_interval: Seconds = 1.0
    default_agent: str | None = None
    """Agent of web conversations that name none (None: the daemon's default agent)."""
    max_threads: Count = 200
    """Threads whose state is kept in memory for snapshots (least recently active dropped)."""
    max_interactions: Count = 50
    """Interactions kept per thread for snapshots."""
    embed: WebEmbedConfig = msgspec.field(default_factory=WebEmbedConfig)
    """The embeddable chat (``[web.embed]``)."""
