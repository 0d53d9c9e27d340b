"""Conversations through the Telegram surface: real PTB, real codex, fake Bot API and model."""

from __future__ import annotations

import itertools

import pytest

from piano.commands import COMMANDS as DAEMON_COMMANDS
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
        *(command.name for command in DAEMON_COMMANDS),
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


async def test_a_flood_of_streamed_text_is_coalesced_and_a_long_answer_split_under_4096(
    tg: TG,
) -> None:
    answer = "\n\n".join(
        f"Paragraph {i}: " + "lorem ipsum <dolor> & sit amet " * 12 for i in range(20)
    )
    answer += "\n\n```python\n" + "\n".join(f"print({i})" for i in range(50)) + "\n```\nEnd."
    tg.core.provider.script(Text(answer, deltas=400))
    await tg.start()
    await tg.api.push_message(ADMIN, "write a lot")
    last = await tg.answer(ADMIN, lambda c: c.params["text"].endswith("End."))
    final = await tg.api.wait_for(
        lambda c: c.method == "editMessageText" and c.params["text"].startswith("<b>✅ Done")
    )
    assert f"({len(answer)} characters)" in final.params["text"]
    edits = [c for c in tg.api.of("editMessageText", ADMIN)]
    starts = [c.at for c in edits]
    interval = tg.config.edit_interval_private
    assert all(b - a >= interval * 0.95 for a, b in itertools.pairwise(starts))
    assert len(edits) <= (starts[-1] - starts[0]) / interval + 2
    assert len(edits) < 400
    parts = [
        c.params["text"]
        for c in tg.api.of("sendMessage", ADMIN)
        if not c.params.get("disable_notification")
    ]
    assert len(parts) >= 3
    assert parts[-1] is last.params["text"]
    assert all(len(part.encode("utf-16-le")) // 2 <= 4096 for part in parts)
    assert all(part.count("<pre>") == part.count("</pre>") for part in parts)
    assert "Paragraph 0:" in parts[0]
    assert "Paragraph 19:" in "".join(parts)


async def test_retry_after_from_telegram_delays_the_next_edit_and_the_answer_still_arrives(
    tg: TG,
) -> None:
    tg.core.provider.script(Text("x " * 600, deltas=200))
    tg.api.fail_next("editMessageText", 429, retry_after=1)
    await tg.start()
    await tg.api.push_message(ADMIN, "go")
    await tg.answer(ADMIN)
    await tg.api.wait_for(
        lambda c: c.method == "editMessageText" and c.params["text"].startswith("<b>✅ Done")
    )
    edits = tg.api.of("editMessageText", ADMIN)
    refused = edits[0]
    assert refused.at <= edits[1].at - 1.0


async def test_an_answer_past_the_document_threshold_is_sent_as_a_markdown_document(
    tg: TG,
) -> None:
    tg.core.provider.script(Text("# Report\n\n" + "word " * 300))
    await tg.start(document_threshold=500)
    await tg.api.push_message(ADMIN, "report please")
    document = await tg.api.wait_for(lambda c: c.method == "sendDocument")
    name, data = document.files["document"]
    assert name == "answer.md"
    assert data.decode() == ("# Report\n\n" + "word " * 300).strip()
    assert "as a document" in document.params["caption"]
