"""The end-to-end proof with the real codex binary: the (fake) model calls Piano's `web_fetch`
MCP tool, codex calls the endpoint with the thread's token, the page comes back into the turn
(the next model request carries it) and the call is persisted as a tool_call item.

The codex thread is configured exactly as the daemon does it: ``thread/start`` with
``config=access.codex_thread_config(thread_id)``. With a catalog model (gpt-5.5) codex defers
MCP tools behind its ``tool_search`` tool instead of listing them up front; a namespaced call
(``namespace: "mcp__piano"``, ``name: "web_fetch"``) reaches them either way.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import anyio
import pytest

from piano.codex._rpc import CodexProcess
from piano.codex._translate import Translator
from piano.store import STORE, RecordInteraction, StoreReader, WriteBatch
from piano.threads import Decision, decide
from schemas import events as ev
from schemas.codex import TextInput, ThreadStartParams, TurnStartParams
from tests.fakes.responses_provider import (
    CodexDirs,
    FakeResponsesProvider,
    FunctionCall,
    Text,
)
from tests.piano.conftest import make_config, start_core
from tests.test_webfetch import LocalSite
from tests.tools.conftest import Tools

pytestmark = pytest.mark.anyio


async def test_codex_calls_web_fetch_on_the_endpoint_and_the_result_is_persisted(
    tools: Tools, site: LocalSite, dirs: CodexDirs
) -> None:
    thread_id = "thread-a"
    translator = Translator(thread_id)
    events: list[ev.ThreadEvent] = []
    completed = asyncio.Event()

    def route(codex_thread: str | None, method: str, params: Any) -> None:
        events.extend(translator.feed(method, params))
        if method == "turn/completed":
            completed.set()

    store = tools.system.whereis(STORE)
    assert store is not None
    async with FakeResponsesProvider() as provider:
        provider.script(
            FunctionCall("mcp__piano__web_fetch", {"url": site.url("/")}, call_id="call_fetch"),
            Text("The page says hello."),
        )
        process = CodexProcess(
            args=[
                "--disable",
                "plugins",
                "-c",
                f'model_providers.fake={{name="fake", base_url="{provider.base_url}", '
                'wire_api="responses", request_max_retries=1, stream_max_retries=1}',
            ],
            env=dirs.env,
            on_notification=route,
        )
        await process.start()
        try:
            started = await process.call(
                ThreadStartParams(
                    cwd=str(dirs.work),
                    model="gpt-5.5",
                    model_provider="fake",
                    approval_policy="on-request",
                    sandbox="workspace-write",
                    config=tools.access.codex_thread_config(thread_id),
                )
            )
            interaction = ev.Interaction(id="i1", text="read the page", user="tester")
            await store.call(RecordInteraction(thread_id, interaction))
            translator.begin(interaction.id)
            events.append(
                ev.TurnStarted(
                    thread_id=thread_id,
                    interaction_id=interaction.id,
                    interaction=interaction,
                    agent="codex",
                )
            )
            await process.call(
                TurnStartParams(
                    thread_id=started.thread.id, input=[TextInput(text=interaction.text)]
                )
            )
            with anyio.fail_after(60):
                await completed.wait()
        finally:
            await process.close()
    await store.call(WriteBatch(events), timeout=30)

    follow_up = provider.requests[1]["input"]
    output = next(
        entry
        for entry in follow_up
        if entry.get("type") == "function_call_output" and entry["call_id"] == "call_fetch"
    )
    reader = StoreReader(tools.db)
    items = await asyncio.to_thread(reader.thread_items, thread_id)
    reader.close()

    assert "quick brown fox" in json.dumps(output["output"])
    calls = [item for item in items if item.kind == "tool_call"]
    assert len(calls) == 1
    assert calls[0].tool == "piano.web_fetch"
    assert calls[0].status == "completed"
    assert json.loads(calls[0].arguments or "{}") == {"url": site.url("/")}
    assert "quick brown fox" in calls[0].output
    done = [e for e in events if isinstance(e, ev.TurnCompleted)]
    assert [(d.status, d.response) for d in done] == [("completed", "The page says hello.")]


@pytest.mark.parametrize(("decision", "ran"), [("accept", True), ("decline", False)])
async def test_in_prompt_mode_a_tool_call_is_forwarded_for_approval_and_the_decision_obeyed(
    tools: Tools, site: LocalSite, dirs: CodexDirs, decision: Decision, ran: bool
) -> None:
    def prompting(thread_id: str) -> dict[str, Any]:
        """The thread's codex config as the daemon gives it with [tools.mcp] approval_mode =
        "prompt" (signed by this tools tree's access, whose own mode is "approve")."""
        config = tools.access.codex_thread_config(thread_id)
        config["mcp_servers"]["piano"]["default_tools_approval_mode"] = "prompt"
        return config

    async with FakeResponsesProvider() as provider:
        provider.script(
            FunctionCall("mcp__piano__web_fetch", {"url": site.url("/")}, call_id="call_fetch"),
            Text("done"),
        )
        config = make_config(dirs, provider)
        core = await start_core(tools.system, config, provider, dirs, prompting)
        events = core.events
        _, interaction = await core.say("read the page")
        asked: ev.ApprovalRequested = await events.wait_for(
            lambda e: isinstance(e, ev.ApprovalRequested)
        )
        assert site.hits == []  # nothing runs before the user decides
        thread = await core.thread_ref()
        assert await decide(thread, asked.approval_id, decision, "tester") is True
        done = await core.turn_completed(interaction)
        follow_up = provider.requests[1]["input"]

    assert (asked.kind, asked.tool, asked.item_id) == ("tool_call", "piano.web_fetch", "call_fetch")
    assert json.loads(asked.arguments or "") == {"url": site.url("/")}
    assert asked.reason is not None
    assert "web_fetch" in asked.reason
    assert (site.hits == ["/"]) is ran
    output = json.dumps(
        next(e["output"] for e in follow_up if e.get("type") == "function_call_output")
    )
    assert ("quick brown fox" in output) is ran
    [resolved] = events.of(done.thread_id, ev.ApprovalResolved)
    assert (resolved.decision, resolved.by) == (decision, "tester")
    assert done.status == "completed"
