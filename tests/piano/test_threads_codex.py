"""Conversation threads against the real codex binary and the fake model provider."""

from __future__ import annotations

import hashlib
import json
import os
import signal

import pytest

from actors import ActorSystem
from piano.agents.codex import MemoryRollouts
from piano.codex import CODEX
from piano.codex._client import CODEX_BUILT_IN_PROVIDERS
from piano.threads import Decision, Unfinished, conversation_status, decide, interrupt, take_over
from schemas import events as ev
from tests.fakes.responses_provider import (
    CodexDirs,
    ExecCommand,
    FakeResponsesProvider,
    Hang,
    HttpError,
    Text,
)
from tests.piano.conftest import Core, make_config, start_core

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


async def test_a_shell_command_is_reported_with_its_output_and_exit_code(core: Core) -> None:
    core.provider.script(ExecCommand("echo piano-was-here"), Text("done"))
    _, interaction = await core.say("run it")
    done = await core.turn_completed(interaction)
    assert done.status == "completed"
    [command] = [
        e.item for e in core.events.of(done.thread_id, ev.ItemCompleted) if e.item.kind == "command"
    ]
    assert "piano-was-here" in command.output
    assert command.exit_code == 0
    assert command.status == "completed"


@pytest.mark.parametrize(
    ("decision", "status", "resolved"),
    [("accept", "completed", "accept"), ("decline", "declined", "decline")],
)
async def test_an_approval_is_forwarded_and_the_decision_obeyed(
    core: Core, decision: Decision, status: str, resolved: str
) -> None:
    core.provider.script(ExecCommand("echo approved-run", require_escalated=True), Text("ok"))
    _, interaction = await core.say("needs approval")
    asked: ev.ApprovalRequested = await core.events.wait_for(
        lambda e: isinstance(e, ev.ApprovalRequested)
    )
    assert asked.kind == "command"
    assert "approved-run" in (asked.command or "")
    thread = await core.thread_ref()
    assert await decide(thread, asked.approval_id, decision, "tester") is True
    done = await core.turn_completed(interaction)
    assert done.status == "completed"
    [command] = [
        e.item for e in core.events.of(done.thread_id, ev.ItemCompleted) if e.item.kind == "command"
    ]
    assert command.status == status
    [result] = core.events.of(done.thread_id, ev.ApprovalResolved)
    assert (result.decision, result.by) == (resolved, "tester")


@pytest.mark.parametrize("agent_options", [{"approval_timeout": 0.3}])
async def test_an_approval_nobody_answers_is_declined_when_it_expires(core: Core) -> None:
    core.provider.script(ExecCommand("echo never", require_escalated=True), Text("ok"))
    _, interaction = await core.say("needs approval")
    done = await core.turn_completed(interaction)
    [result] = core.events.of(done.thread_id, ev.ApprovalResolved)
    assert result.decision == "expired"
    [command] = [
        e.item for e in core.events.of(done.thread_id, ev.ItemCompleted) if e.item.kind == "command"
    ]
    assert command.status == "declined"


async def test_an_interrupt_ends_the_turn_interrupted_and_closes_its_open_items(
    core: Core,
) -> None:
    hang = Hang()
    core.provider.script(hang)
    _, interaction = await core.say("take your time")
    await core.provider.wait_requests(1)
    thread = await core.thread_ref()
    assert await interrupt(thread) is True
    done = await core.turn_completed(interaction)
    hang.release()
    assert done.status == "interrupted"
    started = {e.item.id for e in core.events.of(done.thread_id, ev.ItemStarted)}
    completed = {e.item.id for e in core.events.of(done.thread_id, ev.ItemCompleted)}
    assert started == completed


async def test_a_message_while_busy_is_queued_and_runs_after_the_turn(core: Core) -> None:
    hang = Hang()
    core.provider.script(hang, Text("second answer"))
    first_outcome, first = await core.say("first")
    await core.provider.wait_requests(1)
    outcome, second = await core.say("second")
    assert (first_outcome, outcome) == ("started", "queued")
    hang.release()
    done_first = await core.turn_completed(first)
    done_second = await core.turn_completed(second)
    assert done_second.response == "second answer"
    assert core.events.all.index(done_first) < core.events.all.index(done_second)


