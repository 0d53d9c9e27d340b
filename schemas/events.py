"""Piano's thread events: what flows from an agent backend through the pipeline to the store and
the surfaces.

Every agent backend (the Codex client, later the OpenAI backend) turns what its agent does into
these events, keyed by Piano's thread id; the pipeline partitions by that key, so one thread's
events stay in order while threads run concurrently. The store persists them, surfaces render
them, and the web event stream wraps them in a versioned envelope. They are msgspec structs
tagged on ``"type"`` so they cross process and network boundaries as JSON unchanged.

An interaction is one user message and the agent's whole response to it (one turn, or several
when a message is queued behind a running turn). Items are the steps of a turn, normalised
across backends: `Item.kind` is one of the `ItemKind` values whatever the backend called it.

Guarantees the producers of events keep:
- per thread, events are emitted in the order things happened;
- every `ItemStarted` is followed by exactly one `ItemCompleted` for the same item id before the
  `TurnCompleted` of its turn (a backend closes dangling items itself when a turn ends);
- `ItemCompleted.item` carries the item's final content: text is *replaced*, never appended,
  so a retried item that was streamed twice ends with the right text;
- every `ApprovalRequested` is followed by one `ApprovalResolved` (decided, expired or withdrawn);
- interaction ids are unique across all threads; item and approval ids are unique within their
  thread; every event has `at` set.
"""

from __future__ import annotations

from typing import Literal, TypeAlias

import msgspec

__all__ = [
    "ApprovalDecision",
    "ApprovalRequested",
    "ApprovalResolved",
    "Decision",
    "Event",
    "FileChange",
    "Interaction",
    "Item",
    "ItemCompleted",
    "ItemDelta",
    "ItemKind",
    "ItemStarted",
    "Notice",
    "Outcome",
    "ThreadEvent",
    "TokenUsage",
    "TurnCompleted",
    "TurnStarted",
    "decode_event",
    "encode_event",
]

ItemKind: TypeAlias = Literal[
    "user_message",
    "agent_message",
    "reasoning",
    "command",
    "file_change",
    "plan",
    "tool_call",
    "web_search",
    "handoff",
    "other",
]
ItemStatus: TypeAlias = Literal["in_progress", "completed", "failed", "declined", "interrupted"]
TurnStatus: TypeAlias = Literal["completed", "failed", "interrupted"]
Decision: TypeAlias = Literal["accept", "decline", "cancel"]
"""What a user answers an approval: run it, do not run it (the turn goes on), or do not run it
and end the turn. Every surface's decide frame and the conversation actor take these three."""
ApprovalDecision: TypeAlias = Decision | Literal["expired", "withdrawn"]
"""How an approval ended: a user's `Decision`, or none in time (``expired``: declined) or none
before its turn ended (``withdrawn``)."""
Outcome: TypeAlias = Literal["started", "queued", "steered", "interrupting"]
"""What became of a user message its conversation accepted: it started a turn, waits behind the
running one, was added to the running one, or is interrupting the running one to run next (the
agent's ``busy`` setting decides)."""


class FileChange(msgspec.Struct, frozen=True, kw_only=True):
    path: str
    kind: str
    diff: str = ""


class Item(msgspec.Struct, frozen=True, kw_only=True):
    """One step of a turn. Fields that do not apply to its kind stay at their defaults.
    Frozen, as every event: a published event never changes (make a changed copy with
    `msgspec.structs.replace`)."""

    id: str
    kind: ItemKind
    status: ItemStatus = "in_progress"
    text: str = ""
    command: str | None = None
    cwd: str | None = None
    output: str = ""
    exit_code: int | None = None
    changes: list[FileChange] = msgspec.field(default_factory=list)
    tool: str | None = None
    arguments: str | None = None
    agent: str | None = None


class Interaction(msgspec.Struct, frozen=True, kw_only=True):
    """The user message that starts (or steers) a turn."""

    id: str
    text: str
    user: str | None = None
    attachments: list[str] = msgspec.field(default_factory=list)


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """Base of every thread event. `at` is when Piano received what caused it (for a Codex
    notification, when its line was read from stdout), in seconds since the epoch."""

    thread_id: str
    turn_id: str | None = None
    interaction_id: str | None = None
    at: float = 0.0


class TurnStarted(Event, frozen=True, tag="turn.started"):
    interaction: Interaction
    agent: str


class ItemStarted(Event, frozen=True, tag="item.started"):
    item: Item


class ItemDelta(Event, frozen=True, tag="item.delta"):
    """Streamed text (agent message, reasoning) or command output, to append to the item."""

    item_id: str
    stream: Literal["text", "output", "reasoning"]
    delta: str


class ItemCompleted(Event, frozen=True, tag="item.completed"):
    item: Item


class TurnCompleted(Event, frozen=True, tag="turn.completed"):
    status: TurnStatus
    response: str = ""
    error: str | None = None


class ApprovalRequested(Event, frozen=True, tag="approval.requested"):
    """The agent asks to run a command, apply file changes, or call a tool (`tool` named as
    ``server.tool``, its `arguments` as JSON text)."""

    approval_id: str
    item_id: str
    kind: Literal["command", "file_change", "tool_call"]
    command: str | None = None
    cwd: str | None = None
    reason: str | None = None
    changes: list[FileChange] = msgspec.field(default_factory=list)
    expires_at: float | None = None
    tool: str | None = None
    arguments: str | None = None


class ApprovalResolved(Event, frozen=True, tag="approval.resolved"):
    approval_id: str
    decision: ApprovalDecision
    by: str | None = None


class TokenUsage(Event, frozen=True, tag="usage"):
    """Tokens used by one model response (not a running total): sum them for a turn."""

    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    total_tokens: int = 0
    model: str | None = None
    """The model that used them (for its price), when the backend knows it."""


class Notice(Event, frozen=True, tag="notice"):
    """Something the user should see that is not an item: retrying, a warning, an error."""

    level: Literal["info", "warning", "error"]
    message: str
    retrying: bool = False


ThreadEvent: TypeAlias = (
    TurnStarted
    | ItemStarted
    | ItemDelta
    | ItemCompleted
    | TurnCompleted
    | ApprovalRequested
    | ApprovalResolved
    | TokenUsage
    | Notice
)

_encoder = msgspec.json.Encoder()
_decoder: msgspec.json.Decoder[ThreadEvent] = msgspec.json.Decoder(ThreadEvent)


def encode_event(event: ThreadEvent) -> bytes:
    return _encoder.encode(event)


def decode_event(data: bytes | str) -> ThreadEvent:
    """Decode one event; raises `msgspec.ValidationError` naming the bad field."""
    return _decoder.decode(data)
