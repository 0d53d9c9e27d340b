"""A thread as a Markdown transcript: what was asked, every step the agent took, what it said.

Layout: a header (thread, agent, surface, Codex thread, dates, token totals), then one section per
interaction: the user's message, the steps (commands with their output and exit code, file
changes as ``diff`` blocks, tool calls, web searches; reasoning and plans summarised), approvals
and their decisions, the final response, the status and any error.

Whatever the content, it cannot break the layout: code goes in fences longer than any run of
backticks inside it, inline code in spans longer than any run inside it, and free text (the
user's message, the agent's messages and response, which are Markdown themselves) in block
quotes, which end, with any fence left open inside them, where the quote ends.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Final

import msgspec

from piano.store._records import (
    ApprovalRecord,
    InteractionRecord,
    ItemRecord,
    ThreadRecord,
    UsageTotals,
)

__all__ = ["Transcript", "render_transcript"]

_SUMMARY_CHARS: Final = 300
_PLAN_LINES: Final = 20
_BACKTICKS: Final = re.compile(r"`+")


class Transcript(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a transcript shows, read from one snapshot."""

    thread: ThreadRecord
    interactions: list[InteractionRecord]
    items: list[ItemRecord]
    approvals: list[ApprovalRecord]
    usage: dict[str, UsageTotals]
    total: UsageTotals


def _longest_backticks(text: str) -> int:
    return max((len(run) for run in _BACKTICKS.findall(text)), default=0)


def fence(text: str, info: str = "") -> str:
    """A fenced code block that `text` cannot close."""
    marks = "`" * max(3, _longest_backticks(text) + 1)
    body = text if text.endswith("\n") or not text else text + "\n"
    return f"{marks}{info}\n{body}{marks}"


