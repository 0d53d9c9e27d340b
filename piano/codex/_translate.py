"""Turn Codex's notifications for one thread into Piano's thread events (`schemas.events`).

One `Translator` per conversation thread, fed in stdout order. It is where Codex's quirks are
absorbed (see shared/notes/codex-app-server.md §6 and §9), so that everything downstream can rely
on the guarantees stated in `schemas.events`:

- items Codex never completes (after an interrupt, a steer, or a retried sampling) are closed
  when the turn completes, as ``interrupted`` (or ``failed`` when the turn failed);
- an item Codex starts again under the same id is announced again (consumers reset its text),
  and its `ItemCompleted` carries the final text, which replaces whatever was streamed;
- the turn's response is the text of its last completed agent message;
- ``error`` notifications become `Notice`s: ``retrying`` while Codex retries, an error when not;
- published events are never changed afterwards: an item is closed by publishing a copy
  (`schemas.events.Item` is frozen), so a journal row written later still records what was
  true when the event was published;
- no event carries more than `EVENT_TEXT_LIMIT` characters of streamed or tool text (a delta,
  a command's output, a reasoning summary): the middle of a longer text is cut, with a note
  saying how much. The final answer is the exception: the last agent message's
  `ItemCompleted` and the turn's `TurnCompleted.response` keep the whole text, as that is what
  the user asked for (docs/codex.md);
- every turn ends with one log line ``codex.turn``: thread, agent, status, duration, tokens.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import msgspec
import structlog

from schemas import events as ev
from schemas.codex import (
    AgentMessageDeltaNotification,
    AgentMessageItem,
    CommandExecutionItem,
    CommandExecutionOutputDeltaNotification,
    DynamicToolCallItem,
    ErrorNotification,
    FileChangeItem,
    ItemCompletedNotification,
    ItemStartedNotification,
    McpToolCallItem,
    PlanItem,
    ReasoningItem,
    TextInput,
    ThreadItem,
    ThreadTokenUsageUpdatedNotification,
    TurnCompletedNotification,
    TurnStartedNotification,
    UserMessageItem,
    WarningNotification,
    WebSearchItem,
)

__all__ = ["EVENT_TEXT_LIMIT", "PROVIDER_ERRORS", "Translator", "cap_text", "normalise_item"]

log = structlog.get_logger(__name__)

EVENT_TEXT_LIMIT = 64 * 1024
"""The most characters of one streamed or tool text an event carries (see the module docs)."""

PROVIDER_ERRORS = frozenset(
    {
        "httpConnectionFailed",
        "responseStreamConnectionFailed",
        "responseStreamDisconnected",
        "internalServerError",
        "serverOverloaded",
        "badRequest",
        "unauthorized",
    }
)
"""`codexErrorInfo` kinds that mean the provider could not be reached or answered with an
error; Codex's own text for them does not say which address or what the provider said."""


_TOKENS = (
    "input_tokens",
    "cached_input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "total_tokens",
)


def cap_text(text: str, limit: int = EVENT_TEXT_LIMIT) -> str:
    """`text`, or its beginning and end with a note of how many characters were cut."""
    if len(text) <= limit:
        return text
    half = limit // 2
    cut = len(text) - 2 * half
    return f"{text[:half]}\n[… {cut} characters not stored …]\n{text[-half:]}"


def _capped(item: ev.Item) -> ev.Item:
    text, output = cap_text(item.text), cap_text(item.output)
    if text is item.text and output is item.output:
        return item
    return msgspec.structs.replace(item, text=text, output=output)


_STATUS: dict[str, ev.ItemStatus] = {
    "inProgress": "in_progress",
    "completed": "completed",
    "failed": "failed",
    "declined": "declined",
}


