"""Usage, cost and limits through `piano run` (the real codex, the fake provider, which reports
token usage), from Telegram: ``/usage`` totals the turns and tokens the provider reported and
prices them with ``[prices."gpt-5.5"]``; a message past ``[limits] turns_per_day`` gets the
polite refusal, is kept in the store, and never reaches the model."""

from __future__ import annotations

import os
import sqlite3
from typing import Any

import aiohttp
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.acceptance.daemon import daemon_running, write_config
from tests.acceptance.test_surfaces import AUTH, WEB_ENV, web_base, web_config
from tests.fakes.responses_provider import USAGE, CodexDirs, FakeResponsesProvider, Text
from tests.telegram.fake_bot_api import Call, FakeBotApi
from tests.web.conftest import TOKEN
from tests.web.test_browser import run, text_in, until

pytestmark = pytest.mark.anyio

USER = 1002

PRICES = """
[prices."gpt-5.5"]
input = 1.0
cached_input = 0.5
output = 10.0
"""

LIMITS = f"""
[telegram]
base_url = "{{base_url}}"
users = {{{{ "{USER}" = "user" }}}}

[limits]
turns_per_day = 1
""" + PRICES.replace("{", "{{").replace("}", "}}")


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


async def test_the_dashboards_usage_panel_shows_each_users_turns_tokens_and_cost(
    dirs: CodexDirs, browser: WebDriver
) -> None:
    async with FakeResponsesProvider() as provider:
        config = web_config(dirs, provider, PRICES)
        async with (
            daemon_running(config, dirs.root / "state" / "chat.sock", env=WEB_ENV),
            aiohttp.ClientSession(headers=AUTH) as session,
        ):
            base = web_base(config)
            await run(browser.get, f"{base}/dashboard#token={TOKEN}")
            await until(browser, text_in("status", "live"))
            body = {"conversation": "panel", "text": "count me", "user": "ada"}
            async with session.post(f"{base}/api/messages", json=body) as sent:
                assert sent.status in (200, 202), await sent.text()
            await until(browser, text_in("usage", "ada"))
            row = await run(
                browser.find_element,
                By.CSS_SELECTOR,
                '#usage tr[data-period="today"][data-kind="user"][data-name="ada"]',
            )
            cells = [cell.text for cell in await run(row.find_elements, By.TAG_NAME, "td")]
            async with session.get(f"{base}/api/usage") as answered:
                assert answered.status == 200
                reports = await answered.json()
    [ada] = [line for line in reports["today"]["users"] if line["name"] == "ada"]
    tokens = USAGE["total_tokens"] * len(provider.requests)  # type: ignore[operator]
    assert (ada["turns"], ada["tokens"]) == (1, tokens)
    assert ada["cost"] > 0
    assert cells == ["user", "ada", "1", f"{tokens:,}", f"${ada['cost']:.4f}"]
