"""The Telegram surface's names, defined once here."""

from __future__ import annotations

__all__ = ["SURFACE", "TELEGRAM"]

SURFACE = "telegram"
"""This surface's name in its conversations' keys (`ThreadKey.surface`) and in the store."""
TELEGRAM = f"surface:{SURFACE}"
"""The name `TelegramSurface` registers under."""
