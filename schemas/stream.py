"""The web event stream: what travels over Piano's WebSocket (``/stream``), both ways.

Every frame the server sends is an `Envelope` (JSON text frame)::

    {"version": 1, "seq": 42, "ts": 1767000000.5, "type": "item.delta", "thread_id": "t1",
     "data": {"type": "item.delta", "thread_id": "t1", "item_id": "m1", "stream": "text", ...}}

- `data` is one of the `schemas.events` thread events, or a stream payload (`Welcome`,
  `Snapshot`, `Resumed`, `Dashboard`, `Accepted`, `Ack`, `StreamError`); `type` repeats
  ``data.type`` so a client can dispatch without looking inside.
- `seq` numbers the thread events of one stream (one server run, named by `Welcome.stream`):
  1, 2, 3... in the order the server received them. A client subscribed to some threads sees
  an increasing subsequence. Frames that are not thread events (welcome, snapshot, dashboard,
  acks, errors) are not replayable and carry ``seq = 0``.
- A client that reconnects sends `Resume` with the stream name and the last `seq` it handled:
  the server replays what it missed from its buffer and says `Resumed`, or, when those events
  have left the buffer (or the server restarted), sends a `Snapshot` of the threads' state
  instead, whose `seq` is where the live events continue from.

The client sends the `ClientFrame`s below, tagged on ``"type"``; unknown fields are refused.
Errors come back as `StreamError` with a stable `code` (`ErrorCode`); a fatal one is followed by
the server closing the socket with the close code in `CLOSE_CODES` and the message as reason.
The full reference, with the HTTP API and the access model, is docs/web.md.
"""

from __future__ import annotations

from typing import Final, Literal, TypeAlias

import msgspec

from schemas.alerts import Alert
from schemas.events import ApprovalRequested, Decision, Item, Outcome, ThreadEvent

__all__ = [
    "ALL_THREADS",
    "CLOSE_CODES",
    "STREAM_VERSION",
    "Accepted",
    "Ack",
    "Activity",
    "ActorNode",
    "Alerted",
    "Auth",
    "ClientFrame",
    "Dashboard",
    "Decide",
    "Envelope",
    "ErrorCode",
    "ErrorEntry",
    "InteractionState",
    "Interrupt",
    "Payload",
    "Resume",
    "Resumed",
    "SendMessage",
    "Snapshot",
    "StreamError",
    "StreamStats",
    "Subscribe",
    "ThreadState",
    "ThreadSummary",
    "Unsubscribe",
    "WatchDashboard",
    "Welcome",
]

STREAM_VERSION: Final = 1
"""Bumped on any change a version-1 client could not read."""

ALL_THREADS: Final = "*"
"""`Subscribe.thread_id` for every thread."""

ErrorCode: TypeAlias = Literal[
    "unauthorized",
    "token_expired",
    "auth_timeout",
    "bad_json",
    "bad_frame",
    "unknown_type",
    "frame_too_large",
    "too_slow",
    "not_found",
    "refused",
    "unavailable",
    "internal",
    "shutting_down",
    "dropped",
]

CLOSE_CODES: Final[dict[str, int]] = {
    "unauthorized": 4001,
    "token_expired": 4002,
    "auth_timeout": 4003,
    "too_slow": 4008,
    "frame_too_large": 1009,
    "shutting_down": 1001,
    "dropped": 1012,
    "internal": 1011,
}
"""WebSocket close code for each fatal error code (others never close the socket)."""


# -- client -> server -----------------------------------------------------------------------------


class _Frame(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag_field="type"
):
    ref: str | None = None
    """Echoed in the `Ack`, `Accepted` or `StreamError` answering this frame."""


class Auth(_Frame, frozen=True, tag="auth"):
    """The first frame when the upgrade request had no ``Authorization: Bearer`` header."""

    token: str


class Subscribe(_Frame, frozen=True, tag="subscribe"):
    """Receive a thread's events (``"*"``: every thread), after a `Snapshot` of its state
    unless `snapshot` is false (a reconnecting client sends `Resume` instead)."""

    thread_id: str = ALL_THREADS
    snapshot: bool = True


class Unsubscribe(_Frame, frozen=True, tag="unsubscribe"):
    thread_id: str = ALL_THREADS


class Resume(_Frame, frozen=True, tag="resume"):
    """Replay the subscribed threads' events after `last_seq` of `stream`."""

    stream: str
    last_seq: int


class WatchDashboard(_Frame, frozen=True, tag="dashboard"):
    """Receive a `Dashboard` now and then periodically (``on: false`` stops it)."""

    on: bool = True


class SendMessage(_Frame, frozen=True, tag="message"):
    """A user message to the web conversation `conversation` with `agent` (default agent),
    or, with `thread_id`, to that thread's conversation whatever surface opened it."""

    text: str
    conversation: str = "default"
    agent: str | None = None
    user: str | None = None
    thread_id: str | None = None


class Decide(_Frame, frozen=True, tag="decide"):
    thread_id: str
    approval_id: str
    decision: Decision


class Interrupt(_Frame, frozen=True, tag="interrupt"):
    thread_id: str


