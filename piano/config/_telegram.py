"""`TelegramConfig`: the ``[telegram]`` section of piano.toml.

```toml
[telegram]
token_env = "PIANO_TELEGRAM_TOKEN"      # the bot token is read from this variable, never the file
mode = "polling"                        # polling | webhook
users = { "1001" = "admin", "1002" = "user" }     # Telegram user ids and their role
chats = { "-100200300" = "user" }                 # group chats whose members may all talk
group_context = 10                      # a group answer sees the last N messages of the chat
document_threshold = 12000              # answers longer than this go as a Markdown document
edit_interval_private = 1.0             # at most one progress edit per interval, per message
edit_interval_group = 3.0

[telegram.webhook]                      # only with mode = "webhook"
listen = "127.0.0.1"
port = 8443
path = "/telegram"
url = "https://bot.example.org/telegram"   # the public HTTPS address Telegram posts to
secret_env = "PIANO_TELEGRAM_WEBHOOK_SECRET"
```

Voice notes, images and files are taken as the ``[media]`` section says (`piano.media`): size
limits, transcription, the workspace inbox.

Roles: an ``admin`` may also switch a chat's agent (``/agent NAME``); a ``user`` may talk, start
a new thread, stop a turn and answer approvals. A user's own role wins over their chat's.
"""

from __future__ import annotations

from typing import Literal

import msgspec

__all__ = ["Role", "TelegramConfig", "WebhookConfig"]

Role = Literal["admin", "user"]


class WebhookConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    listen: str = "127.0.0.1"
    port: int = 8443
    path: str = "/telegram"
    url: str = ""
    secret_env: str = "PIANO_TELEGRAM_WEBHOOK_SECRET"


class TelegramConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The Telegram surface's settings; see the module documentation."""

    enabled: bool = True
    token_env: str = "PIANO_TELEGRAM_TOKEN"
    base_url: str = "https://api.telegram.org/bot"
    base_file_url: str = ""
    """Where files are downloaded from; empty: `base_url` with ``/bot`` turned into
    ``/file/bot`` (Telegram's own layout, also a local Bot API server's)."""
    mode: Literal["polling", "webhook"] = "polling"
    webhook: WebhookConfig = msgspec.field(default_factory=WebhookConfig)
    users: dict[str, Role] = msgspec.field(default_factory=dict)
    chats: dict[str, Role] = msgspec.field(default_factory=dict)
    default_agent: str | None = None
    group_context: int = 10
    document_threshold: int = 12000
    message_limit: int = 4096
    edit_interval_private: float = 1.0
    edit_interval_group: float = 3.0
    poll_timeout: int = 30
    max_document_bytes: int = 20 * 1024 * 1024
    preview_chars: int = 160
    refusal_interval: float = 3600.0
    inbox_retention: float = 7 * 24 * 3600.0

    def file_url(self) -> str:
        """The base of file download URLs (see `base_file_url`)."""
        if self.base_file_url:
            return self.base_file_url
        head, bot, _ = self.base_url.rpartition("/bot")
        return f"{head}/file/bot" if bot else self.base_url
