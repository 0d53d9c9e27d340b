"""OpenAI agent turns through the real openai SDK against the fake server: streaming, errors,
retries, the round limit, interrupts, queueing and the history."""

from __future__ import annotations

import asyncio

import pytest

from actors import get_state
from piano.threads import interrupt
from schemas import events as ev
from tests.agents.conftest import Start
from tests.agents.fake_openai import Call, Hang, Status, Text, Truncate

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("api", ["responses", "chat"])
async def test_a_streamed_answer_gives_the_same_event_shape_as_a_codex_turn(
    agents: Start, api: str
) -> None:
    world = await agents(api=api)
    world.fake.script(Text("Hello from the fake model", deltas=4))
    outcome, interaction = await world.say("hi")
    assert outcome == "started"
    done = await world.done(interaction)
    assert (done.status, done.response, done.error) == (
        "completed",
        "Hello from the fake model",
        None,
    )
    events = world.of(interaction)
    kinds = [type(e).__name__ for e in events]
    assert kinds[0] == "TurnStarted"
    assert kinds[-1] == "TurnCompleted"
    assert events[0].agent == "concierge"
    deltas = [e.delta for e in world.of(interaction, ev.ItemDelta)]
    assert len(deltas) == 4
    assert "".join(deltas) == "Hello from the fake model"
    [user] = world.completed(interaction, "user_message")
    [answer] = world.completed(interaction, "agent_message")
    assert user.text == "hi"
    assert (answer.text, answer.agent, answer.status) == (
        "Hello from the fake model",
        "concierge",
        "completed",
    )
    started = [e.item.id for e in world.of(interaction, ev.ItemStarted)]
    assert started == [e.item.id for e in world.of(interaction, ev.ItemCompleted)]
    [usage] = world.of(interaction, ev.TokenUsage)
    assert usage.total_tokens == (70 if api == "responses" else 52)
    [request] = world.fake.requests
    assert request.path == f"/v1/{'responses' if api == 'responses' else 'chat/completions'}"
    if api == "responses":
        assert request.body["instructions"] == "You are the concierge."
        assert request.body["input"] == [{"role": "user", "content": "hi"}]
    else:
        assert request.body["messages"][0] == {
            "role": "system",
            "content": "You are the concierge.",
        }
    stored = await asyncio.to_thread(lambda: world.reader().interactions(done.thread_id))
    assert [(i.status, i.response) for i in stored] == [("completed", "Hello from the fake model")]


@pytest.mark.parametrize("api", ["responses", "chat"])
async def test_a_stream_cut_before_its_finish_fails_the_turn_instead_of_a_short_answer(
    agents: Start, api: str
) -> None:
    world = await agents(api=api)
    world.fake.script(Truncate("The answer is forty"))
    _, interaction = await world.say("what is the answer?")
    done = await world.done(interaction)
    assert done.status == "failed"
    assert "incomplete" in (done.error or "")
    [message] = world.completed(interaction, "agent_message")
    assert message.status == "failed"
    assert message.text == "The answer is forty"


async def test_a_rate_limit_is_retried_with_a_retrying_notice_then_succeeds(
    agents: Start,
) -> None:
    world = await agents(api="chat")
    world.fake.script(Status(429, "Rate limit reached", retry_after=0.01), Status(503), Text("ok!"))
    _, interaction = await world.say("hello")
    done = await world.done(interaction)
    assert (done.status, done.response) == ("completed", "ok!")
    notices = world.of(interaction, ev.Notice)
    assert [n.retrying for n in notices] == [True, True]
    assert "429" in notices[0].message
    assert "Rate limit reached" in notices[0].message
    assert "503" in notices[1].message
    assert "attempt 3 of 3" in notices[1].message
    assert len(world.fake.requests) == 3


async def test_errors_past_the_retries_fail_the_turn_with_the_providers_message(
    agents: Start,
) -> None:
    world = await agents()
    world.fake.script(Status(500, "boom"), Status(500, "boom"), Status(500, "still broken"))
    _, interaction = await world.say("hello")
    done = await world.done(interaction)
    assert done.status == "failed"
    assert "500" in (done.error or "")
    assert "still broken" in (done.error or "")


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ({"key": "sk-wrong"}, "401: Incorrect API key provided"),
        ({"model": "no-such-model"}, "404: The model `no-such-model` does not exist"),
    ],
)
async def test_a_bad_key_or_an_unknown_model_fails_the_turn_with_the_providers_message(
    agents: Start, setup: dict[str, str], expected: str
) -> None:
    world = await agents(**setup)
    _, interaction = await world.say("hello")
    done = await world.done(interaction)
    assert done.status == "failed"
    assert expected in (done.error or "")
    assert len(world.fake.requests) == 1
    assert not world.of(interaction, ev.Notice)


