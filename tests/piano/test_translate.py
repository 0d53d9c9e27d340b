"""The Codex translator keeps the guarantees of `schemas.events` whatever Codex sends."""

from __future__ import annotations

import msgspec

from piano.codex import EVENT_TEXT_LIMIT
from piano.codex._translate import Translator
from schemas import events as ev
from schemas.codex import (
    AgentMessageDeltaNotification,
    AgentMessageItem,
    CommandExecutionItem,
    ErrorNotification,
    ItemCompletedNotification,
    ItemStartedNotification,
    Turn,
    TurnCompletedNotification,
    TurnStartedNotification,
)
from schemas.codex._threads import TurnError


def feed(translator: Translator, *notes: object) -> list[ev.ThreadEvent]:
    out: list[ev.ThreadEvent] = []
    for note in notes:
        out += translator.feed("m", note, at=1.0)
    return out


def turn(status: str, error: str | None = None) -> Turn:
    return Turn(id="u1", status=status, error=TurnError(message=error) if error else None)  # type: ignore[arg-type]


def test_items_codex_never_completes_are_closed_when_the_turn_ends() -> None:
    t = Translator("t1")
    t.begin("i1")
    events = feed(
        t,
        TurnStartedNotification(thread_id="c", turn=turn("inProgress")),
        ItemStartedNotification(thread_id="c", turn_id="u1", item=AgentMessageItem(id="a1")),
        AgentMessageDeltaNotification(thread_id="c", turn_id="u1", item_id="a1", delta="par"),
        ItemStartedNotification(
            thread_id="c",
            turn_id="u1",
            item=CommandExecutionItem(id="c1", command="sleep 9", status="inProgress"),
        ),
        TurnCompletedNotification(thread_id="c", turn=turn("interrupted")),
    )
    closed = {e.item.id: e.item.status for e in events if isinstance(e, ev.ItemCompleted)}
    assert closed == {"a1": "interrupted", "c1": "interrupted"}
    assert isinstance(events[-1], ev.TurnCompleted)
    assert events[-1].status == "interrupted"
    assert all(e.at == 1.0 for e in events)


def test_the_final_text_replaces_what_was_streamed_and_is_the_response() -> None:
    t = Translator("t1")
    t.begin("i1")
    events = feed(
        t,
        ItemStartedNotification(thread_id="c", turn_id="u1", item=AgentMessageItem(id="a1")),
        AgentMessageDeltaNotification(thread_id="c", turn_id="u1", item_id="a1", delta="Hel"),
        AgentMessageDeltaNotification(thread_id="c", turn_id="u1", item_id="a1", delta="Hel"),
        ItemCompletedNotification(
            thread_id="c", turn_id="u1", item=AgentMessageItem(id="a1", text="Hello")
        ),
        TurnCompletedNotification(thread_id="c", turn=turn("completed")),
    )
    [completed] = [e for e in events if isinstance(e, ev.ItemCompleted)]
    assert (completed.item.text, completed.item.status) == ("Hello", "completed")
    assert events[-1].response == "Hello"  # type: ignore[union-attr]


def test_a_retried_sampling_leaves_no_item_open_and_a_completed_item_is_announced_once() -> None:
    t = Translator("t1")
    t.begin("i1")
    events = feed(
        t,
        ItemStartedNotification(thread_id="c", turn_id="u1", item=AgentMessageItem(id="try1")),
        ErrorNotification(
            thread_id="c",
            turn_id="u1",
            error=TurnError(message="Reconnecting... 1/2"),
            will_retry=True,
        ),
        ItemCompletedNotification(
            thread_id="c", turn_id="u1", item=AgentMessageItem(id="try2", text="second try")
        ),
        TurnCompletedNotification(thread_id="c", turn=turn("completed")),
    )
    started = [e.item.id for e in events if isinstance(e, ev.ItemStarted)]
    completed = [e.item.id for e in events if isinstance(e, ev.ItemCompleted)]
    assert sorted(started) == sorted(completed) == ["try1", "try2"]
    [notice] = [e for e in events if isinstance(e, ev.Notice)]
    assert notice.retrying
    assert events[-1].response == "second try"  # type: ignore[union-attr]


def test_a_failed_turn_closes_open_items_as_failed_with_the_error() -> None:
    t = Translator("t1")
    t.begin("i1")
    events = feed(
        t,
        ItemStartedNotification(thread_id="c", turn_id="u1", item=AgentMessageItem(id="a1")),
        TurnCompletedNotification(thread_id="c", turn=turn("failed", "provider down")),
    )
    assert [e.item.status for e in events if isinstance(e, ev.ItemCompleted)] == ["failed"]
    assert (events[-1].status, events[-1].error) == ("failed", "provider down")  # type: ignore[union-attr]


def test_a_published_event_is_unchanged_after_the_turn_closes_its_item() -> None:
    t = Translator("t1")
    t.begin("i1")
    [started] = feed(
        t,
        ItemStartedNotification(
            thread_id="c",
            turn_id="u1",
            item=CommandExecutionItem(id="c1", command="sleep 9", status="inProgress"),
        ),
    )
    assert isinstance(started, ev.ItemStarted)
    held = msgspec.json.encode(started)
    closing = feed(t, TurnCompletedNotification(thread_id="c", turn=turn("interrupted")))
    assert msgspec.json.encode(started) == held
    assert started.item.status == "in_progress"
    [closed] = [e for e in closing if isinstance(e, ev.ItemCompleted)]
    assert closed.item.status == "interrupted"


def test_no_event_carries_more_than_the_limit_of_tool_text_but_the_answer_is_whole() -> None:
    huge = "x" * (3 * EVENT_TEXT_LIMIT)
    t = Translator("t1")
    t.begin("i1")
    events = feed(
        t,
        AgentMessageDeltaNotification(thread_id="c", turn_id="u1", item_id="a1", delta=huge),
        ItemCompletedNotification(
            thread_id="c",
            turn_id="u1",
            item=CommandExecutionItem(
                id="c1", command="yes", status="completed", aggregated_output=huge
            ),
        ),
        ItemCompletedNotification(
            thread_id="c", turn_id="u1", item=AgentMessageItem(id="a1", text=huge)
        ),
        TurnCompletedNotification(thread_id="c", turn=turn("completed")),
    )
    delta = next(e for e in events if isinstance(e, ev.ItemDelta))
    assert len(delta.delta) < EVENT_TEXT_LIMIT + 100
    assert f"[… {2 * EVENT_TEXT_LIMIT} characters not stored …]" in delta.delta
    done = {e.item.id: e.item for e in events if isinstance(e, ev.ItemCompleted)}
    assert len(done["c1"].output) < EVENT_TEXT_LIMIT + 100
    assert done["a1"].text == huge
    assert isinstance(events[-1], ev.TurnCompleted)
    assert events[-1].response == huge