@pytest.mark.parametrize("agent_options", [{"busy": "steer"}])
async def test_a_message_while_busy_steers_the_running_turn(core: Core) -> None:
    hang = Hang()
    core.provider.script(hang, Text("steered answer"))
    _, first = await core.say("first")
    await core.provider.wait_requests(1)
    outcome, _ = await core.say("actually, this")
    assert outcome == "steered"
    hang.release()
    done = await core.turn_completed(first)
    assert done.response == "steered answer"
    users = [
        e.item.text
        for e in core.events.of(done.thread_id, ev.ItemCompleted)
        if e.item.kind == "user_message"
    ]
    assert users == ["first", "actually, this"]


async def test_two_threads_run_turns_at_the_same_time(core: Core) -> None:
    hang = Hang()
    core.provider.script(hang, Text("fast one"))
    _, slow = await core.say("slow", core.key("a"))
    await core.provider.wait_requests(1)
    _, fast = await core.say("fast", core.key("b"))
    done_fast = await core.turn_completed(fast)
    assert done_fast.response == "fast one"
    hang.release()
    done_slow = await core.turn_completed(slow)
    assert done_slow.thread_id != done_fast.thread_id


async def test_a_failing_provider_shows_retrying_fails_the_turn_and_the_next_turn_works(
    core: Core,
) -> None:
    core.provider.script(HttpError(500), HttpError(500), HttpError(500), HttpError(500))
    _, first = await core.say("will fail")
    done = await core.turn_completed(first, timeout=30)
    assert done.status == "failed"
    notices = core.events.of(done.thread_id, ev.Notice)
    assert any(n.retrying for n in notices)
    core.provider.script(Text("recovered"))
    _, second = await core.say("again")
    assert (await core.turn_completed(second)).response == "recovered"


@pytest.mark.parametrize("agent_options", [{"turn_timeout": 0.5}])
async def test_a_turn_that_hangs_past_its_timeout_is_interrupted_and_the_user_told(
    core: Core,
) -> None:
    hang = Hang()
    core.provider.script(hang)
    _, interaction = await core.say("hang")
    done = await core.turn_completed(interaction)
    hang.release()
    assert done.status == "interrupted"
    assert any("longer than" in n.message for n in core.events.of(done.thread_id, ev.Notice))


async def test_a_killed_codex_process_interrupts_the_turn_and_the_next_turn_resumes_the_thread(
    core: Core,
) -> None:
    hang = Hang()
    core.provider.script(hang, Text("back again"))
    _, first = await core.say("remember the word avocado")
    await core.provider.wait_requests(1)
    client = core.system.whereis(CODEX)
    assert client is not None
    process = await client.call("connection")
    os.kill(process.pid, signal.SIGKILL)
    done = await core.turn_completed(first)
    hang.release()
    assert done.status == "interrupted"
    assert any(
        "Codex process stopped" in n.message for n in core.events.of(done.thread_id, ev.Notice)
    )
    assert await client.join(timeout=10) is not None
    _, second = await core.say("what was the word?")
    again = await core.turn_completed(second, timeout=30)
    assert again.response == "back again"
    assert core.system.whereis(CODEX) != client
    history = json.dumps((await core.provider.wait_requests(2))[-1]["input"])
    assert "remember the word avocado" in history, "the thread was not resumed on the new process"


@pytest.mark.parametrize("agent_options", [{"busy": "interrupt"}])
async def test_a_message_while_busy_interrupts_the_running_turn_and_then_runs(core: Core) -> None:
    hang = Hang()
    core.provider.script(hang, Text("the new answer"))
    _, first = await core.say("first")
    await core.provider.wait_requests(1)
    outcome, second = await core.say("never mind, do this")
    assert outcome == "interrupting"
    done_first = await core.turn_completed(first)
    hang.release()
    assert done_first.status == "interrupted"
    assert (await core.turn_completed(second)).response == "the new answer"


async def test_an_approval_still_open_when_its_turn_ends_is_withdrawn(core: Core) -> None:
    core.provider.script(ExecCommand("echo pending", require_escalated=True))
    _, interaction = await core.say("needs approval")
    asked: ev.ApprovalRequested = await core.events.wait_for(
        lambda e: isinstance(e, ev.ApprovalRequested)
    )
    thread = await core.thread_ref()
    assert await interrupt(thread) is True
    done = await core.turn_completed(interaction)
    assert done.status == "interrupted"
    [resolved] = core.events.of(done.thread_id, ev.ApprovalResolved)
    assert (resolved.approval_id, resolved.decision) == (asked.approval_id, "withdrawn")
    assert await decide(thread, asked.approval_id, "accept", "late") is False


