"""The Telegram surface: Piano's conversations in Telegram chats, groups and forum topics.

```python
spec = child_spec(config.telegram, subscriptions=subscriptions, directory=directory,
                  store_path=str(config.state_path(config.daemon.database)),
                  default_agent=config.default_agent, agents=sorted(config.agents),
                  media=build_media(config.media, config.agents, config.providers))
```

`child_spec` returns the `ChildSpec` of a `TelegramSurface` for the daemon's ``surfaces``
supervisor; the bot token is read from the environment variable `TelegramConfig.token_env`
(and the webhook secret from `WebhookConfig.secret_env`) when the surface starts; the Bot API
is reached afterwards, with back-off, so the surface starts while Telegram is unreachable. See
`_surface` for what the surface does, `_inbox` for the guarantee on incoming updates,
`_outbox` for the one on answers (retried until delivered, across restarts), `_split` for how
answers are rendered, `_progress` for the status message, `_access` for the allowlist,
`_media` for voice notes, images and files (`media`: see `piano.media`).
"""

from __future__ import annotations

import asyncio
import os

from actors import Backoff, Registry, Secret
from piano.commands import Commands
from piano.config import Role, TelegramConfig, WebhookConfig
from piano.media import Media
from piano.store import StoreLocation
from piano.surfaces.telegram._access import Access
from piano.surfaces.telegram._inbox import Conversation, Inbox, PostgresInbox, open_inbox
from piano.surfaces.telegram._names import SURFACE, TELEGRAM
from piano.surfaces.telegram._progress import ChatPacer, TurnProgress
from piano.surfaces.telegram._split import Chunk, render_html, split_markdown
from piano.surfaces.telegram._surface import Route, TelegramSurface, Transcripts
from piano.surfaces.telegram._tables import TELEGRAM_TABLES
from piano.threads import ThreadDirectory
from supervisors import ChildSpec

__all__ = [
    "SURFACE",
    "TELEGRAM",
    "TELEGRAM_TABLES",
    "Access",
    "ChatPacer",
    "Chunk",
    "Conversation",
    "Inbox",
    "PostgresInbox",
    "Role",
    "Route",
    "TelegramConfig",
    "TelegramSurface",
    "Transcripts",
    "TurnProgress",
    "WebhookConfig",
    "child_spec",
    "open_inbox",
    "render_html",
    "split_markdown",
    "store_transcripts",
]


class MissingToken(RuntimeError):
    """The environment variable that should hold the bot token is empty."""


def store_transcripts(store_path: str | StoreLocation) -> Transcripts:
    """Transcripts from Piano's store (`StoreReader.export_transcript`), read off the loop."""

    async def transcript(thread_id: str) -> str | None:
        from piano.store import open_reader

        def read() -> str | None:
            with open_reader(store_path) as reader:
                if reader.thread(thread_id) is None:
                    return None
                return reader.export_transcript(thread_id)

        return await asyncio.to_thread(read)

    return transcript


def child_spec(
    config: TelegramConfig,
    *,
    subscriptions: Registry,
    directory: ThreadDirectory,
    store_path: str | StoreLocation,
    default_agent: str,
    agents: list[str],
    transcripts: Transcripts | None = None,
    media: Media | None = None,
    web: tuple[str, int] | None = None,
    commands: Commands | None = None,
    alert_chats: list[int] | None = None,
) -> ChildSpec:
    """The supervised Telegram surface (restarted alone, with back-off, when it crashes).
    `alert_chats` receive the owner's alerts (None: every admin user's private chat)."""

    def start() -> TelegramSurface:
        token = Secret(os.environ.get(config.token_env, ""))  # a repr that never shows it
        if not token:
            raise MissingToken(f"telegram: set the bot token in ${config.token_env}")
        secret = Secret(os.environ.get(config.webhook.secret_env) or "") or None
        if config.mode == "webhook" and config.webhook.url and secret is None:
            raise MissingToken(f"telegram: set the webhook secret in ${config.webhook.secret_env}")
        return TelegramSurface(
            config,
            token=token,
            subscriptions=subscriptions,
            directory=directory,
            store_path=store_path,
            default_agent=default_agent,
            agents=agents,
            transcripts=transcripts or store_transcripts(store_path),
            webhook_secret=secret,
            media=media,
            web_address=web,
            commands=commands,
            alert_chats=alert_chats,
        )

    return ChildSpec(
        SURFACE,
        start=start,
        name=TELEGRAM,
        backoff=Backoff(initial=1.0, cap=60.0),
        shutdown=10.0,
        init_timeout=60.0,
    )
