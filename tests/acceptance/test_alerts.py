"""The owner is told on their surface when codex keeps failing or the provider is down — once
per incident, and again when it is over — through `piano run` with the real codex, the fake
model provider and the Telegram surface against the Bot API stand-in (the owner: the admin
user's private chat), plus a connected `piano chat` (the terminal's owner)."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from tests.acceptance.daemon import daemon_running, write_config
from tests.acceptance.test_codex_peer import codex_pid
from tests.acceptance.test_surfaces import terminal
from tests.fakes.responses_provider import CodexDirs, FakeResponsesProvider, Text
from tests.telegram.fake_bot_api import FakeBotApi

pytestmark = pytest.mark.anyio

OWNER = 1001
"""The admin user: alerts go to their private chat."""
USER = 1002
"""A user who is not an admin: never alerted."""


@contextlib.asynccontextmanager
async def owner_daemon(
    dirs: CodexDirs, provider: FakeResponsesProvider, api: FakeBotApi
) -> AsyncIterator[Path]:
    """`piano run` with Telegram (the owner: `OWNER`, an admin) and alerts after 3 codex
    failures, checking every half second; its configuration file."""
    section = (
        f'[telegram]\nbase_url = "{api.base_url}"\n'
        f'users = {{ "{OWNER}" = "admin", "{USER}" = "user" }}\n'
        "[alerts]\ncodex_failures = 3\ncheck_interval = 0.5\n"
    )
    config = write_config(dirs, provider, section)
    env = {**os.environ, "PIANO_TELEGRAM_TOKEN": api.token}
    async with daemon_running(config, dirs.root / "state" / "chat.sock", env):
        yield config


def alerts_to(api: FakeBotApi, text: str) -> list[tuple[int, str]]:
    """The alerts sent (chat, text) whose text contains `text`."""
    return [
        (int(c.params["chat_id"]), str(c.params["text"]))
        for c in api.of("sendMessage")
        if text in str(c.params.get("text")) and str(c.params.get("text"))[:1] in "🚨✅"
    ]


def failed(api: FakeBotApi) -> int:
    """How many turns the owner was told failed."""
    return sum("The turn failed" in str(c.params.get("text")) for c in api.of("sendMessage"))


async def told_failed(api: FakeBotApi, n: int) -> None:
    """Wait until the owner was told that `n` turns failed."""
    await api.wait_until(lambda: failed(api) >= n, timeout=60)


async def test_codex_killed_again_and_again_is_one_alert_to_the_owner_and_one_when_it_works(
    dirs: CodexDirs,
) -> None:
    async with FakeBotApi() as api, FakeResponsesProvider(default=Text("all good")) as provider:
        async with (
            owner_daemon(dirs, provider, api) as config,
            terminal(config) as owner_terminal,
        ):
            await owner_terminal.until("Connected to thread")
            for _ in range(4):  # one more than it takes: still one alert
                old = await codex_pid(dirs)
                os.killpg(old, signal.SIGKILL)
                with anyio.fail_after(60):
                    while await codex_pid(dirs) in (old, 0):
                        pass
            await api.wait_for(
                lambda c: c.method == "sendMessage" and "Codex keeps failing" in str(c.params),
                timeout=60,
            )
            await owner_terminal.until(r"! Codex keeps failing: \d failures")
            # a turn that completes closes the incident (after the fourth kill's sign)
            await api.push_message(USER, "are you back?", user_id=USER)
            await api.wait_for(
                lambda c: c.method == "sendMessage" and "Codex is working again" in str(c.params),
                timeout=60,
            )
            await owner_terminal.until("✓ Codex is working again")
        opened = alerts_to(api, "Codex keeps failing")
        assert [chat for chat, _ in opened] == [OWNER], opened
        assert "the codex process stopped" in opened[0][1]
        closed = alerts_to(api, "Codex is working again")
        assert [chat for chat, _ in closed] == [OWNER], closed
        assert owner_terminal.shown.count("Codex keeps failing") == 1


async def test_a_provider_that_stops_is_one_alert_while_down_and_one_when_it_answers_again(
    dirs: CodexDirs,
) -> None:
    async with FakeBotApi() as api, FakeResponsesProvider(default=Text("all good")) as provider:
        async with owner_daemon(dirs, provider, api):
            await api.push_message(OWNER, "hello", user_id=OWNER)
            await api.wait_for(
                lambda c: c.method == "sendMessage" and "all good" in str(c.params), timeout=60
            )
            await provider.close()
            for n, text in enumerate(("are you there?", "still there?"), 1):
                await api.push_message(OWNER, text, user_id=OWNER)  # a turn that fails
                await told_failed(api, n)
            await api.wait_for(
                lambda c: (
                    c.method == "sendMessage" and "The model provider fake is down" in str(c.params)
                ),
                timeout=60,
            )
            await provider.start()
            await api.wait_for(
                lambda c: (
                    c.method == "sendMessage"
                    and "The model provider fake answers again" in str(c.params)
                ),
                timeout=60,
            )
        down = alerts_to(api, "The model provider fake is down")
        assert [chat for chat, _ in down] == [OWNER], down
        assert "cannot connect" in down[0][1]
        assert [chat for chat, _ in alerts_to(api, "fake answers again")] == [OWNER]