@pytest.mark.parametrize("agent_options", [{"idle_timeout": 0.3}])
async def test_an_idle_thread_stops_and_comes_back_on_the_next_message(core: Core) -> None:
    core.provider.script(Text("remember avocado"), Text("it was avocado"))
    _, first = await core.say("remember avocado")
    await core.turn_completed(first)
    thread = await core.thread_ref()
    assert await thread.join(timeout=5) == "normal"
    _, second = await core.say("what was it?")
    assert (await core.turn_completed(second)).response == "it was avocado"
    assert await core.thread_ref() != thread
    history = json.dumps((await core.provider.wait_requests(2))[-1]["input"])
    assert "remember avocado" in history, "the thread was not resumed after stopping idle"


async def test_a_thread_stopped_mid_turn_publishes_its_turn_as_interrupted(core: Core) -> None:
    hang = Hang()
    core.provider.script(hang)
    _, interaction = await core.say("long one")
    await core.provider.wait_requests(1)
    thread = await core.thread_ref()
    await thread.stop("shutdown")
    hang.release()
    done = await core.turn_completed(interaction)
    assert done.status == "interrupted"
    assert done.error == "the daemon stopped"


@pytest.mark.parametrize("name", sorted(CODEX_BUILT_IN_PROVIDERS))
async def test_a_provider_named_like_a_codex_built_in_still_serves_the_agent(
    dirs: CodexDirs, name: str
) -> None:
    async with FakeResponsesProvider() as provider, ActorSystem() as system:
        provider.script(Text(f"served as {name}"))
        config = make_config(dirs, provider, provider_name=name)
        core = await start_core(system, config, provider, dirs)
        _, interaction = await core.say("hello")
        done = await core.turn_completed(interaction)
    assert (done.status, done.response) == ("completed", f"served as {name}")


async def test_a_conversation_taken_over_ends_the_previous_owners_turn_with_why_and_runs_the_rest(
    core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`take_over`, as the cluster calls it when a conversation moves to this node: what the
    previous owner left in the store (a turn in progress, a message it accepted and never ran)
    is closed and run by the start-up recovery path, with the move's reason."""
    core.provider.script(Text("answered on the new node"))
    thread_id = await core.thread_id()
    running = ev.Interaction(id="left-running", text="cut off", user="tester")
    pending = ev.Interaction(id="left-pending", text="never ran", user="tester")
    left = iter([Unfinished([(running, "turn-of-node-a")], [pending])])

    async def unfinished(thread: str) -> Unfinished:
        return next(left, Unfinished([], []))

    monkeypatch.setattr(core.directory, "unfinished", unfinished)
    why = "the node running this conversation (node-a) stopped"
    ref = await take_over(core.threads, core.key(), why)
    cut = await core.turn_completed("left-running")
    assert (cut.status, cut.error) == ("interrupted", why)
    done = await core.turn_completed("left-pending")
    assert (done.status, done.response) == ("completed", "answered on the new node")
    notices = [e.message for e in core.events.of(thread_id, ev.Notice)]
    assert f"Your message was not answered yet when {why}; answering it now." in notices
    assert await take_over(core.threads, core.key(), "again") is ref  # one actor per conversation


async def test_a_thread_codex_still_holds_older_than_the_stored_rollout_is_not_resumed(
    dirs: CodexDirs,
) -> None:
    """Back on a node whose codex still has the thread loaded (it unloads a minute after its
    actor unsubscribed) while another node took the thread further: resuming would give the
    model the old history codex holds, so the turn is refused, saying why, and the file is
    left alone."""
    rollouts = MemoryRollouts()
    async with FakeResponsesProvider() as provider, ActorSystem() as system:
        core = await start_core(
            system, make_config(dirs, provider), provider, dirs, rollouts=rollouts
        )
        provider.script(Text("first answer"))
        _, first = await core.say("first")
        assert (await core.turn_completed(first)).status == "completed"
        status = await conversation_status(await core.thread_ref())
        codex_thread = status.codex_thread_id
        assert codex_thread is not None
        await (await core.thread_ref()).stop("shutdown")  # saved, and unsubscribed
        found = await rollouts.content(codex_thread)
        assert found is not None
        head, data = found
        further = data + b'{"type":"event_msg","payload":{"type":"elsewhere"}}\n'
        digest = hashlib.sha256(further).hexdigest()
        await rollouts.replace(codex_thread, "elsewhere", head.path, further, digest)
        _, second = await core.say("second")
        refused = await core.turn_completed(second)
    assert refused.status == "failed"
    assert refused.error is not None
    assert "still holds an older copy" in refused.error
    assert (dirs.home / head.path).read_bytes() == data
    assert len(provider.requests) == 1
