"""Conversations through the Telegram surface: real PTB, real codex, fake Bot API and model."""

from __future__ import annotations

import pytest

from tests.fakes.responses_provider import ExecCommand, Text
from tests.telegram.conftest import ADMIN, TG

pytestmark = pytest.mark.anyio


async def test_a_private_message_gets_a_status_message_edited_to_done_and_the_answer(
    tg: TG,
) -> None:
    tg.core.provider.script(ExecCommand("echo piano-was-here"), Text("All **done**."))
    await tg.start()
    await tg.api.wait_for(lambda c: c.method == "setMyCommands")
    commands = [c["command"] for c in tg.api.of("setMyCommands")[0].params["commands"]]
    assert commands == [
        "start",
        "new",
        "stop",
        "status",
        "agent",
        "approvals",
        "transcript",
        "help",
    ]
    sent = await tg.api.push_message(ADMIN, "run it")
    answer = await tg.answer(ADMIN)
    assert answer.params["text"] == "All <b>done</b>."
    assert answer.params["parse_mode"] == "HTML"
    assert answer.params["reply_parameters"]["message_id"] == sent["message"]["message_id"]
    status = tg.api.of("sendMessage", ADMIN)[0]
    assert status.params.get("disable_notification") is True
    status_id = next(
        key[1] for key, m in tg.api.messages.items() if m.get("text", "").startswith("<b>")
    )
    final = await tg.api.wait_for(
        lambda c: c.method == "editMessageText" and c.params["text"].startswith("<b>✅ Done")
    )
    assert final.params["message_id"] == status_id
    assert "💻 <code>" in final.params["text"]
    assert "piano-was-here" in final.params["text"]
    assert tg.api.of("sendChatAction", ADMIN)
