"""Fixtures for store tests: a migrated database with a surface, an agent and two threads, and
small builders for the events a turn produces."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from piano.store import StoreReader, Writer
from schemas.events import (
    ApprovalRequested,
    Interaction,
    Item,
    ItemCompleted,
    ItemDelta,
    ItemStarted,
    ThreadEvent,
    TurnCompleted,
    TurnStarted,
)

T0 = 1_750_000_000.0


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "piano.db"


def set_up(writer: Writer, *threads: str) -> None:
    """A telegram surface, a codex agent and the given threads (conversation chat:<id>)."""
    writer.upsert_surface("telegram", "telegram", name="Telegram")
    writer.upsert_agent("codex", "codex", model="gpt-5")
    for thread_id in threads:
        writer.create_thread(thread_id, "telegram", f"chat:{thread_id}", "codex", at=T0)


@pytest.fixture
def writer(path: Path) -> Iterator[Writer]:
    with Writer(path) as writer:
        set_up(writer, "t1", "t2")
        yield writer


@pytest.fixture
def reader(writer: Writer, path: Path) -> Iterator[StoreReader]:
    with StoreReader(path) as reader:
        yield reader


def started(
    thread: str, interaction: str, turn: str, text: str = "hello", at: float = T0
) -> TurnStarted:
    return TurnStarted(
        thread_id=thread,
        turn_id=turn,
        interaction_id=interaction,
        interaction=Interaction(id=interaction, text=text, user="alice"),
        agent="codex",
        at=at,
    )


def item_started(thread: str, turn: str, item: Item, interaction: str | None = None) -> ItemStarted:
    return ItemStarted(thread_id=thread, turn_id=turn, interaction_id=interaction, item=item)


def item_completed(
    thread: str, turn: str, item: Item, interaction: str | None = None
) -> ItemCompleted:
    return ItemCompleted(thread_id=thread, turn_id=turn, interaction_id=interaction, item=item)


def delta(thread: str, turn: str, item_id: str, text: str, stream: str = "text") -> ItemDelta:
    return ItemDelta(
        thread_id=thread,
        turn_id=turn,
        item_id=item_id,
        stream=stream,  # type: ignore[arg-type]
        delta=text,
    )


def completed(
    thread: str, turn: str, response: str = "done", status: str = "completed", **kw: object
) -> TurnCompleted:
    return TurnCompleted(
        thread_id=thread,
        turn_id=turn,
        status=status,  # type: ignore[arg-type]
        response=response,
        **kw,  # type: ignore[arg-type]
    )


def simple_turn(thread: str, interaction: str, turn: str, answer: str) -> list[ThreadEvent]:
    """A whole turn: started, one streamed agent message, completed."""
    message = f"{turn}-msg"
    return [
        started(thread, interaction, turn),
        item_started(thread, turn, Item(id=message, kind="agent_message")),
        delta(thread, turn, message, answer[: len(answer) // 2]),
        delta(thread, turn, message, answer[len(answer) // 2 :]),
        item_completed(
            thread, turn, Item(id=message, kind="agent_message", text=answer, status="completed")
        ),
        completed(thread, turn, response=answer),
    ]


def tool_approval(**fields: Any) -> ApprovalRequested:
    """A tool-call approval as Piano makes it from codex's MCP elicitation."""
    defaults: dict[str, Any] = {
        "thread_id": "t1",
        "approval_id": "a1",
        "item_id": "call_1",
        "kind": "tool_call",
        "tool": "piano.web_fetch",
        "arguments": '{"url": "https://example.org/"}',
        "reason": 'Allow the piano MCP server to run tool "web_fetch"?',
    }
    return ApprovalRequested(**(defaults | fields))
