"""What the bot says, in Telegram HTML: help, approval prompts and their outcome, status."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from telegram import BotCommand, InlineKeyboardButton, InlineKeyboardMarkup

from piano.commands import COMMANDS as DAEMON_COMMANDS
from piano.threads import resume_lines, web_link
from schemas import events as ev

if TYPE_CHECKING:
    from piano.threads import ConversationStatus

__all__ = [
    "COMMANDS",
    "approval_keyboard",
    "approval_outcome",
    "approval_prompt",
    "decode_decision",
    "help_text",
    "status_text",
]

COMMANDS: list[BotCommand] = [
    BotCommand("start", "Say hello and show what I can do"),
    BotCommand("new", "Start a fresh thread"),
    BotCommand("stop", "Interrupt the running turn"),
    BotCommand("status", "Show the thread's state"),
    BotCommand("agent", "List agents, or switch: /agent NAME"),
    BotCommand("approvals", "Show pending approval requests"),
    BotCommand("transcript", "Send this thread as a Markdown document"),
    # the daemon's own, the same on every surface (piano.commands)
    *(BotCommand(command.name, command.summary) for command in DAEMON_COMMANDS),
    BotCommand("help", "Show the commands"),
]

_DECISIONS: dict[str, ev.Decision] = {"y": "accept", "n": "decline", "c": "cancel"}
_OUTCOMES = {
    "accept": "✅ Approved",
    "decline": "🚫 Denied",
    "cancel": "⏹ Turn cancelled",
    "expired": "⌛ Expired (denied)",
    "withdrawn": "↩️ Withdrawn: the turn ended",
}


def _e(text: str) -> str:
    return html.escape(text, quote=False)


def help_text(agent: str) -> str:
    lines = [f"I pass your messages to the agent <b>{_e(agent)}</b> and show what it does."]
    lines += [f"/{command.command} — {_e(command.description)}" for command in COMMANDS]
    return "\n".join(lines)


def approval_prompt(event: ev.ApprovalRequested, limit: int = 1500) -> str:
    lines = ["🔐 <b>Approval needed</b>"]
    if event.kind == "command":
        lines.append(f"<pre><code>{_e((event.command or '')[:limit])}</code></pre>")
        if event.cwd:
            lines.append(f"in <code>{_e(event.cwd)}</code>")
    elif event.kind == "tool_call":
        lines.append(f"🔧 tool <code>{_e(event.tool or '?')}</code>")
        if event.arguments:
            lines.append(f"<pre><code>{_e(event.arguments[:limit])}</code></pre>")
    else:
        paths = ", ".join(change.path for change in event.changes) or "files"
        lines.append(f"📝 change {_e(paths)}")
        diff = "\n".join(change.diff for change in event.changes)
        if diff:
            lines.append(f"<pre><code>{_e(diff[:limit])}</code></pre>")
    if event.reason:
        lines.append(f"<i>{_e(event.reason[:300])}</i>")
    return "\n".join(lines)


def approval_outcome(prompt: str, decision: str, by: str | None) -> str:
    outcome = _OUTCOMES.get(decision, decision)
    return f"{prompt}\n\n<b>{_e(outcome)}</b>" + (f" by {_e(by)}" if by else "")


def approval_keyboard(token: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("✅ Approve", callback_data=f"ap|y|{token}"),
                InlineKeyboardButton("🚫 Deny", callback_data=f"ap|n|{token}"),
                InlineKeyboardButton("⏹ Cancel turn", callback_data=f"ap|c|{token}"),
            ]
        ]
    )


def decode_decision(data: str) -> tuple[ev.Decision, str] | None:
    """(decision, token) from a button's callback data, or None."""
    parts = data.split("|", 2)
    if len(parts) != 3 or parts[0] != "ap" or parts[1] not in _DECISIONS:
        return None
    return _DECISIONS[parts[1]], parts[2]


def status_text(
    agent: str, status: ConversationStatus | None, web: tuple[str, int] | None = None
) -> str:
    """The /status reply: the agent, the thread, its model and effort (``/model``, ``/effort``)
    and its state, and how to continue the thread elsewhere (`piano.threads.resume_lines`;
    `web` is the web surface's host and port)."""
    lines = [f"🤖 Agent: <b>{_e(agent)}</b>"]
    if status is None:
        lines.append("No thread yet: say something to start one.")
        return "\n".join(lines)
    lines.append(f"🧵 Thread: <code>{_e(status.thread_id)}</code>")
    model = status.model or "the provider default"
    lines.append(f"🧠 Model: <b>{_e(model)}</b>, effort: {_e(status.effort or 'default')}")
    lines.append("⏳ A turn is running." if status.running else "💤 Idle.")
    if status.queued:
        lines.append(f"📥 {status.queued} queued messages")
    if status.approvals:
        lines.append(f"🔐 {len(status.approvals)} pending approvals (/approvals)")
    link = web_link(status.thread_id, *web) if web is not None else None
    resume = resume_lines(status.thread_id, codex_thread_id=status.codex_thread_id, web=link)
    lines.append("↪ Continue elsewhere:")
    lines.extend(f"<code>{_e(line)}</code>" for line in resume)
    return "\n".join(lines)
