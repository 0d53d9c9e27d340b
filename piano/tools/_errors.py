"""Errors a tool reports to its caller: what went wrong, in words an agent can act on."""

from __future__ import annotations

__all__ = ["SessionLimitReached", "ToolError", "ToolUnavailable"]


class ToolError(Exception):
    """A tool action failed; the message says why (shown to the agent as the tool's result)."""


class ToolUnavailable(ToolError):
    """The tool is not running (its actor is down or restarting); try again shortly."""


class SessionLimitReached(ToolError):
    """Every session slot of a tool is taken; a session closes after its idle timeout."""
