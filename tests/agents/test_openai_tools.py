"""OpenAI agents calling Piano's tools: web fetch of a local page, the jailed shell under
approvals, handoffs between agents, and notes kept per user."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from piano.threads import Decision, conversation_status, decide
from piano.tools import SqliteNotes
from schemas import events as ev
from tests.agents.conftest import Start
from tests.agents.fake_openai import Call, Text
from tests.test_webfetch import LocalSite
from tests.tools.conftest import PAGE

pytestmark = pytest.mark.anyio


@pytest.fixture
async def site() -> AsyncIterator[LocalSite]:
    local = LocalSite()
    local.page("/", PAGE)
    async with local:
        yield local


async def test_a_tool_call_runs_through_piano_and_its_result_goes_back_to_the_model(
    agents: Start, site: LocalSite
) -> None:
    world = await agents(api="chat")
    world.fake.script(Call("web_fetch", {"url": site.url("/")}), Text("The page says hello."))
    _, interaction = await world.say("what does the page say?")
    done = await world.done(interaction)
    assert (done.status, done.response) == ("completed", "The page says hello.")
    [call] = world.completed(interaction, "tool_call")
    assert (call.tool, call.status, call.agent) == ("web_fetch", "completed", "concierge")
    assert "Hello from the test page" in call.output
    assert json.loads(call.arguments or "") == {"url": site.url("/")}
    assert site.hits == ["/"]
    messages = world.fake.requests[1].body["messages"]
    assert messages[-2]["tool_calls"][0]["function"]["name"] == "web_fetch"
    assert messages[-1]["role"] == "tool"
    assert "Hello from the test page" in messages[-1]["content"]
    tools = {t["function"]["name"] for t in world.fake.requests[0].body["tools"]}
    assert {"web_fetch", "shell", "notes_save", "handoff"} <= tools
    assert not any(name.startswith("browser_") for name in tools)


@pytest.mark.parametrize(
    ("policy", "decision", "status"),
    [
        ("on-request", "accept", "completed"),
        ("on-request", "decline", "declined"),
        ("never", None, "completed"),
    ],
)
async def test_shell_commands_follow_the_agents_approval_policy(
    agents: Start, tmp_path: Path, policy: str, decision: Decision | None, status: str
) -> None:
    world = await agents(approval_policy=policy)
    command = "echo jailed > /workspace/proof.txt && cat /workspace/proof.txt"
    world.fake.script(
        Call("shell", {"command": command, "require_approval": True, "justification": "a file"}),
        Text("done"),
    )
    _, interaction = await world.say("write the file")
    if decision is not None:
        asked: ev.ApprovalRequested = await world.events.wait_for(
            lambda e: isinstance(e, ev.ApprovalRequested)
        )
        assert (asked.command, asked.reason, asked.kind) == (command, "a file", "command")
        thread = await world.thread()
        assert await decide(thread, asked.approval_id, decision, "tester") is True
    done = await world.done(interaction)
    assert done.status == "completed"
    [item] = world.completed(interaction, "command")
    assert (item.command, item.status, item.cwd) == (command, status, "/workspace")
    proof = tmp_path / "jails" / done.thread_id / "proof.txt"
    output = world.fake.requests[1].body["input"][-1]["output"]
    if status == "completed":
        assert item.exit_code == 0
        assert "jailed" in item.output
        assert proof.read_text() == "jailed\n"
    else:
        assert not proof.exists()
        assert "declined" in output
    resolved = world.of(interaction, ev.ApprovalResolved)
    assert [(r.decision, r.by) for r in resolved] == ([(decision, "tester")] if decision else [])


async def test_an_approval_nobody_answers_expires_and_the_command_is_not_run(
    agents: Start,
) -> None:
    world = await agents(approval_timeout=0.2)
    world.fake.script(Call("shell", {"command": "rm -rf /workspace/*", "require_approval": True}))
    _, interaction = await world.say("clean up")
    done = await world.done(interaction)
    assert done.status == "completed"
    [resolved] = world.of(interaction, ev.ApprovalResolved)
    assert resolved.decision == "expired"
    [item] = world.completed(interaction, "command")
    assert item.status == "declined"


async def test_a_handoff_gives_the_conversation_to_the_archivist_with_notes_per_user(
    agents: Start, tmp_path: Path
) -> None:
    world = await agents()
    world.fake.script(
        Call("handoff", {"agent": "archivist", "reason": "the user wants something kept"}),
        Call("notes_save", {"title": "groceries", "text": "milk, eggs"}),
        Text("Saved your groceries."),
    )
    _, first = await world.say("please remember: milk, eggs")
    done = await world.done(first)
    assert (done.status, done.response) == ("completed", "Saved your groceries.")
    [handoff] = world.completed(first, "handoff")
    assert handoff.agent == "archivist"
    assert "concierge handed the conversation to archivist" in handoff.text
    [answer] = world.completed(first, "agent_message")
    [saved] = world.completed(first, "tool_call")
    assert (answer.agent, saved.agent, saved.tool) == ("archivist", "archivist", "notes_save")
    archivist_request = world.fake.requests[1].body
    assert archivist_request["instructions"] == "You are the archivist."
    assert archivist_request["input"][0] == {
        "role": "user",
        "content": "please remember: milk, eggs",
    }
    assert archivist_request["input"][1]["name"] == "handoff"
    assert {t["name"] for t in archivist_request["tools"]} == {
        "notes_save",
        "notes_get",
        "notes_list",
        "handoff",
    }

    items = await asyncio.to_thread(lambda: world.reader().items(first))
    stored = {(i.kind, i.agent) for i in items}
    assert ("handoff", "archivist") in stored
    assert ("agent_message", "archivist") in stored

    world.fake.script(Text("Still the archivist."))
    _, second = await world.say("are you there?")
    await world.done(second)
    assert world.of(second, ev.TurnStarted)[0].agent == "archivist"
    assert world.fake.requests[-1].body["instructions"] == "You are the archivist."
    thread = await world.thread()
    assert (await conversation_status(thread)).agent == "archivist"

    world.fake.script(Call("notes_list", {}), Text("You have none."))
    _, other = await world.say("my notes?", conversation="c2", user="bob")
    await world.done(other)
    [listed] = world.completed(other, "tool_call")
    assert listed.output == "no notes yet"

    world.fake.script(Call("notes_get", {"title": "groceries"}), Text("milk, eggs"))
    _, again = await world.say("my groceries?", conversation="c3", user="ada")
    await world.done(again)
    [got] = world.completed(again, "tool_call")
    assert got.output == "milk, eggs"

    reopened = SqliteNotes(tmp_path / "piano.db")
    try:
        assert await reopened.titles("test:ada") == ["groceries"]
        assert await reopened.titles("test:bob") == []
    finally:
        reopened.close()


async def test_a_handoff_to_an_agent_not_allowed_changes_nothing_and_says_why(
    agents: Start,
) -> None:
    world = await agents()
    world.fake.script(Call("handoff", {"agent": "hacker"}), Text("I stay."))
    _, interaction = await world.say("hand me over")
    done = await world.done(interaction)
    assert done.response == "I stay."
    assert world.completed(interaction, "handoff") == []
    [refused] = world.completed(interaction, "tool_call")
    assert refused.status == "failed"
    assert "archivist" in refused.output
    assert world.completed(interaction, "agent_message")[0].agent == "concierge"


async def test_an_openai_agent_sees_its_browser_screenshot_and_selects_by_xpath(
    agents: Start, site: LocalSite
) -> None:
    world = await agents(api="responses", options={"tools": ["browser"]})
    world.fake.script(
        Call("browser_visit", {"url": site.url("/")}),
        Call("browser_read_text", {"selector": "//h1", "by": "xpath"}),
        Call("browser_screenshot", {}),
        Text("I see the page."),
    )
    _, interaction = await world.say("look at the page")
    done = await world.done(interaction)

    assert (done.status, done.response) == ("completed", "I see the page.")
    calls = world.completed(interaction, "tool_call")
    assert [(c.tool, c.status) for c in calls] == [
        ("browser_visit", "completed"),
        ("browser_read_text", "completed"),
        ("browser_screenshot", "completed"),
    ]
    outputs = [
        item["output"]
        for item in world.fake.requests[3].body["input"]
        if item.get("type") == "function_call_output"
    ]
    assert "Hello from the test page" in outputs[1]
    text, image = outputs[2]
    assert "saved in the shell's workspace as screenshots/" in text["text"]
    assert image["type"] == "input_image"
    assert image["image_url"].startswith("data:image/png;base64,")
