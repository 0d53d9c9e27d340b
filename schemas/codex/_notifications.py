"""Server → client notifications Piano consumes, keyed by method in `NOTIFICATIONS`.

A method missing from `NOTIFICATIONS` is still delivered, with its params as a plain dict.
Every struct here except `ThreadStartedNotification` (use `thread.id`) and the account's
`LoginCompletedNotification` (it belongs to no thread) has a `thread_id`.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ._account import LoginCompletedNotification
from ._items import ThreadItem
from ._threads import Thread, ThreadStatus, Turn, TurnError


class _Note(msgspec.Struct, rename="camel"):
    pass


class ThreadStartedNotification(_Note):
    thread: Thread


class ThreadStatusChangedNotification(_Note):
    thread_id: str
    status: ThreadStatus


class TurnStartedNotification(_Note):
    thread_id: str
    turn: Turn


class TurnCompletedNotification(_Note):
    thread_id: str
    turn: Turn


class ItemStartedNotification(_Note):
    thread_id: str
    turn_id: str
    item: ThreadItem
    started_at_ms: int | None = None


class ItemCompletedNotification(_Note):
    thread_id: str
    turn_id: str
    item: ThreadItem
    completed_at_ms: int | None = None


class AgentMessageDeltaNotification(_Note):
    thread_id: str
    turn_id: str
    item_id: str
    delta: str


class CommandExecutionOutputDeltaNotification(_Note):
    thread_id: str
    turn_id: str
    item_id: str
    delta: str


class TurnDiffUpdatedNotification(_Note):
    thread_id: str
    turn_id: str
    diff: str


class TokenUsageBreakdown(_Note):
    total_tokens: int
    input_tokens: int
    cached_input_tokens: int = 0
    output_tokens: int = 0
    reasoning_output_tokens: int = 0


class ThreadTokenUsage(_Note):
    total: TokenUsageBreakdown
    last: TokenUsageBreakdown
    model_context_window: int | None = None


class ThreadTokenUsageUpdatedNotification(_Note):
    thread_id: str
    turn_id: str
    token_usage: ThreadTokenUsage


class ServerRequestResolvedNotification(_Note):
    thread_id: str
    request_id: int | str


class ErrorNotification(_Note):
    thread_id: str
    turn_id: str
    error: TurnError
    will_retry: bool


class WarningNotification(_Note):
    message: str
    thread_id: str | None = None


NOTIFICATIONS: dict[str, type[Any]] = {
    "thread/started": ThreadStartedNotification,
    "thread/status/changed": ThreadStatusChangedNotification,
    "turn/started": TurnStartedNotification,
    "turn/completed": TurnCompletedNotification,
    "item/started": ItemStartedNotification,
    "item/completed": ItemCompletedNotification,
    "item/agentMessage/delta": AgentMessageDeltaNotification,
    "item/commandExecution/outputDelta": CommandExecutionOutputDeltaNotification,
    "turn/diff/updated": TurnDiffUpdatedNotification,
    "thread/tokenUsage/updated": ThreadTokenUsageUpdatedNotification,
    "serverRequest/resolved": ServerRequestResolvedNotification,
    "error": ErrorNotification,
    "warning": WarningNotification,
    "account/login/completed": LoginCompletedNotification,  # no thread: the Codex client's
}
