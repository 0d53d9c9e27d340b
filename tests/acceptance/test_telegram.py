"""Telegram keeps its promises across outages and crashes, through the running daemon.

`piano run` with the real codex and the fake model provider, its Telegram surface talking to
the Bot API stand-in (`FakeBotApi`), which drops connections (`outage`), answers 502, 429 or
400 when told to, and enforces Telegram's rules for messages. What is promised:

- an answer is retried until Telegram takes it — through connection errors, a 502, an outage,
  any number of 429s (each `retry_after` waited) and a restart of the daemon — and a chat is
  told when Telegram refuses one for good;
- the daemon starts while the Bot API is unreachable, shows the surface as down in
  ``piano status``, and the surface comes up when Telegram does; polling resumes within about
  two seconds of the Bot API coming back;
- one chat waiting on Codex does not hold up the others;
- after a crash, the turn that was running is closed in its status message and the user told,
  and a message accepted before the crash is answered (with the daemon's start-up recovery).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest

from tests.acceptance.daemon import PIANO, daemon_running, write_config
from tests.fakes.responses_provider import CodexDirs, FakeResponsesProvider, Hang, Text
from tests.telegram.fake_bot_api import Call, FakeBotApi

pytestmark = pytest.mark.anyio

USER = 1001


@contextlib.asynccontextmanager
async def telegram_daemon(
    dirs: CodexDirs, provider: FakeResponsesProvider, api: FakeBotApi, *, connected: bool = True
) -> AsyncIterator[anyio.abc.Process]:
    """`piano run` with Telegram enabled against `api`; entered once the surface polls the
    Bot API (`connected`) or, if not, once the daemon is up."""
    section = f'[telegram]\nbase_url = "{api.base_url}"\nusers = {{ "{USER}" = "admin" }}\n'
    config = write_config(dirs, provider, section)
    env = {**os.environ, "PIANO_TELEGRAM_TOKEN": api.token}
    polls = len(api.of("getUpdates"))
    async with daemon_running(config, dirs.root / "state" / "chat.sock", env) as daemon:
        if connected:
            await api.wait_for(
                lambda c: c.method == "getUpdates" and len(api.of("getUpdates")) > polls,
                timeout=60,
            )
        yield daemon


def says(text: str) -> Callable[[Call], bool]:
    """A sendMessage call that carries `text` (an answer, not a status message)."""
    return lambda c: (
        c.method == "sendMessage"
        and text in str(c.params.get("text"))
        and not c.params.get("disable_notification")
    )


def edited_to(text: str) -> Callable[[Call], bool]:
    """An edit of a message (the status message) to a text that contains `text`."""
    return lambda c: c.method == "editMessageText" and text in str(c.params.get("text"))


def with_text(text: str) -> Callable[[dict[str, Any]], bool]:
    return lambda params: text in str(params.get("text"))


def shown(api: FakeBotApi, text: str) -> list[str]:
    """The bot's messages in the user's chat, as they read now, that contain `text`."""
    return [
        str(m.get("text"))
        for (chat, _), m in api.messages.items()
        if chat == USER and m["from"]["id"] != USER and text in str(m.get("text"))
    ]


async def stopped_during_an_outage(
    dirs: CodexDirs, provider: FakeResponsesProvider, api: FakeBotApi, at: Callable[[Call], bool]
) -> None:
    """A user says hello; Telegram goes away at the first call matching `at`, and the daemon
    is stopped (SIGTERM) while it is away; then Telegram comes back."""
    async with telegram_daemon(dirs, provider, api):
        api.outage_from(at)
        await api.push_message(USER, "hello", user_id=USER)
        await api.wait_until(lambda: bool(api.dropped), timeout=60)
    await api.end_outage()


async def piano_status(dirs: CodexDirs) -> str:
    done = await anyio.run_process(
        [*PIANO, "status", "--config", str(dirs.root / "piano.toml")], check=False
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


async def test_an_answer_outlives_an_outage_and_a_502_and_the_status_then_says_done(
    dirs: CodexDirs,
) -> None:
    async with FakeBotApi() as api, FakeResponsesProvider() as provider:
        provider.script(Text("The answer survives the outage"))
        async with telegram_daemon(dirs, provider, api):
            api.outage_from(says("survives"))
            await api.push_message(USER, "hello", user_id=USER)
            await api.wait_dropped("sendMessage", 4, timeout=60)  # ~8 s of Telegram away
            api.fail_next("sendMessage", 502, description="Bad Gateway", when=with_text("surv"))
            await api.end_outage()
            await api.wait_for(says("survives"), timeout=60)
            await api.wait_for(edited_to("✅ Done"), timeout=60)
            assert shown(api, "The answer survives the outage") == [
                "The answer survives the outage"
            ]
            assert shown(api, "⏳") == []


async def test_an_answer_waits_out_every_429_in_a_row_and_is_delivered(dirs: CodexDirs) -> None:
    async with FakeBotApi() as api, FakeResponsesProvider() as provider:
        provider.script(Text("Patience pays"))
        async with telegram_daemon(dirs, provider, api):
            api.fail_next("sendMessage", 429, retry_after=1, count=5, when=with_text("Patience"))
            await api.push_message(USER, "hello", user_id=USER)
            await api.wait_for(says("Patience pays"), timeout=60)
            tries = [c.at for c in api.calls if says("Patience")(c)]
            assert len(tries) == 6
            assert all(b - a >= 0.95 for a, b in itertools.pairwise(tries)), tries
            assert shown(api, "Patience pays") == ["Patience pays"]


async def test_a_chat_is_told_when_telegram_refuses_an_answer_for_good(dirs: CodexDirs) -> None:
    async with FakeBotApi() as api, FakeResponsesProvider() as provider:
        provider.script(Text("Refused words"), Text("Still here"))
        async with telegram_daemon(dirs, provider, api):
            api.fail_next(
                "sendMessage",
                400,
                description="Bad Request: message is too long",
                when=with_text("Refused words"),
            )
            await api.push_message(USER, "hello", user_id=USER)
            told = await api.wait_for(says("Telegram refused a message"), timeout=60)
            assert "message is too long" in told.params["text"].lower()
            await api.push_message(USER, "again", user_id=USER)
            await api.wait_for(says("Still here"), timeout=60)


@pytest.mark.parametrize("away_from", ["the answer", "the status message's last edit"])
async def test_what_telegram_missed_before_the_daemon_stopped_is_done_by_the_next_start(
    dirs: CodexDirs, away_from: str
) -> None:
    answer = "Finished while Telegram was away"
    async with FakeBotApi() as api, FakeResponsesProvider() as provider:
        provider.script(Text(answer))
        at = says(answer) if away_from == "the answer" else edited_to("✅ Done")
        await stopped_during_an_outage(dirs, provider, api, at)
        if away_from != "the answer":  # (the answer may be sent before or after the edit)
            assert shown(api, "⏳")  # the status message could not say the turn ended
        async with telegram_daemon(dirs, provider, api):
            await api.wait_for(says(answer), timeout=60)
            await api.wait_for(edited_to("✅ Done"), timeout=60)
        assert shown(api, answer) == [answer]
        assert shown(api, "⏳") == []


async def test_the_daemon_starts_while_the_bot_api_is_down_and_telegram_comes_up_with_it(
    dirs: CodexDirs,
) -> None:
    async with FakeBotApi() as api, FakeResponsesProvider() as provider:
        provider.script(Text("Telegram is up"))
        await api.outage()
        async with telegram_daemon(dirs, provider, api, connected=False):
            await api.wait_dropped("getMe", 2, timeout=60)
            status = await piano_status(dirs)
            assert "telegram bot 123456 (polling), DOWN: the Bot API is unreachable" in status
            await api.end_outage()
            await api.wait_for(lambda c: c.method == "setMyCommands", timeout=60)
            await api.push_message(USER, "hello", user_id=USER)
            await api.wait_for(says("Telegram is up"), timeout=60)
            assert "telegram bot 123456 (polling), up" in await piano_status(dirs)


async def test_polling_resumes_within_two_seconds_of_the_bot_api_coming_back(
    dirs: CodexDirs,
) -> None:
    async with FakeBotApi() as api, FakeResponsesProvider() as provider:
        provider.script(Text("Back again"))
        async with telegram_daemon(dirs, provider, api):
            await api.outage()
            await api.wait_dropped("getUpdates", 6, timeout=60)
            assert "DOWN: polling fails" in await piano_status(dirs)
            back = anyio.current_time()
            await api.end_outage()
            await api.push_message(USER, "hello", user_id=USER)
            await api.wait_for(lambda c: c.method == "getUpdates" and c.at > back, timeout=60)
            assert anyio.current_time() - back < 3.5  # the back-off's cap is 2 s (+20 % jitter)
            await api.wait_for(says("Back again"), timeout=60)


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()]


async def test_a_chat_waiting_on_codex_does_not_hold_up_the_others(dirs: CodexDirs) -> None:
    async with FakeBotApi() as api, FakeResponsesProvider() as provider:
        provider.script(Text("First in line"), Text("Second in line"))
        async with telegram_daemon(dirs, provider, api) as daemon:
            [codex] = _children(daemon.pid)
            # codex and the bubblewrap around it: turn/start waits as long as Codex does
            os.killpg(codex, signal.SIGSTOP)
            try:
                await api.push_message(USER, "hello", user_id=USER)
                other = 1002
                await api.push_message(other, "/help", user_id=other)
                await api.wait_for(
                    lambda c: c.method == "sendMessage" and c.params.get("chat_id") == other,
                    timeout=30,
                )
            finally:
                os.killpg(codex, signal.SIGCONT)
            await api.wait_for(says("First in line"), timeout=60)


async def test_after_a_crash_the_running_turn_is_closed_and_the_queued_message_answered(
    dirs: CodexDirs,
) -> None:
    """Needs the daemon's start-up recovery (closes the killed turn, runs what is pending)."""
    async with FakeBotApi() as api, FakeResponsesProvider() as provider:
        provider.script(Hang())
        async with telegram_daemon(dirs, provider, api) as daemon:
            await api.push_message(USER, "a long job", user_id=USER)
            await api.wait_for(
                lambda c: c.method == "sendMessage" and "⏳" in str(c.params.get("text")),
                timeout=60,
            )
            await api.push_message(USER, "and then this", user_id=USER)
            await api.wait_for(edited_to("queued"), timeout=60)
            daemon.kill()
            await daemon.wait()
        provider.script(Text("Answer to the queued one"))
        async with telegram_daemon(dirs, provider, api):
            await api.wait_for(says("Answer to the queued one"), timeout=90)
            await api.wait_for(edited_to("Interrupted"), timeout=60)
            assert shown(api, "the daemon stopped")
            # The next turn's status message, if it was shown before its answer, says Done.
            await api.wait_until(lambda: shown(api, "⏳") == [], timeout=60)
