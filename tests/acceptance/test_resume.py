"""Continue elsewhere, through `piano run`: a thread started by one `piano chat` conversation is
picked up by its id with `piano chat --thread`, whichever conversation opened it, and the
terminal's `/resume` names the ways to continue it (the terminal command, the web link, codex's
own thread id), and the web link opens that thread in the chat page, whose header offers the
same lines. An unknown id is one error line."""

from __future__ import annotations

import aiohttp
import anyio
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from piano.store import StoreReader
from tests.acceptance.daemon import PIANO, chat, daemon_running
from tests.acceptance.test_surfaces import AUTH, WEB_ENV, terminal, web_base, web_config
from tests.fakes.responses_provider import CodexDirs, FakeResponsesProvider, Text
from tests.web.conftest import TOKEN
from tests.web.test_browser import run, text_in, until

pytestmark = pytest.mark.anyio


async def test_piano_chat_thread_reaches_the_same_thread_and_resume_names_its_ids(
    dirs: CodexDirs,
) -> None:
    async with FakeResponsesProvider() as provider:
        provider.script(Text("first answer"), Text("second answer"))
        config = web_config(dirs, provider)
        state = dirs.root / "state"
        async with daemon_running(config, state / "chat.sock", env=WEB_ENV):
            assert "first answer" in await chat(config, "first", "--conversation", "one")
            with StoreReader(state / "piano.db") as reader:
                [started] = reader.threads()
            assert started.codex_thread_id, "codex's thread id was not stored"
            second = await chat(config, "second", "--thread", started.id)
            assert "second answer" in second
            async with terminal(config, "--thread", started.id) as shell:
                await shell.until(f"Connected to thread {started.id}")
                await shell.type("/resume")
                found = await shell.until(r"codex: codex resume (\S+)\n")
                await shell.type("/quit")
            unknown = await anyio.run_process(
                [*PIANO, "chat", "--config", str(config), "--thread", "no-such", "--message", "x"],
                check=False,
            )
    shown = shell.shown
    assert f"terminal: piano chat --thread {started.id}\n" in shown, shown
    assert f"web: {web_base(config)}/chat#thread={started.id}\n" in shown, shown
    assert found.group(1) == started.codex_thread_id
    assert unknown.returncode == 1
    assert unknown.stdout.decode().strip() == "! no thread 'no-such'", unknown.stdout
    with StoreReader(state / "piano.db") as reader:
        [stored] = reader.threads()
        texts = [i.text for i in reader.interactions(stored.id)]
    assert (stored.id, stored.surface, stored.conversation) == (started.id, "terminal", "one")
    assert texts == ["first", "second"]


async def test_the_web_link_opens_the_thread_and_its_header_shows_the_same_resume_lines(
    dirs: CodexDirs, browser: WebDriver
) -> None:
    async with FakeResponsesProvider() as provider:
        provider.script(Text("terminal answer"))
        config = web_config(dirs, provider)
        state = dirs.root / "state"
        async with (
            daemon_running(config, state / "chat.sock", env=WEB_ENV),
            aiohttp.ClientSession() as session,
        ):
            await chat(config, "from the terminal", "--conversation", "elsewhere")
            with StoreReader(state / "piano.db") as reader:
                [started] = reader.threads()
            base = web_base(config)
            async with session.get(f"{base}/api/threads/{started.id}/resume", headers=AUTH) as got:
                assert got.status == 200, await got.text()
                answered = await got.json()
                lines = answered["lines"]
            link = f"{base}/chat#thread={started.id}"
            assert f"web: {link}" in lines
            await run(browser.get, f"{link}&token={TOKEN}")
            await until(browser, text_in("status", "live"))
            await until(browser, text_in("messages", "terminal answer"))
            await run(lambda: browser.find_element(By.CSS_SELECTOR, "#resume summary").click())
            await until(browser, text_in("resume-lines", started.codex_thread_id or "?"))
            shown = await run(lambda: browser.find_element(By.ID, "resume-lines").text)
            settings = await run(lambda: browser.find_element(By.ID, "thread-settings").text)
    assert shown.splitlines() == lines
    assert answered["settings"] == "model: gpt-5.5, effort: default"  # /model, /effort
    assert settings == answered["settings"]
    assert lines == [
        f"terminal: piano chat --thread {started.id}",
        f"web: {link}",
        f"codex: codex resume {started.codex_thread_id}",
    ]