async def test_the_round_limit_ends_the_turn_with_a_clear_message(agents: Start) -> None:
    world = await agents(options={"max_rounds": 2})
    world.fake.default = Call("notes_list", {})
    _, interaction = await world.say("loop forever")
    done = await world.done(interaction)
    assert done.status == "failed"
    assert "limit of 2 model rounds" in (done.error or "")
    assert len(world.fake.requests) == 2
    assert len(world.completed(interaction, "tool_call")) == 1
    world.fake.default = Text("carrying on")
    _, again = await world.say("go on")
    assert (await world.done(again)).status == "completed"
    outputs = [
        i for i in world.fake.requests[-1].body["input"] if i.get("type") == "function_call_output"
    ]
    assert len(outputs) == 2
    assert outputs[-1]["output"].startswith("Not run.")


async def test_an_interrupt_ends_the_turn_interrupted_and_closes_its_items(agents: Start) -> None:
    world = await agents()
    hang = Hang()
    world.fake.script(hang)
    _, interaction = await world.say("take your time")
    await world.fake.wait_requests(1)
    thread = await world.thread()
    assert await interrupt(thread) is True
    done = await world.done(interaction)
    hang.release()
    assert (done.status, done.error) == ("interrupted", "interrupted by the user")
    started = {e.item.id for e in world.of(interaction, ev.ItemStarted)}
    assert started == {e.item.id for e in world.of(interaction, ev.ItemCompleted)}
    assert await interrupt(thread) is False
    world.fake.script(Text("back again"))
    _, after = await world.say("still there?")
    assert (await world.done(after)).response == "back again"


async def test_a_message_while_busy_is_queued_and_runs_after_the_turn(agents: Start) -> None:
    world = await agents()
    hang = Hang()
    world.fake.script(hang, Text("second answer"))
    first_outcome, first = await world.say("first")
    await world.fake.wait_requests(1)
    outcome, second = await world.say("second")
    assert (first_outcome, outcome) == ("started", "queued")
    hang.release()
    done_first = await world.done(first)
    done_second = await world.done(second)
    assert done_second.response == "second answer"
    assert world.events.all.index(done_first) < world.events.all.index(done_second)


async def test_a_steered_message_joins_the_running_turn_before_its_next_round(
    agents: Start,
) -> None:
    world = await agents(busy="steer")
    hang = Hang(then=Call("notes_list", {}))
    world.fake.script(hang, Text("both seen"))
    _, first = await world.say("list my notes")
    await world.fake.wait_requests(1)
    outcome, _ = await world.say("and be brief")
    assert outcome == "steered"
    hang.release()
    done = await world.done(first)
    assert (done.status, done.response) == ("completed", "both seen")
    assert [i.text for i in world.completed(first, "user_message")] == [
        "list my notes",
        "and be brief",
    ]
    second = world.fake.requests[1].body["input"]
    assert second[-1] == {"role": "user", "content": "and be brief"}
    assert second[-2]["type"] == "function_call_output"


async def test_the_conversation_survives_the_thread_stopping(agents: Start) -> None:
    world = await agents()
    world.fake.script(Text("Nice to meet you, Ada."), Text("You are Ada."))
    _, first = await world.say("I am Ada")
    await world.done(first)
    thread = await world.thread()
    await thread.stop()
    _, second = await world.say("who am I?")
    assert (await world.done(second)).response == "You are Ada."
    sent = world.fake.requests[-1].body["input"]
    assert [(m.get("role"), m.get("content")) for m in sent] == [
        ("user", "I am Ada"),
        ("assistant", "Nice to meet you, Ada."),
        ("user", "who am I?"),
    ]


async def test_the_threads_state_never_shows_the_api_key(agents: Start) -> None:
    world = await agents(key="sk-very-secret-key")
    world.fake.script(Text("hello"))
    _, interaction = await world.say("hi")
    await world.done(interaction)
    shown = repr(await get_state(await world.thread()))
    assert "sk-very-secret-key" not in shown
    assert "1 API clients" in shown
