"""The web surface's names, defined once here."""

from __future__ import annotations

__all__ = ["SURFACE", "WEB"]

SURFACE = "web"
"""This surface's name in its conversations' keys (`ThreadKey.surface`) and in the store."""
WEB = f"surface:{SURFACE}"
"""The name the web surface registers under."""