def normalise_item(item: ThreadItem) -> ev.Item:
    """A Codex thread item as a backend-neutral `schemas.events.Item`."""
    match item:
        case UserMessageItem(id=item_id, content=content):
            text = "\n".join(part.text for part in content if isinstance(part, TextInput))
            return ev.Item(id=item_id, kind="user_message", text=text, status="completed")
        case AgentMessageItem(id=item_id, text=text):
            return ev.Item(id=item_id, kind="agent_message", text=text)
        case ReasoningItem(id=item_id, summary=summary, content=content):
            return ev.Item(id=item_id, kind="reasoning", text="\n".join(summary or content))
        case PlanItem(id=item_id, text=text):
            return ev.Item(id=item_id, kind="plan", text=text)
        case CommandExecutionItem() as cmd:
            return ev.Item(
                id=cmd.id,
                kind="command",
                status=_STATUS.get(cmd.status, "in_progress"),
                command=cmd.command,
                cwd=cmd.cwd,
                output=cmd.aggregated_output or "",
                exit_code=cmd.exit_code,
            )
        case FileChangeItem(id=item_id, status=status, changes=changes):
            return ev.Item(
                id=item_id,
                kind="file_change",
                status=_STATUS.get(status, "in_progress"),
                changes=[
                    ev.FileChange(path=c.path, kind=type(c.kind).__name__[15:].lower(), diff=c.diff)
                    for c in changes
                ],
            )
        case McpToolCallItem() as call:
            output = ""
            if call.result is not None:
                output = "\n".join(
                    str(part.get("text", part)) if isinstance(part, dict) else str(part)
                    for part in call.result.content
                )
            elif call.error is not None:
                output = call.error.message
            return ev.Item(
                id=call.id,
                kind="tool_call",
                status=_STATUS.get(call.status, "in_progress"),
                tool=f"{call.server}.{call.tool}",
                arguments=json.dumps(call.arguments) if call.arguments is not None else None,
                output=output,
            )
        case DynamicToolCallItem() as call:
            return ev.Item(
                id=call.id,
                kind="tool_call",
                status=_STATUS.get(call.status, "in_progress"),
                tool=call.tool,
                arguments=json.dumps(call.arguments) if call.arguments is not None else None,
            )
        case WebSearchItem(id=item_id, query=query):
            return ev.Item(id=item_id, kind="web_search", text=query)
    item_id = getattr(item, "id", None) or f"unknown-{id(item)}"
    return ev.Item(id=item_id, kind="other", text=getattr(item, "type", None) or "")


