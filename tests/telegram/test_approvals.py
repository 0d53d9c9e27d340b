"""Approvals as inline buttons: decided by a press, removed when decided, expired or withdrawn."""

from __future__ import annotations

from typing import Any

import pytest

from piano.surfaces.telegram._texts import approval_prompt
from piano.threads import ThreadKey, conversation_status, open_conversation
from schemas import events as ev
from tests.fakes.responses_provider import ExecCommand, Text
from tests.store.conftest import tool_approval
from tests.telegram.conftest import ADMIN, STRANGER, TG
from tests.telegram.fake_bot_api import Call

pytestmark = pytest.mark.anyio


async def _prompt(tg: TG) -> Call:
    return await tg.api.wait_for(lambda c: c.method == "sendMessage" and "reply_markup" in c.params)


def _prompt_message(tg: TG, chat_id: int) -> dict[str, Any]:
    [message] = [
        m
        for (chat, _), m in tg.api.messages.items()
        if chat == chat_id and "Approval needed" in m.get("text", "")
    ]
    return message


async def _press(tg: TG, chat_id: int, label: str, user_id: int = ADMIN) -> None:
    message = _prompt_message(tg, chat_id)
    buttons = message["reply_markup"]["inline_keyboard"][0]
    [data] = [b["callback_data"] for b in buttons if label in b["text"]]
    await tg.api.push_callback(chat_id, message["message_id"], data, user_id=user_id)


async def _outcome(tg: TG, words: str) -> Call:
    return await tg.api.wait_for(
        lambda c: (
            c.method == "editMessageText"
            and "Approval needed" in c.params["text"]
            and words in c.params["text"]
        )
    )


@pytest.mark.parametrize(
    ("label", "outcome", "status"),
    [("Approve", "Approved", "completed"), ("Deny", "Denied", "declined")],
)
async def test_a_button_press_decides_the_approval_and_the_buttons_are_removed(
    tg: TG, label: str, outcome: str, status: str
) -> None:
    tg.core.provider.script(ExecCommand("echo approved-run", require_escalated=True), Text("ok"))
    await tg.start()
    await tg.api.push_message(ADMIN, "needs approval")
    prompt = await _prompt(tg)
    assert "echo approved-run" in prompt.params["text"]
    await _press(tg, ADMIN, label)
    answered = await tg.api.wait_for(lambda c: c.method == "answerCallbackQuery")
    assert answered.params["text"] in ("Approved", "Denied")
    edit = await _outcome(tg, outcome)
    assert "reply_markup" not in edit.params
    assert "reply_markup" not in _prompt_message(tg, ADMIN)
    done: ev.TurnCompleted = await tg.core.events.wait_for(
        lambda e: isinstance(e, ev.TurnCompleted)
    )
    [command] = [
        e.item
        for e in tg.core.events.of(done.thread_id, ev.ItemCompleted)
        if e.item.kind == "command"
    ]
    assert command.status == status
    if status == "completed":
        assert "approved-run" in command.output
    await tg.answer(ADMIN, lambda c: c.params["text"] == "ok")


async def test_cancel_turn_on_the_prompt_ends_the_turn(tg: TG) -> None:
    tg.core.provider.script(ExecCommand("echo never", require_escalated=True), Text("ok"))
    await tg.start()
    await tg.api.push_message(ADMIN, "needs approval")
    await _prompt(tg)
    await _press(tg, ADMIN, "Cancel turn")
    await _outcome(tg, "Turn cancelled")
    done: ev.TurnCompleted = await tg.core.events.wait_for(
        lambda e: isinstance(e, ev.TurnCompleted)
    )
    assert done.status == "interrupted"
    await tg.api.wait_for(
        lambda c: c.method == "editMessageText" and c.params["text"].startswith("<b>⏹")
    )


@pytest.mark.parametrize("agent_options", [{"approval_timeout": 0.5}])
async def test_an_expired_approval_loses_its_buttons(tg: TG) -> None:
    tg.core.provider.script(ExecCommand("echo late", require_escalated=True), Text("ok"))
    await tg.start()
    await tg.api.push_message(ADMIN, "needs approval")
    await _prompt(tg)
    edit = await _outcome(tg, "Expired")
    assert "reply_markup" not in edit.params
    assert "reply_markup" not in _prompt_message(tg, ADMIN)


async def test_a_press_by_someone_not_allowed_is_refused_audited_and_changes_nothing(
    tg: TG,
) -> None:
    tg.core.provider.script(ExecCommand("echo guarded", require_escalated=True), Text("ok"))
    await tg.start()
    await tg.api.push_message(ADMIN, "needs approval")
    await _prompt(tg)
    await _press(tg, ADMIN, "Approve", user_id=STRANGER)
    refused = await tg.api.wait_for(lambda c: c.method == "answerCallbackQuery")
    assert refused.params["show_alert"] is True
    thread = await open_conversation(tg.core.threads, ThreadKey("telegram", str(ADMIN), "default"))
    assert len((await conversation_status(thread)).approvals) == 1
    assert "reply_markup" in _prompt_message(tg, ADMIN)
    assert (STRANGER, ADMIN, "approval", "refused") in [entry[:4] for entry in tg.audit()]
    await _press(tg, ADMIN, "Approve")
    await _outcome(tg, "Approved")


def test_a_tool_call_approval_names_the_tool_and_shows_its_arguments_escaped() -> None:
    asked = tool_approval(arguments='{"url": "https://example.org/?a=<b>"}')
    text = approval_prompt(asked)
    assert "🔧 tool <code>piano.web_fetch</code>" in text
    assert "https://example.org/?a=&lt;b&gt;" in text
    assert 'run tool "web_fetch"?' in text
