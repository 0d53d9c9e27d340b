"""The messages a conversation's actor answers, and the answer to `GetStatus`.

Every backend's conversation actor (`piano.agents.Conversation`) is called with these and
nothing else by the rest of Piano; the typed client functions in `piano.threads`
(`post_message`, `decide`, `interrupt`, `conversation_status`) send them, so a caller never
builds a message by hand and mypy sees what each call answers. They are frozen: a message
is a value, never changed after it is sent.

This module imports nothing of Piano's but its schemas, so any backend may use it.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.events import Decision, Interaction

__all__ = ["ConversationStatus", "Decide", "GetStatus", "Interrupt", "PostMessage"]


@dataclass(frozen=True, slots=True)
class PostMessage:
    """A user's message, to record and run. Answers an `Outcome` ("started", "queued",
    "steered", "interrupting"), or fails with `NotSaved` when the store refused it."""

    interaction: Interaction


@dataclass(frozen=True, slots=True)
class Interrupt:
    """Interrupt the running turn, by the user. Answers whether one is being interrupted."""


@dataclass(frozen=True, slots=True)
class Decide:
    """A user's `decision` on the open approval `approval_id`, made by `by` (shown with the
    outcome). Answers whether that approval was still open."""

    approval_id: str
    decision: Decision
    by: str | None = None


@dataclass(frozen=True, slots=True)
class GetStatus:
    """Ask for the conversation's `ConversationStatus`."""


@dataclass(frozen=True, slots=True)
class ConversationStatus:
    """A conversation's state when it was asked."""

    thread_id: str
    """Piano's thread id."""
    agent: str
    """The agent answering now (an OpenAI agent may have handed the conversation over)."""
    backend: str
    """The backend running its turns: ``"codex"`` or ``"openai"``."""
    running: bool
    """Whether a turn is running."""
    queued: int
    """Messages waiting for the running turn to end."""
    approvals: tuple[str, ...]
    """The ids of the open approvals, sorted."""
    codex_thread_id: str | None = None
    """Codex's own id of the thread, once Codex has started it (None for other backends)."""
