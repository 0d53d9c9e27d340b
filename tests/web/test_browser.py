"""The pages in a real browser: headless Debian chromium driven by selenium, against the real
codex and the fake model provider. One browser for the module; every wait is a WebDriverWait
condition or an event, never a sleep."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from piano.threads import THREADS, ThreadKey, send_message
from piano.web import accept_streams, drop_clients
from schemas import events as ev
from tests.fakes.responses_provider import ExecCommand, Hang, Text
from tests.store.conftest import tool_approval
from tests.web.conftest import TOKEN, WebCore

pytestmark = pytest.mark.anyio

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"


async def until(driver: WebDriver, condition: Callable[[Any], Any], timeout: float = 30) -> Any:
    """Wait for a selenium condition without blocking the event loop serving the page."""
    return await asyncio.to_thread(WebDriverWait(driver, timeout).until, condition)


async def run(function: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.to_thread(function, *args)


def text_in(element_id: str, text: str) -> Callable[[Any], Any]:
    return ec.text_to_be_present_in_element((By.ID, element_id), text)


async def open_chat(driver: WebDriver, web: WebCore) -> None:
    await run(driver.get, f"{await web.base()}/chat#token={TOKEN}")
    await until(driver, text_in("status", "live"))


async def say(driver: WebDriver, text: str) -> None:
    def type_and_send() -> None:
        box = driver.find_element(By.ID, "text")
        box.clear()
        box.send_keys(text)
        driver.find_element(By.ID, "send-button").click()

    await run(type_and_send)


async def test_the_chat_streams_the_answer_and_runs_a_command_approved_by_a_click(
    browser: WebDriver, web_core: WebCore
) -> None:
    web_core.provider.script(Text("Hello from the fake model", deltas=4))
    await open_chat(browser, web_core)
    await say(browser, "hi there")
    await until(browser, text_in("messages", "Hello from the fake model"))
    assert "hi there" in await run(lambda: browser.find_element(By.ID, "messages").text)
    deltas = await run(browser.execute_script, "return piano.stream.counts['item.delta']")
    assert deltas >= 4
    assert "web:default" in await run(lambda: browser.find_element(By.ID, "threads").text)

    web_core.provider.script(
        ExecCommand("echo approved-by-a-click", require_escalated=True), Text("command ran")
    )
    first = "return document.querySelector('#messages [data-interaction]')"
    await run(browser.execute_script, f"window.firstAnswer = ({first.removeprefix('return ')})")
    await say(browser, "run the command")
    approve = await until(
        browser, ec.element_to_be_clickable((By.CSS_SELECTOR, ".approval .approve"))
    )
    assert "approved-by-a-click" in await run(
        lambda: browser.find_element(By.CSS_SELECTOR, ".approval").text
    )
    await run(approve.click)
    await until(browser, text_in("messages", "command ran"))
    output = await run(lambda: browser.find_element(By.CSS_SELECTOR, ".command .output").text)
    assert "approved-by-a-click" in output
    await until(browser, lambda d: not d.find_elements(By.CSS_SELECTOR, ".approval"))
    # the first answer was not redrawn while the second streamed (a selection in it survives)
    assert await run(browser.execute_script, f"{first} === window.firstAnswer")
    resolved = [e for e in web_core.events.all if isinstance(e, ev.ApprovalResolved)]
    assert [(e.decision, e.by) for e in resolved] == [("accept", "web")]


async def test_a_tool_call_approval_shows_the_tool_and_its_arguments(
    browser: WebDriver, web_core: WebCore
) -> None:
    web_core.provider.script(Text("ready"))
    await open_chat(browser, web_core)
    await say(browser, "hello")
    await until(browser, text_in("messages", "ready"))
    [started] = [e for e in web_core.events.all if isinstance(e, ev.TurnStarted)]
    web_core.publish(tool_approval(thread_id=started.thread_id, approval_id="tool-1"))
    await until(browser, text_in("approvals", "piano.web_fetch"))
    shown = await run(lambda: browser.find_element(By.ID, "approvals").text)
    assert 'Allow tool_call: piano.web_fetch {"url": "https://example.org/"}' in shown


async def test_a_dropped_connection_comes_back_and_the_replay_fills_the_gap(
    browser: WebDriver, web_core: WebCore
) -> None:
    web_core.provider.script(Text("first answer"), Text("answer given while away"))
    await open_chat(browser, web_core)
    await say(browser, "first")
    await until(browser, text_in("messages", "first answer"))

    surface = web_core.surface
    await accept_streams(surface, False)
    assert await drop_clients(surface, "restarting for a test") == 1
    await until(browser, text_in("status", "disconnected"))
    threads = web_core.system.whereis(THREADS)
    assert threads is not None
    interaction = ev.Interaction(id="away", text="while you were away", user="tester")
    await send_message(threads, ThreadKey("web", "default", "default"), interaction)
    await web_core.events.wait_for(
        lambda e: isinstance(e, ev.TurnCompleted) and e.interaction_id == "away"
    )
    text = await run(lambda: browser.find_element(By.ID, "messages").text)
    assert "answer given while away" not in text

    await accept_streams(surface, True)
    await until(browser, text_in("messages", "answer given while away"))
    await until(browser, text_in("status", "replayed"))
    replayed = await run(browser.execute_script, "return piano.stream.replayed")
    snapshots = await run(browser.execute_script, "return piano.stream.snapshots")
    assert replayed > 0
    assert snapshots == 1


async def test_the_dashboard_shows_the_tree_change_when_an_actor_is_killed(
    browser: WebDriver, web_core: WebCore
) -> None:
    await run(browser.get, f"{await web_core.base()}/dashboard#token={TOKEN}")
    row = '#tree li[data-child="threads"]'
    await until(
        browser, ec.text_to_be_present_in_element((By.CSS_SELECTOR, f"{row} > .restarts"), "0")
    )
    assert await run(
        lambda: browser.find_element(By.CSS_SELECTOR, '#tree li[data-child="web"]').text
    )
    threads = web_core.system.whereis(THREADS)
    assert threads is not None
    before = str(threads.id)
    assert (
        await run(lambda: browser.find_element(By.CSS_SELECTOR, f"{row} > .actor-id").text)
        == before
    )
    threads.exit("kill")
    await until(
        browser, ec.text_to_be_present_in_element((By.CSS_SELECTOR, f"{row} > .restarts"), "1")
    )
    after = await run(lambda: browser.find_element(By.CSS_SELECTOR, f"{row} > .actor-id").text)
    assert after != before
    await until(browser, text_in("recent-errors", "threads crashed"))


def keys(driver: WebDriver, *pressed: str, alt: bool = False) -> None:
    """Press keys on whatever has the focus (with Alt held, if asked)."""
    chain = ActionChains(driver)
    if alt:
        chain.key_down(Keys.ALT)
    chain.send_keys(*pressed)
    if alt:
        chain.key_up(Keys.ALT)
    chain.perform()


def focused(driver: WebDriver) -> dict[str, str]:
    facts: dict[str, str] = driver.execute_script(
        "const e = document.activeElement;"
        "return {id: e.id, key: e.dataset.key || '', tag: e.tagName};"
    )
    return facts


async def test_the_chat_is_usable_with_the_keyboard_alone_and_a_new_conversation_is_one_key(
    browser: WebDriver, web_core: WebCore
) -> None:
    web_core.provider.script(Text("first answer"), Text("second answer"))
    await open_chat(browser, web_core)
    assert (await run(focused, browser))["id"] == "text"  # the message box has the focus
    await run(keys, browser, "typed, not clicked", Keys.ENTER)
    await until(browser, text_in("messages", "first answer"))

    await run(lambda: keys(browser, "n", alt=True))  # a new conversation
    await until(browser, text_in("messages", "A new conversation"))
    assert (await run(focused, browser))["id"] == "text"
    await run(keys, browser, "in the new one", Keys.ENTER)
    await until(browser, text_in("messages", "second answer"))
    threads = await run(lambda: browser.find_element(By.ID, "threads").text)
    assert "web:default" in threads
    assert "web:chat-" in threads

    await run(lambda: keys(browser, "k", alt=True))  # to the conversation list
    assert (await run(focused, browser))["key"].startswith("thread:")
    await run(keys, browser, Keys.ARROW_DOWN, Keys.ENTER)
    await until(browser, text_in("messages", "first answer"))
    assert "second answer" not in await run(lambda: browser.find_element(By.ID, "messages").text)
    assert await run(lambda: browser.find_element(By.ID, "title").text) == "default"


def cdp(driver: WebDriver, command: str, params: dict[str, Any]) -> Any:
    """A Chrome DevTools command through chromedriver (the fixture's driver is a remote one)."""
    executor: Any = driver.command_executor
    executor.add_command("executeCdpCommand", "POST", "/session/$sessionId/goog/cdp/execute")
    return driver.execute("executeCdpCommand", {"cmd": command, "params": params})["value"]


async def test_dark_mode_follows_the_system(browser: WebDriver, web_core: WebCore) -> None:
    web_core.provider.script(Text("Some `code` and\n\n```python\nprint('dark')\n```\n"))
    dark = {"features": [{"name": "prefers-color-scheme", "value": "dark"}]}
    light = {"features": [{"name": "prefers-color-scheme", "value": "light"}]}
    await open_chat(browser, web_core)
    background = "return getComputedStyle(document.body).backgroundColor"
    assert await run(browser.execute_script, background) == "rgb(255, 255, 255)"
    try:
        await run(cdp, browser, "Emulation.setEmulatedMedia", dark)
        await until(browser, lambda d: d.execute_script(background) == "rgb(20, 23, 29)")
        await say(browser, "show me")
        await until(browser, ec.presence_of_element_located((By.CSS_SELECTOR, ".md pre code span")))
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        await run(browser.save_screenshot, str(ARTIFACTS / "chat-dark-1280.png"))
    finally:
        await run(cdp, browser, "Emulation.setEmulatedMedia", light)


async def test_the_progress_line_says_what_the_running_turn_is_doing(
    browser: WebDriver, web_core: WebCore
) -> None:
    hang = Hang()
    web_core.provider.script(hang)
    await open_chat(browser, web_core)
    await say(browser, "take your time")
    await until(browser, text_in("progress", "Thinking"))
    started = await web_core.events.wait_for(lambda e: isinstance(e, ev.TurnStarted))
    web_core.publish(
        ev.Notice(
            thread_id=started.thread_id,
            interaction_id=started.interaction_id,
            at=started.at,
            level="warning",
            message="the provider is busy",
            retrying=True,
        )
    )
    await until(browser, text_in("progress", "Retrying: the provider is busy"))
    hang.release()  # the response completes, empty
    await until(browser, text_in("progress", "Done in"))
