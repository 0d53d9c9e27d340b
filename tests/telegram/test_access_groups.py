"""Who the bot answers: the allowlist, groups (mentioned or replied to), forum topics."""

from __future__ import annotations

import pytest

from schemas import events as ev
from tests.fakes.responses_provider import Text
from tests.telegram.conftest import ADMIN, GROUP, STRANGER, TG, USER
from tests.telegram.fake_bot_api import BOT_USERNAME

pytestmark = pytest.mark.anyio


async def test_a_stranger_gets_one_polite_refusal_an_audit_entry_and_no_turn(tg: TG) -> None:
    tg.core.provider.script(Text("for the admin"))
    await tg.start()
    first = await tg.api.push_message(STRANGER, "let me in", user_id=STRANGER)
    await tg.api.push_message(STRANGER, "please", user_id=STRANGER)
    refusal = await tg.answer(STRANGER)
    assert "Sorry" in refusal.params["text"]
    assert str(STRANGER) in refusal.params["text"]
    assert refusal.params["reply_parameters"]["message_id"] == first["message"]["message_id"]
    await tg.api.push_message(ADMIN, "hello")
    await tg.answer(ADMIN, lambda c: c.params["text"] == "for the admin")
    assert len(tg.api.of("sendMessage", STRANGER)) == 1
    assert [entry[:4] for entry in tg.audit()] == [
        (STRANGER, STRANGER, "message", "refused"),
        (STRANGER, STRANGER, "message", "refused"),
    ]
    assert all(
        not isinstance(e, ev.TurnStarted) or "let me" not in e.interaction.text
        for e in tg.core.events.all
    )


async def test_in_a_group_only_mentions_and_replies_are_answered_with_recent_context(
    tg: TG,
) -> None:
    tg.core.provider.script(Text("first answer"), Text("second answer"))
    await tg.start()
    for i in range(5):
        await tg.api.push_message(GROUP, f"chatter {i}", user_id=STRANGER, first_name="Bob")
    await tg.api.push_message(GROUP, f"@{BOT_USERNAME} what do you think?", user_id=USER)
    answer = await tg.answer(GROUP, lambda c: c.params["text"] == "first answer")
    started = [e for e in tg.core.events.all if isinstance(e, ev.TurnStarted)]
    assert len(started) == 1
    text = started[0].interaction.text
    assert "chatter 0" not in text
    assert "chatter 1" not in text
    assert "Bob: chatter 2\nBob: chatter 3\nBob: chatter 4" in text
    assert text.endswith("Ada asks you: what do you think?")
    await tg.api.push_message(GROUP, "not for the bot", user_id=USER)
    await tg.api.push_message(
        GROUP, "and you?", user_id=USER, reply_to=answer_id(tg, GROUP, "first answer")
    )
    await tg.answer(GROUP, lambda c: c.params["text"] == "second answer")
    started = [e for e in tg.core.events.all if isinstance(e, ev.TurnStarted)]
    assert len(started) == 2
    assert "Ada: not for the bot" in started[1].interaction.text
    assert "chatter" not in started[1].interaction.text
    assert answer.params["reply_parameters"]["message_id"]


def answer_id(tg: TG, chat_id: int, text: str) -> int:
    [message_id] = [
        key[1] for key, m in tg.api.messages.items() if key[0] == chat_id and m.get("text") == text
    ]
    return message_id


async def test_forum_topics_are_separate_threads_answered_in_their_topic(tg: TG) -> None:
    tg.api.forums.add(GROUP)
    tg.core.provider.script(Text("answer in 7"), Text("answer in 9"))
    await tg.start()
    await tg.api.push_message(GROUP, f"@{BOT_USERNAME} in seven", topic=7, user_id=ADMIN)
    seven = await tg.answer(GROUP, lambda c: c.params["text"] == "answer in 7")
    await tg.api.push_message(GROUP, f"@{BOT_USERNAME} in nine", topic=9, user_id=ADMIN)
    nine = await tg.answer(GROUP, lambda c: c.params["text"] == "answer in 9")
    assert seven.params["message_thread_id"] == 7
    assert nine.params["message_thread_id"] == 9
    threads = {
        key.conversation: thread
        for key, thread in tg.core.directory.threads.items()
        if key.surface == "telegram"
    }
    assert set(threads) == {f"{GROUP}:7", f"{GROUP}:9"}
    assert threads[f"{GROUP}:7"] != threads[f"{GROUP}:9"]
    statuses = [c for c in tg.api.of("sendMessage", GROUP) if c.params.get("disable_notification")]
    assert {c.params["message_thread_id"] for c in statuses} <= {7, 9}
