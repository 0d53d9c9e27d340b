"""``/whoami``: what Piano knows of the person typing, to configure roles and limits by."""

from __future__ import annotations

from piano.commands import Invocation


async def whoami(invocation: Invocation, argument: str) -> str:
    """Who typed this, on which surface, in which conversation and thread, and as whom."""
    key = invocation.key
    lines = [
        f"user: {invocation.user or 'unknown'}",
        f"role: {'owner' if invocation.owner else 'user'}",
        f"surface: {key.surface}",
        f"conversation: {key.conversation}",
        f"agent: {key.agent}",
    ]
    if invocation.thread_id is not None:
        lines.append(f"thread: {invocation.thread_id}")
    return "\n".join(lines)
