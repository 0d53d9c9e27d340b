"""The daemon's chat commands (`piano.commands`) through `piano run`: the same command typed in
`piano chat`, the web chat's API and Telegram is run by the daemon — never sent to the model —
and answers in that chat; Telegram's command menu lists them under Telegram's rules; owner-only
roles follow each surface (the terminal's user, a Telegram admin, a web token holder)."""

from __future__ import annotations

import aiohttp
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver

from tests.acceptance.daemon import chat, daemon_running
from tests.acceptance.test_surfaces import AUTH, WEB_ENV, web_base, web_config
from tests.fakes.responses_provider import CodexDirs, FakeResponsesProvider
from tests.telegram.fake_bot_api import FakeBotApi
from tests.web.conftest import TOKEN
from tests.web.test_browser import run, text_in, until

pytestmark = pytest.mark.anyio

ADMIN = 1001
MEMBER = 1002


async def test_a_chat_command_is_run_by_the_daemon_on_every_surface_and_never_reaches_the_model(
    dirs: CodexDirs,
) -> None:
    async with FakeBotApi() as api, FakeResponsesProvider() as provider:
        section = (
            f'[telegram]\nbase_url = "{api.base_url}"\n'
            f'users = {{ "{ADMIN}" = "admin", "{MEMBER}" = "user" }}\n'
        )
        config = web_config(dirs, provider, section)
        env = {**WEB_ENV, "PIANO_TELEGRAM_TOKEN": api.token}
        state = dirs.root / "state"
        async with (
            daemon_running(config, state / "chat.sock", env=env),
            aiohttp.ClientSession() as session,
        ):
            terminal = await chat(config, "/whoami", "--conversation", "mine")
            base = web_base(config)
            async with session.get(f"{base}/api/commands", headers=AUTH) as listed:
                assert listed.status == 200
                names = [c["name"] for c in (await listed.json())["commands"]]
            body = {"text": "/WhoAmI", "conversation": "web-one", "user": "ada"}
            async with session.post(f"{base}/api/commands", json=body, headers=AUTH) as ran:
                assert ran.status == 200, await ran.text()
                web = (await ran.json())["reply"]
            body = {"text": "/nosuchcommand", "conversation": "web-one"}
            async with session.post(f"{base}/api/commands", json=body, headers=AUTH) as unknown:
                assert unknown.status == 404
            async with session.post(f"{base}/api/commands", json=body) as anonymous:
                assert anonymous.status == 401
            await api.wait_for(lambda c: c.method == "setMyCommands", timeout=60)
            await api.push_message(ADMIN, "/whoami", user_id=ADMIN)
            admin = await api.wait_for(
                lambda c: c.method == "sendMessage" and "surface: telegram" in str(c.params),
                timeout=60,
            )
            await api.push_message(MEMBER, "/whoami", user_id=MEMBER)
            member = await api.wait_for(
                lambda c: (
                    c.method == "sendMessage" and f"telegram:{MEMBER}" in str(c.params.get("text"))
                ),
                timeout=60,
            )
            # an owner-only command from a user who is no admin is refused before it runs
            await api.push_message(MEMBER, "/restartcodex", user_id=MEMBER)
            await api.wait_for(
                lambda c: (
                    c.method == "sendMessage"
                    and int(c.params["chat_id"]) == MEMBER
                    and "/restartcodex is for the daemon's owner only." in str(c.params["text"])
                ),
                timeout=60,
            )
    assert "surface: terminal" in terminal, terminal
    assert "conversation: mine" in terminal
    assert "role: owner" in terminal
    assert "whoami" in names
    assert "surface: web" in web
    assert "user: ada" in web
    assert "conversation: web-one" in web
    admin_text = str(admin.params["text"])
    assert f"user: telegram:{ADMIN}" in admin_text
    assert "role: owner" in admin_text
    assert "role: user" in str(member.params["text"])
    assert "whoami" in api.commands  # the menu Telegram accepted, under its naming rules
    assert provider.requests == [], "a chat command reached the model"


async def test_a_command_typed_in_the_web_chat_is_answered_above_the_box_not_sent(
    dirs: CodexDirs, browser: WebDriver
) -> None:
    async with FakeResponsesProvider() as provider:
        config = web_config(dirs, provider)
        async with daemon_running(config, dirs.root / "state" / "chat.sock", env=WEB_ENV):
            await run(browser.get, f"{web_base(config)}/chat#token={TOKEN}")
            await until(browser, text_in("status", "live"))
            box = await run(browser.find_element, By.ID, "text")
            await run(box.send_keys, "/whoami" + Keys.ENTER)
            await until(browser, text_in("command-replies", "surface: web"))
            shown = await run(lambda: browser.find_element(By.ID, "command-replies").text)
            messages = await run(lambda: browser.find_element(By.ID, "messages").text)
    assert "role: owner" in shown
    assert "/whoami" not in messages
    assert provider.requests == []
