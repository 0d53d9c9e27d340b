"""`ConfigError`, the one exception a configuration problem raises (shared by every section)."""

from __future__ import annotations

__all__ = ["ConfigError"]


class ConfigError(Exception):
    """The configuration cannot be used; the message names the file, key and reason."""