def code(text: str) -> str:
    """An inline code span that `text` cannot close (newlines become spaces)."""
    text = " ".join(text.splitlines())
    marks = "`" * (_longest_backticks(text) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{marks}{pad}{text}{pad}{marks}"


def quote(text: str) -> str:
    """`text` as a block quote (an empty one says so)."""
    if not text.strip():
        return "> *(empty)*"
    return "\n".join(f"> {line}" if line else ">" for line in text.splitlines())


def _summary(text: str) -> str:
    flat = " ".join(text.split())
    if len(flat) > _SUMMARY_CHARS:
        flat = flat[: _SUMMARY_CHARS - 1].rstrip() + "…"
    return flat


def _when(at: float | None) -> str:
    if at is None:
        return "—"
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _tokens(usage: UsageTotals) -> str:
    return (
        f"{usage.total_tokens} (input {usage.input_tokens}, cached {usage.cached_input_tokens}, "
        f"output {usage.output_tokens}, reasoning {usage.reasoning_tokens})"
    )


def _status(item: ItemRecord) -> str:
    return "" if item.status == "completed" else f" — *{item.status}*"


def _item(item: ItemRecord, response: str) -> list[str]:
    """The blocks (paragraphs) showing one item."""
    match item.kind:
        case "user_message":
            return []
        case "agent_message":
            if item.text.strip() == response.strip() and item.status == "completed":
                return []  # the final response, shown once below
            who = f" ({code(item.agent)})" if item.agent else ""
            return [f"**Agent{who}**{_status(item)}", quote(item.text)]
        case "reasoning":
            return [f"*Reasoning:* {_summary(item.text) or '(not shown)'}{_status(item)}"]
        case "plan":
            lines = item.text.strip().splitlines()
            shown = lines[:_PLAN_LINES]
            if len(lines) > len(shown):
                shown.append(f"… ({len(lines) - len(shown)} more lines)")
            return [f"**Plan**{_status(item)}", quote("\n".join(shown))]
        case "command":
            exit_code = "no exit code" if item.exit_code is None else f"exit code {item.exit_code}"
            where = f" in {code(item.cwd)}" if item.cwd else ""
            blocks = [
                f"**Command**{where} — {exit_code}{_status(item)}",
                fence(item.command or item.text, "sh"),
            ]
            if item.output:
                blocks.append(fence(item.output, "text"))
            return blocks
        case "file_change":
            blocks = [f"**File changes**{_status(item)}"]
            for change in item.changes:
                blocks.append(f"File {code(change.path)} ({change.kind})")
                if change.diff:
                    blocks.append(fence(change.diff, "diff"))
            return blocks
        case "tool_call":
            name = code(item.tool) if item.tool else "(unnamed)"
            blocks = [f"**Tool call** {name}{_status(item)}"]
            if item.arguments:
                blocks.append(fence(item.arguments, "json"))
            result = item.output or item.text
            if result:
                blocks.append(fence(result, "text"))
            return blocks
        case "web_search":
            return [f"**Web search** {code(item.text)}{_status(item)}"]
        case "handoff":
            target = code(item.agent) if item.agent else "another agent"
            blocks = [f"**Handoff** to {target}{_status(item)}"]
            if item.text:
                blocks.append(quote(item.text))
            return blocks
    blocks = [f"**{item.kind}**{_status(item)}"]
    if item.text:
        blocks.append(quote(item.text))
    return blocks


def _approval(approval: ApprovalRecord) -> list[str]:
    decision = approval.decision or "pending"
    by = f" by {code(approval.decided_by)}" if approval.decided_by else ""
    blocks = [f"**Approval** ({approval.kind}) — {decision}{by}"]
    if approval.reason:
        blocks.append(quote(approval.reason))
    if approval.command:
        blocks.append(fence(approval.command, "sh"))
    if approval.tool:
        blocks.append(f"Tool {code(approval.tool)}")
        if approval.arguments:
            blocks.append(fence(approval.arguments, "json"))
    for change in approval.changes:
        blocks.append(f"File {code(change.path)}")
        if change.diff:
            blocks.append(fence(change.diff, "diff"))
    return blocks


def _interaction(
    number: int,
    interaction: InteractionRecord,
    items: list[ItemRecord],
    approvals: list[ApprovalRecord],
    usage: UsageTotals | None,
) -> list[str]:
    user = code(interaction.user) if interaction.user else "user"
    blocks = [
        f"## {number}. {user} — {_when(interaction.created_at)}",
        quote(interaction.text),
    ]
    if interaction.attachments:
        blocks.append("Attachments: " + ", ".join(code(a) for a in interaction.attachments))
    if items:
        blocks.append("### Steps")
        for item in items:
            blocks.extend(_item(item, interaction.response))
    if approvals:
        blocks.append("### Approvals")
        for approval in approvals:
            blocks.extend(_approval(approval))
    blocks.append("### Response")
    blocks.append(quote(interaction.response) if interaction.response else "*(no response)*")
    status = f"**Status:** {interaction.status}"
    if interaction.finished_at is not None:
        status += f" at {_when(interaction.finished_at)}"
    if usage is not None and usage.reports:
        status += f" · tokens {_tokens(usage)}"
    blocks.append(status)
    if interaction.error:
        blocks.append(fence(interaction.error, "text"))
    return blocks


def render_transcript(transcript: Transcript) -> str:
    """The Markdown transcript of one thread."""
    thread = transcript.thread
    blocks = [
        f"# Thread {code(thread.id)}",
        "\n".join(
            [
                f"- Agent: {code(thread.agent)}",
                f"- Surface: {code(thread.surface)}, conversation {code(thread.conversation)}",
                f"- Codex thread: {code(thread.codex_thread_id or '—')}",
                f"- Status: {thread.status}",
                f"- Created: {_when(thread.created_at)}",
                f"- Updated: {_when(thread.updated_at)}",
                f"- Tokens: {_tokens(transcript.total)}",
            ]
        ),
    ]
    by_interaction: dict[str | None, list[ItemRecord]] = {}
    for item in transcript.items:
        by_interaction.setdefault(item.interaction_id, []).append(item)
    approvals: dict[str | None, list[ApprovalRecord]] = {}
    for approval in transcript.approvals:
        approvals.setdefault(approval.interaction_id, []).append(approval)
    for number, interaction in enumerate(transcript.interactions, 1):
        blocks.extend(
            _interaction(
                number,
                interaction,
                by_interaction.get(interaction.id, []),
                approvals.get(interaction.id, []),
                transcript.usage.get(interaction.id),
            )
        )
    loose = by_interaction.get(None, [])
    if loose:
        blocks.append("## Steps outside any interaction")
        for item in loose:
            blocks.extend(_item(item, ""))
    return "\n\n".join(blocks) + "\n"