class Translator:
    """Per-thread translation state; `feed` returns the events one notification implies."""

    def __init__(
        self, thread_id: str, clock: Callable[[], float] = time.time, agent: str = ""
    ) -> None:
        self.thread_id = thread_id
        self.agent = agent
        self.turn_id: str | None = None
        self.interaction_id: str | None = None
        self.open: dict[str, ev.Item] = {}
        self.response = ""
        self.failure: str | dict[str, Any] | None = None
        """The `codexErrorInfo` of the last turn that failed with one (else None)."""
        self.model: str | None = None
        """The model the current turn runs with, named in its `TokenUsage` (for prices)."""
        self._clock = clock
        self._at = 0.0
        self._began = 0.0
        self._tokens = dict.fromkeys(_TOKENS, 0)

    def begin(self, interaction_id: str, model: str | None = None) -> None:
        """A new interaction's turn is about to start (before Codex's `turn/started`), with
        `model`."""
        self.interaction_id = interaction_id
        self.model = model
        self.response = ""
        self.failure = None
        self._began = self._clock()
        self._tokens = dict.fromkeys(_TOKENS, 0)

    def provider_failed(self) -> bool:
        """Whether the last turn failed because of its model provider (unreachable, or an
        error answer), so the provider's own account of it is worth adding."""
        info = self.failure
        kind = next(iter(info), None) if isinstance(info, dict) else info
        return kind in PROVIDER_ERRORS

    def _meta(self, turn_id: str | None) -> dict[str, Any]:
        return {
            "thread_id": self.thread_id,
            "turn_id": turn_id or self.turn_id,
            "interaction_id": self.interaction_id,
            "at": self._at or self._clock(),
        }

    def feed(self, method: str, params: Any, at: float = 0.0) -> list[ev.ThreadEvent]:
        """The events `params` implies; they carry `at` (when Piano received the
        notification) or, when it is 0, the time of translation."""
        self._at = at
        try:
            return self._feed(method, params)
        finally:
            self._at = 0.0

    def _feed(self, method: str, params: Any) -> list[ev.ThreadEvent]:
        match params:
            case TurnStartedNotification(turn=turn):
                self.turn_id = turn.id
                return []
            case ItemStartedNotification(turn_id=turn_id, item=item):
                started = _capped(normalise_item(item))
                self.open[started.id] = started
                return [ev.ItemStarted(item=started, **self._meta(turn_id))]
            case AgentMessageDeltaNotification(turn_id=turn_id, item_id=item_id, delta=delta):
                text = cap_text(delta)
                return [
                    ev.ItemDelta(item_id=item_id, stream="text", delta=text, **self._meta(turn_id))
                ]
            case CommandExecutionOutputDeltaNotification(turn_id=turn_id, item_id=item_id, delta=d):
                output = cap_text(d)
                return [
                    ev.ItemDelta(
                        item_id=item_id, stream="output", delta=output, **self._meta(turn_id)
                    )
                ]
            case ItemCompletedNotification(turn_id=turn_id, item=item):
                done = normalise_item(item)
                if done.status == "in_progress":
                    done = msgspec.structs.replace(done, status="completed")
                if done.kind == "agent_message":
                    self.response = done.text
                else:
                    done = _capped(done)
                announce = (
                    []
                    if done.id in self.open
                    else [ev.ItemStarted(item=done, **self._meta(turn_id))]
                )
                self.open.pop(done.id, None)
                return [*announce, ev.ItemCompleted(item=done, **self._meta(turn_id))]
            case ThreadTokenUsageUpdatedNotification(turn_id=turn_id, token_usage=usage):
                last = usage.last
                used = ev.TokenUsage(
                    input_tokens=last.input_tokens,
                    cached_input_tokens=last.cached_input_tokens,
                    output_tokens=last.output_tokens,
                    reasoning_tokens=last.reasoning_output_tokens,
                    total_tokens=last.total_tokens,
                    model=self.model,
                    **self._meta(turn_id),
                )
                for name in _TOKENS:
                    self._tokens[name] += getattr(used, name)
                return [used]
            case ErrorNotification(turn_id=turn_id, error=error, will_retry=retrying):
                return [
                    ev.Notice(
                        level="warning" if retrying else "error",
                        message=error.message,
                        retrying=retrying,
                        **self._meta(turn_id),
                    )
                ]
            case WarningNotification(message=message):
                return [ev.Notice(level="warning", message=message, **self._meta(None))]
            case TurnCompletedNotification(turn=turn):
                failure = turn.error.message if turn.error is not None else None
                if turn.status == "failed" and turn.error is not None:
                    self.failure = turn.error.codex_error_info
                status = (
                    turn.status
                    if turn.status in ("completed", "failed", "interrupted")
                    else "failed"
                )
                return self.complete(status, failure, turn.id)
        return []

    def complete(
        self, status: ev.TurnStatus, error: str | None, turn_id: str | None = None
    ) -> list[ev.ThreadEvent]:
        """End the turn: close every open item, then `TurnCompleted`. Also used when the turn
        ends without Codex saying so (the codex process died)."""
        meta = self._meta(turn_id)
        closing: ev.ItemStatus = "failed" if status == "failed" else "interrupted"
        out: list[ev.ThreadEvent] = []
        for item in self.open.values():
            if item.status == "in_progress":
                item = msgspec.structs.replace(item, status=closing)
            out.append(ev.ItemCompleted(item=item, **meta))
        self.open.clear()
        out.append(ev.TurnCompleted(status=status, response=self.response, error=error, **meta))
        self._log_turn(status, error, turn_id or self.turn_id)
        self.turn_id = None
        return out

    def _log_turn(self, status: ev.TurnStatus, error: str | None, turn_id: str | None) -> None:
        duration = round(self._clock() - self._began, 3) if self._began else None
        (log.info if status == "completed" else log.warning)(
            "codex.turn",
            thread=self.thread_id,
            agent=self.agent,
            turn=turn_id,
            status=status,
            duration_s=duration,
            error=error,
            **self._tokens,
        )
