"""What the store's queries return: plain frozen structs, one per table row (JSON decoded)."""

from __future__ import annotations

import msgspec

from schemas.events import FileChange, ThreadEvent

__all__ = [
    "AgentRecord",
    "ApprovalRecord",
    "ConversationSettings",
    "InteractionRecord",
    "ItemRecord",
    "JournalEntry",
    "SurfaceRecord",
    "ThreadRecord",
    "TurnCount",
    "UsageRow",
    "UsageTotals",
    "UserRecord",
]


class SurfaceRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    kind: str
    name: str
    config: dict[str, object]
    created_at: float
    updated_at: float


class UserRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    surface: str
    external_id: str
    display_name: str
    role: str
    created_at: float
    updated_at: float


class AgentRecord(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    backend: str
    model: str
    config: dict[str, object]
    created_at: float
    updated_at: float


class ThreadRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    surface: str
    conversation: str
    agent: str
    codex_thread_id: str | None
    status: str
    created_at: float
    updated_at: float


class InteractionRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    thread_id: str
    user: str | None
    agent: str | None
    text: str
    attachments: list[str]
    status: str
    response: str
    error: str | None
    turn_id: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None


class ItemRecord(msgspec.Struct, frozen=True, kw_only=True):
    thread_id: str
    id: str
    interaction_id: str | None
    turn_id: str | None
    seq: int
    kind: str
    status: str
    text: str
    command: str | None
    cwd: str | None
    output: str
    exit_code: int | None
    changes: list[FileChange]
    tool: str | None
    arguments: str | None
    agent: str | None
    started_at: float
    completed_at: float | None


class ApprovalRecord(msgspec.Struct, frozen=True, kw_only=True):
    thread_id: str
    id: str
    item_id: str
    interaction_id: str | None
    turn_id: str | None
    kind: str
    command: str | None
    cwd: str | None
    reason: str | None
    changes: list[FileChange]
    requested_at: float
    expires_at: float | None
    decision: str | None
    decided_by: str | None
    decided_at: float | None
    tool: str | None = None
    arguments: str | None = None


class ConversationSettings(msgspec.Struct, frozen=True, kw_only=True):
    """The model and reasoning effort a conversation chose (``/model``, ``/effort``); None
    for either means the agent's own (its ``model``, the model's default effort)."""

    model: str | None = None
    effort: str | None = None


class UsageTotals(msgspec.Struct, frozen=True, kw_only=True):
    """Token counts summed over `reports` usage reports (one per model response)."""

    reports: int = 0
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    total_tokens: int = 0


class UsageRow(UsageTotals, frozen=True, kw_only=True):
    """Tokens one user used with one agent and one model (None: not known), summed."""

    user: str | None
    agent: str
    model: str | None


class TurnCount(msgspec.Struct, frozen=True, kw_only=True):
    """How many turns one user had with one agent (messages that started a turn)."""

    user: str | None
    agent: str
    turns: int


class JournalEntry(msgspec.Struct, frozen=True):
    """One journaled event and its per-thread sequence number (1, 2, 3, ... per thread)."""

    seq: int
    event: ThreadEvent
