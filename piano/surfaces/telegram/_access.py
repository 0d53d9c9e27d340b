"""Who may use the bot: an allowlist of users and chats with roles, and an audit log.

A user listed in `TelegramConfig.users` may talk to the bot anywhere (a private chat or any
group it is in) with their role; a chat listed in `TelegramConfig.chats` lets every member talk
there with the chat's role. A user's own role wins, and ``admin`` outranks ``user``. Everyone
else gets a polite refusal (at most once per chat per `refusal_interval`) and an audit entry:
a row in ``telegram_audit`` and a structlog ``telegram.refused`` event. Decisions that change
what the agent does (approvals, agent switches) are audited too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

import structlog

from piano.config import Role, TelegramConfig
from piano.store import Writer

__all__ = ["Access"]

log = structlog.get_logger(__name__)
_RANK = {"user": 1, "admin": 2}


class Access:
    """The allowlist and the audit log; see the module documentation."""

    def __init__(
        self,
        config: TelegramConfig,
        writer: Writer,
        bot: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.users = {int(user): role for user, role in config.users.items()}
        self.chats = {int(chat): role for chat, role in config.chats.items()}
        self.writer = writer
        self.bot = bot
        self.clock = clock
        self.refusal_interval = config.refusal_interval
        self.refused_at: dict[int, float] = {}

    def role(self, user_id: int | None, chat_id: int) -> Role | None:
        """The role of `user_id` in `chat_id`, or None when they may not use the bot there."""
        roles: list[Role] = []
        if user_id is not None and user_id in self.users:
            roles.append(self.users[user_id])
        if chat_id in self.chats:
            roles.append(self.chats[chat_id])
        if not roles:
            return None
        return "admin" if "admin" in roles else "user"

    def allows(self, user_id: int | None, chat_id: int, needs: Role = "user") -> bool:
        role = self.role(user_id, chat_id)
        return role is not None and _RANK[role] >= _RANK[needs]

    def should_explain_refusal(self, chat_id: int) -> bool:
        """True at most once per chat per `refusal_interval` (no reply storms)."""
        now = self.clock()
        last = self.refused_at.get(chat_id)
        if last is not None and now - last < self.refusal_interval:
            return False
        self.refused_at[chat_id] = now
        return True

    def audit(
        self,
        action: str,
        outcome: Literal["allowed", "refused", "done", "failed"],
        *,
        user_id: int | None,
        chat_id: int | None,
        detail: str = "",
    ) -> None:
        """Record an access decision or a consequential action."""
        event = "telegram.refused" if outcome == "refused" else "telegram.audit"
        log.warning(event, action=action, outcome=outcome, user=user_id, chat=chat_id)
        with self.writer.transaction() as db:
            db.execute(
                "INSERT INTO telegram_audit (bot, at, user_id, chat_id, action, outcome, detail) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (self.bot, self.clock(), user_id, chat_id, action, outcome, detail[:1000]),
            )

    def entries(self) -> list[tuple[int | None, int | None, str, str, str]]:
        """Audit entries, oldest first: (user, chat, action, outcome, detail)."""
        with self.writer.reading() as db:
            rows = db.execute(
                "SELECT user_id, chat_id, action, outcome, detail FROM telegram_audit "
                "WHERE bot = ? ORDER BY id",
                (self.bot,),
            ).fetchall()
        return [tuple(row) for row in rows]  # type: ignore[misc]
