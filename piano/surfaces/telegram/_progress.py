"""Progress of a turn in one Telegram message, edited as things happen, within Telegram's limits.

Two pure state machines, driven by the surface actor with the current time and timers (they
never sleep and never do I/O), so tests drive them with a fake clock:

- `TurnProgress` is what the status message says: one line per step with an emoji per kind
  (🤔 thinking, 💻 command, 📝 file edit, 🔧 tool, 🔎 search, ✍️ writing, ✅ done, ❌ failed),
  short previews of commands and their output, the last `max_steps` steps.
- `ChatPacer` decides when a status message of a chat may be edited: at most one edit in flight
  per chat, starts at least `interval` apart (Telegram allows about one edit per second per
  chat, fewer in groups), nothing before a `RetryAfter` has passed, and no edit whose text is
  what the message already shows. Changes in between are coalesced: the edit, when it is sent,
  renders the latest state, so the final edit always shows the final state.
"""

from __future__ import annotations

import html
from collections.abc import Hashable
from dataclasses import dataclass, field

from schemas import events as ev

__all__ = ["ChatPacer", "TurnProgress"]

KIND_EMOJI: dict[str, str] = {
    "reasoning": "🤔",
    "command": "💻",
    "file_change": "📝",
    "tool_call": "🔧",
    "web_search": "🔎",
    "agent_message": "✍️",
    "plan": "📋",
    "handoff": "🤝",
}
INFO = "\N{INFORMATION SOURCE}\N{VARIATION SELECTOR-16}"
STATUS_MARK: dict[str, str] = {
    "completed": "",
    "failed": " ❌",
    "declined": " 🚫",
    "interrupted": " ⏹",
}
HEADERS: dict[str, str] = {
    "running": "⏳ Working…",
    "completed": "✅ Done",
    "failed": "❌ Failed",
    "interrupted": "⏹ Interrupted",
}


def _preview(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _tail(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else "…" + flat[-(limit - 1) :]


@dataclass(slots=True)
class _Step:
    kind: str
    label: str = ""
    status: str = "in_progress"
    output: str = ""
    text_chars: int = 0


class TurnProgress:
    """The status message of one turn; see the module documentation."""

    def __init__(self, *, preview_chars: int = 160, max_steps: int = 8) -> None:
        self.preview_chars = preview_chars
        self.max_steps = max_steps
        self.steps: dict[str, _Step] = {}
        self.status = "running"
        self.error: str | None = None
        self.notice: str | None = None

    def item_started(self, item: ev.Item) -> None:
        if item.kind == "user_message":
            return
        self.steps[item.id] = self._step(item)

    def item_completed(self, item: ev.Item) -> None:
        if item.kind == "user_message":
            return
        self.steps[item.id] = self._step(item)

    def delta(self, event: ev.ItemDelta) -> None:
        step = self.steps.get(event.item_id)
        if step is None:
            kind = "command" if event.stream == "output" else "agent_message"
            step = self.steps[event.item_id] = _Step(
                "reasoning" if event.stream == "reasoning" else kind
            )
        if event.stream == "output":
            step.output = (step.output + event.delta)[-4 * self.preview_chars :]
        elif step.kind == "agent_message":
            step.text_chars += len(event.delta)
        else:
            step.label = (step.label + event.delta)[-4 * self.preview_chars :]

    def set_notice(self, message: str | None) -> None:
        self.notice = message

    def finish(self, status: str, error: str | None = None) -> None:
        self.status = status
        self.error = error
        self.notice = None

    def _step(self, item: ev.Item) -> _Step:
        previous = self.steps.get(item.id)
        step = _Step(item.kind, status=item.status)
        match item.kind:
            case "command":
                step.label = item.command or ""
                step.output = item.output or (previous.output if previous else "")
            case "file_change":
                step.label = ", ".join(change.path for change in item.changes)
            case "tool_call":
                step.label = f"{item.tool or 'tool'} {item.arguments or ''}".strip()
            case "agent_message":
                step.text_chars = len(item.text) or (previous.text_chars if previous else 0)
            case _:
                step.label = item.text or (previous.label if previous else "")
        return step

    def render(self) -> str:
        """The message text (Telegram HTML)."""
        header = HEADERS.get(self.status, self.status)
        if self.error:
            header += f": {html.escape(_preview(self.error, self.preview_chars), quote=False)}"
        lines = [f"<b>{header}</b>"]
        steps = list(self.steps.values())
        if len(steps) > self.max_steps:
            lines.append(f"… {len(steps) - self.max_steps} earlier steps")
            steps = steps[-self.max_steps :]
        for step in steps:
            lines.append(self._line(step))
        if self.notice:
            notice = html.escape(_preview(self.notice, self.preview_chars), quote=False)
            lines.append(f"{INFO} {notice}")
        return "\n".join(lines)

    def _line(self, step: _Step) -> str:
        emoji = KIND_EMOJI.get(step.kind, "•")
        mark = STATUS_MARK.get(step.status, "")
        limit = self.preview_chars
        if step.kind == "agent_message":
            verb = "writing" if step.status == "in_progress" else "wrote"
            return f"{emoji} {verb} the answer ({step.text_chars} characters){mark}"
        if step.kind == "reasoning":
            text = _tail(step.label, limit)
            return f"{emoji} thinking{': ' + html.escape(text, quote=False) if text else '…'}{mark}"
        label = html.escape(_preview(step.label, limit), quote=False)
        line = f"{emoji} <code>{label}</code>{mark}" if label else f"{emoji}{mark}"
        if step.output.strip():
            line += f"\n    ↳ {html.escape(_tail(step.output, limit), quote=False)}"
        return line


@dataclass(slots=True)
class ChatPacer:
    """When status messages of one chat may be edited; see the module documentation.

    The actor calls `mark(key)` when a message's text changed, then `poll(now)`: ``(key, 0)``
    means edit that message now (call `begin`, then `done` when Telegram answered), ``(None,
    delay)`` means ask again in `delay` seconds (arm a timer), ``(None, None)`` means nothing to
    do until the next change or answer.
    """

    interval: float
    last_start: float | None = None
    blocked_until: float = 0.0
    in_flight: Hashable | None = None
    dirty: dict[Hashable, None] = field(default_factory=dict)
    edits: int = 0

    def mark(self, key: Hashable) -> None:
        self.dirty[key] = None

    def forget(self, key: Hashable) -> None:
        self.dirty.pop(key, None)

    def poll(self, now: float) -> tuple[Hashable | None, float | None]:
        if self.in_flight is not None or not self.dirty:
            return None, None
        ready = self.blocked_until
        if self.last_start is not None:
            ready = max(ready, self.last_start + self.interval)
        if now < ready:
            return None, ready - now
        return next(iter(self.dirty)), 0.0

    def begin(self, key: Hashable, now: float) -> None:
        self.dirty.pop(key, None)
        self.in_flight = key
        self.last_start = now
        self.edits += 1

    def done(self, now: float, retry_after: float | None = None, *, dirty: bool = False) -> None:
        """The edit in flight was answered; `retry_after` when Telegram said 429 (the edit
        did not happen, so the message is dirty again)."""
        key = self.in_flight
        self.in_flight = None
        if retry_after is not None:
            self.block(now, retry_after)
            dirty = True
        if dirty and key is not None:
            self.dirty[key] = None

    def block(self, now: float, retry_after: float) -> None:
        self.blocked_until = max(self.blocked_until, now + retry_after)
