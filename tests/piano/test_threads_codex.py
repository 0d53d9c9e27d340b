"""Conversation threads against the real codex binary and the fake model provider."""

from __future__ import annotations

import pytest

from schemas import events as ev
from tests.fakes.responses_provider import Text
from tests.piano.conftest import Core

pytestmark = pytest.mark.anyio


async def test_a_plain_turn_streams_its_text_and_completes_with_the_response(core: Core) -> None:
    core.provider.script(Text("Hello from the fake model", deltas=4))
    outcome, interaction = await core.say("hi")
    assert outcome == "started"
    done = await core.turn_completed(interaction)
    assert done.status == "completed"
    assert done.response == "Hello from the fake model"
    thread = await core.thread_id()
    kinds = [type(e).__name__ for e in core.events.of(thread)]
    assert kinds[0] == "TurnStarted"
    assert kinds[-1] == "TurnCompleted"
    deltas = [e.delta for e in core.events.of(thread, ev.ItemDelta)]
    assert "".join(deltas) == "Hello from the fake model"
    completed = {e.item.kind: e.item for e in core.events.of(thread, ev.ItemCompleted)}
    assert completed["user_message"].text == "hi"
    assert completed["agent_message"].text == "Hello from the fake model"
    started = {e.item.id for e in core.events.of(thread, ev.ItemStarted)}
    assert started == {e.item.id for e in core.events.of(thread, ev.ItemCompleted)}
    assert core.events.of(thread, ev.TokenUsage)
