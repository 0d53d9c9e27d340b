"""The messages a conversation's actor answers, and the answer to `GetStatus`.

Every backend's conversation actor (`piano.agents.Conversation`) is called with these and
nothing else by the rest of Piano; the typed client functions in `piano.threads`
(`post_message`, `decide`, `interrupt`, `conversation_status`) send them, so a caller never
builds a message by hand and mypy sees what each call answers. They are frozen: a message
is a value, never changed after it is sent.

This module imports nothing of Piano's but its schemas and the store's records, so any backend
may use it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from piano.store import ConversationSettings
from schemas.events import Decision, Interaction

__all__ = [
    "Configure",
    "ConversationStatus",
    "Decide",
    "GetStatus",
    "Interrupt",
    "ListModels",
    "ModelChoice",
    "PostMessage",
]


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
class ListModels:
    """Ask which models the agent's provider offers. Answers a tuple of `ModelChoice`, or
    fails with `ModelsUnavailable` (a sentence) when the provider cannot say now."""


@dataclass(frozen=True, slots=True)
class ModelChoice:
    """One model a conversation may choose, with the reasoning efforts it accepts (empty: the
    provider does not say)."""

    id: str
    description: str = ""
    efforts: tuple[str, ...] = ()
    default_effort: str | None = None
    default: bool = False
    """Whether the provider names it its default model."""


@dataclass(frozen=True, slots=True)
class Configure:
    """Make `settings` the conversation's model and effort, kept in the store (they survive
    restarts) and used from its next turn. Answers the `ConversationStatus`, or fails with
    `NotSaved` when the store refused them."""

    settings: ConversationSettings


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
    model: str | None = None
    """The model its turns use: the one chosen with ``/model``, else the agent's."""
    effort: str | None = None
    """The reasoning effort chosen with ``/effort`` (None: the model's default)."""
    settings: ConversationSettings = field(default_factory=ConversationSettings)
    """What the conversation chose itself (None for either: the agent's)."""