ClientFrame: TypeAlias = (
    Auth | Subscribe | Unsubscribe | Resume | WatchDashboard | SendMessage | Decide | Interrupt
)


# -- server -> client -----------------------------------------------------------------------------


class _Payload(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    pass


class Welcome(_Payload, frozen=True, tag="welcome"):
    """Sent once authenticated: the stream's name and the seq of its latest event."""

    stream: str
    seq: int
    version: int = STREAM_VERSION
    user: str | None = None


class InteractionState(msgspec.Struct, kw_only=True):
    """One interaction as the server last saw it (items hold their text so far)."""

    id: str
    text: str
    user: str | None = None
    agent: str | None = None
    status: Literal["running", "completed", "failed", "interrupted"] = "running"
    turn_id: str | None = None
    response: str = ""
    error: str | None = None
    items: list[Item] = msgspec.field(default_factory=list)
    started_at: float | None = None
    """When its turn started (the event's `at`), for the progress line's elapsed time."""
    completed_at: float | None = None


class ThreadState(msgspec.Struct, kw_only=True):
    thread_id: str
    surface: str | None = None
    conversation: str | None = None
    agent: str | None = None
    running: bool = False
    updated_at: float = 0.0
    interactions: list[InteractionState] = msgspec.field(default_factory=list)
    approvals: list[ApprovalRequested] = msgspec.field(default_factory=list)


class Snapshot(_Payload, frozen=True, tag="snapshot"):
    """The subscribed threads' state; live events continue after `seq`."""

    stream: str
    seq: int
    reason: Literal["subscribed", "gap", "new_stream"]
    threads: list[ThreadState]


class Resumed(_Payload, frozen=True, tag="resumed"):
    """The replay after `Resume` is complete: `replayed` events with seq in (after, seq]."""

    after: int
    seq: int
    replayed: int


class Accepted(_Payload, frozen=True, tag="accepted"):
    """A `SendMessage` reached its thread: "started", "queued", "steered" or "interrupting"."""

    thread_id: str
    interaction_id: str
    outcome: Outcome
    ref: str | None = None


class Ack(_Payload, frozen=True, tag="ack"):
    """A frame other than a message was applied."""

    of: str
    ref: str | None = None


class StreamError(_Payload, frozen=True, tag="error"):
    code: ErrorCode
    message: str
    fatal: bool = False
    ref: str | None = None


class ActorNode(msgspec.Struct, kw_only=True):
    """One child in the supervision tree, with `actors.info` facts and its `describe()`."""

    child_id: str
    actor_id: int | None
    name: str | None
    actor_class: str
    kind: Literal["worker", "supervisor"]
    restart: str
    status: str
    mailbox_length: int = 0
    messages_handled: int = 0
    restarts: int = 0
    description: str | None = None
    children: list[ActorNode] = msgspec.field(default_factory=list)
    rate: float = 0.0
    """Messages handled per second over the last ten seconds."""


class ThreadSummary(msgspec.Struct, kw_only=True):
    thread_id: str
    surface: str
    conversation: str
    agent: str
    actor_id: int
    status: str
    mailbox_length: int
    description: str | None = None


class StreamStats(msgspec.Struct, kw_only=True):
    """This stream: events so far, what the replay buffer holds, clients and drops."""

    stream: str
    seq: int
    oldest_seq: int
    buffered: int
    clients: int
    dropped: int
    events_per_second: float


class ErrorEntry(msgspec.Struct, kw_only=True):
    """A logged warning or error; in a `Dashboard`, one group of repeats: `ts` is the latest,
    `first_ts` the first, `count` how many, `line` one clean line saying what happened."""

    ts: float
    level: str
    event: str
    detail: str = ""
    line: str = ""
    count: int = 1
    first_ts: float = 0.0


class Activity(msgspec.Struct, kw_only=True):
    """What the conversations are doing, from the events the web surface forwards."""

    turns_running: int = 0
    tokens_total: int = 0
    """Tokens used since the surface started (sum of `TokenUsage.total_tokens`)."""
    events_total: int = 0
    threads: dict[str, int] = msgspec.field(default_factory=dict)
    """Events per conversation (``surface:conversation``) since the previous dashboard."""


class Dashboard(_Payload, frozen=True, tag="dashboard"):
    """The runtime at one moment (Piano's observer)."""

    ts: float
    tree: list[ActorNode]
    system: dict[str, int]
    stream: StreamStats
    codex: list[ActorNode]
    threads: list[ThreadSummary]
    errors: list[ErrorEntry]
    pipeline: dict[str, float] = msgspec.field(default_factory=dict)
    activity: Activity = msgspec.field(default_factory=Activity)


class Alerted(_Payload, frozen=True, tag="alert"):
    """An incident told to the owner (`schemas.alerts.Alert`), sent to every client."""

    alert: Alert


Payload: TypeAlias = (
    ThreadEvent | Welcome | Snapshot | Resumed | Dashboard | Accepted | Ack | StreamError | Alerted
)


class Envelope(msgspec.Struct, kw_only=True):
    """Every server frame; see the module documentation."""

    version: int = STREAM_VERSION
    seq: int = 0
    ts: float
    type: str
    thread_id: str | None = None
    data: Payload
