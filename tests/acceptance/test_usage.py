"""Usage, cost and limits through `piano run` (the real codex, the fake provider, which reports
token usage), from Telegram: ``/usage`` totals the turns and tokens the provider reported and
prices them with ``[prices."gpt-5.5"]``; a message past ``[limits] turns_per_day`` gets the
polite refusal, is kept in the store, and never reaches the model."""

from __future__ import annotations

import os
import sqlite3
from typing import Any

import pytest

from tests.acceptance.daemon import daemon_running, write_config
from tests.fakes.responses_provider import USAGE, CodexDirs, FakeResponsesProvider, Text
from tests.telegram.fake_bot_api import Call, FakeBotApi

pytestmark = pytest.mark.anyio

USER = 1002

LIMITS = f"""
[telegram]
base_url = "{{base_url}}"
users = {{{{ "{USER}" = "user" }}}}

[limits]
turns_per_day = 1

[prices."gpt-5.5"]
input = 1.0
cached_input = 0.5
output = 10.0
"""


def _says(text: str) -> Any:
    return lambda c: (
        c.method in ("sendMessage", "editMessageText") and text in str(c.params.get("text"))
    )


async def test_usage_totals_priced_tokens_and_a_limit_refuses_politely_keeping_the_message(
    dirs: CodexDirs,
) -> None:
    async with FakeBotApi() as api, FakeResponsesProvider(Text("first answer")) as provider:
        config = write_config(dirs, provider, LIMITS.format(base_url=api.base_url))
        state = dirs.root / "state"
        env = {"PIANO_TELEGRAM_TOKEN": api.token}
        async with daemon_running(config, state / "chat.sock", env={**os.environ, **env}):
            await api.push_message(USER, "the first message", user_id=USER)
            await api.wait_for(_says("first answer"), timeout=60)
            answered = len(provider.requests)
            await api.push_message(USER, "the second message", user_id=USER)
            refusal: Call = await api.wait_for(_says("Sorry, you have used"), timeout=60)
            await api.push_message(USER, "/usage", user_id=USER)
            usage: Call = await api.wait_for(_says("Your usage today"), timeout=60)
    assert answered >= 1
    assert len(provider.requests) == answered, "the refused message reached the model"
    said = str(refusal.params["text"])
    assert "you have used your 1 turn for today; the limit resets at 00:00 UTC" in said
    with sqlite3.connect(state / "piano.db") as db:
        rows = db.execute("SELECT text, status FROM interactions ORDER BY created_at").fetchall()
    assert rows == [("the first message", "completed"), ("the second message", "failed")]
    cached: int = USAGE["input_tokens_details"]["cached_tokens"]  # type: ignore[index]
    given: int = USAGE["input_tokens"]  # type: ignore[assignment]
    output: int = USAGE["output_tokens"]  # type: ignore[assignment]
    tokens = USAGE["total_tokens"] * answered  # type: ignore[operator]
    cost = ((given - cached) * 1.0 + cached * 0.5 + output * 10.0) * answered / 1_000_000
    text = str(usage.params["text"])
    assert f"Your usage today (since 00:00 UTC): 1 turn, {tokens:,} tokens (${cost:,.4f})." in text
    assert "Your limits: 1 turn a day" in text
