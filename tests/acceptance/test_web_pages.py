"""The chat page and the dashboard in real Chromium at desktop (1280 px) and phone (390 px)
width, through `piano run` with the real codex and the fake model provider (issue #16).

What is asserted is what a user sees: the answer's Markdown rendered (a heading, a table, a
highlighted code block with a copy button), the approval inside the viewport with its command
and reason, nothing wider than the screen, the conversation back after a reload and scrolled
to its end, the phone's conversation list as a drawer; on the dashboard, the tree node of a
SIGKILLed codex turning red and coming back with its restart count, one clean line in the
errors panel, the charts drawn (a running turn counted, then not), and the actor's view on
click. Every test writes screenshots to
``test-artifacts/web/`` (kept as artefacts; git-ignored).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec

from tests.acceptance.daemon import chat, daemon_running
from tests.acceptance.test_browser import descendants
from tests.acceptance.test_surfaces import AUTH, WEB_ENV, web_base, web_config
from tests.fakes.responses_provider import (
    CodexDirs,
    ExecCommand,
    FakeResponsesProvider,
    Hang,
    Text,
)
from tests.web.conftest import TOKEN
from tests.web.test_browser import run, say, text_in, until

pytestmark = pytest.mark.anyio

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"
DESKTOP = (1280, 900)
PHONE = (390, 844)

ANSWER = """## Release plan

| step | owner | when |
|------|-------|------|
| build | ci | today |
| ship | ops | tomorrow |

```python
def release(version: str) -> None:
    print(f"shipping {version} to every machine in the fleet, one region after another")
```

Read [the notes](https://example.org/notes) first.
"""

OVERFLOW = """() => {
  const root = document.documentElement;
  const wide = [...document.querySelectorAll('body *')].filter((e) => {
    const box = e.getBoundingClientRect();
    if (box.width === 0 || box.height === 0) return false;
    // inside a box that scrolls on its own (code, a table, a diff) is not the page scrolling
    for (let p = e.parentElement; p; p = p.parentElement) {
      const style = getComputedStyle(p);
      if (['auto', 'scroll'].includes(style.overflowX) && p !== document.body
          && p.id !== 'messages') return false;
      if (style.position === 'fixed' && getComputedStyle(p).visibility === 'hidden') return false;
    }
    const hidden = getComputedStyle(e).visibility === 'hidden';
    return !hidden && (box.right > window.innerWidth + 1 || box.left < -1);
  }).map((e) => e.tagName + '#' + e.id + '.' + e.className);
  return {scroll: root.scrollWidth, inner: window.innerWidth, wide: wide.slice(0, 5),
          messages: [document.getElementById('messages')?.scrollWidth,
                     document.getElementById('messages')?.clientWidth]};
}"""


SLID_IN = "return document.getElementById('sidebar').getBoundingClientRect().left >= 0"


def shot(driver: WebDriver, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    assert driver.save_screenshot(str(path)), path
    return path


async def resize(driver: WebDriver, size: tuple[int, int]) -> int:
    """Set the window size; the page's inner width."""
    await run(driver.set_window_size, *size)
    width: int = await run(driver.execute_script, "return window.innerWidth")
    assert size[0] - 20 <= width <= size[0], width
    return width


async def no_sideways_scrolling(driver: WebDriver) -> None:
    facts: dict[str, Any] = await run(driver.execute_script, f"return ({OVERFLOW})()")
    assert facts["scroll"] <= facts["inner"], facts
    assert facts["wide"] == [], facts
    if facts["messages"][0] is not None:
        assert facts["messages"][0] <= facts["messages"][1], facts


async def in_viewport(driver: WebDriver, selector: str) -> dict[str, float]:
    """The element's box, asserted to lie wholly inside the viewport."""
    box: dict[str, float] = await run(
        driver.execute_script,
        "const r = document.querySelector(arguments[0]).getBoundingClientRect();"
        "return {top: r.top, bottom: r.bottom, left: r.left, right: r.right,"
        " height: window.innerHeight, width: window.innerWidth};",
        selector,
    )
    assert 0 <= box["top"] < box["bottom"] <= box["height"], box
    assert 0 <= box["left"] < box["right"] <= box["width"], box
    return box


async def test_the_chat_renders_markdown_pins_the_approval_and_holds_at_desktop_and_phone_width(
    dirs: CodexDirs, browser: WebDriver
) -> None:
    async with FakeResponsesProvider() as provider:
        provider.script(
            Text(ANSWER, deltas=6),
            *[
                Text(f"Answer number {n}. " + "Some words to fill the page. " * 12)
                for n in range(6)
            ],
            ExecCommand("echo pinned-approval", require_escalated=True, justification="To ship."),
            Text("command ran"),
            ExecCommand("echo from-the-phone", require_escalated=True, justification="Phone."),
            Text("declined, fine"),
        )
        config = web_config(dirs, provider)
        async with daemon_running(config, dirs.root / "state" / "chat.sock", env=WEB_ENV):
            await resize(browser, DESKTOP)
            await run(browser.get, f"{web_base(config)}/chat#token={TOKEN}")
            await until(browser, text_in("status", "live"))
            await say(browser, "what is the plan?")
            heading = await until(
                browser, ec.presence_of_element_located((By.CSS_SELECTOR, ".agent.md h2"))
            )
            assert await run(lambda: heading.text) == "Release plan"
            cells = await run(
                lambda: [c.text for c in browser.find_elements(By.CSS_SELECTOR, ".md td")]
            )
            assert cells[:3] == ["build", "ci", "today"]
            keyword = await run(
                lambda: browser.find_element(By.CSS_SELECTOR, ".md pre code span.k").text
            )
            assert keyword == "def"
            assert await run(lambda: browser.find_element(By.CSS_SELECTOR, ".md pre .copy").text)
            link = await run(lambda: browser.find_element(By.CSS_SELECTOR, ".md a"))
            assert await run(link.get_attribute, "rel") == "noopener noreferrer"
            await until(browser, text_in("progress", "Done in"))
            await no_sideways_scrolling(browser)
            await run(shot, browser, "chat-markdown-1280")

            for n in range(6):  # a conversation longer than the screen
                await say(browser, f"question {n}")
                await until(browser, text_in("messages", f"Answer number {n}."))
            await say(browser, "ship it")
            await until(
                browser, ec.visibility_of_element_located((By.CSS_SELECTOR, "#approvals .approval"))
            )
            await in_viewport(browser, "#approvals .approval")
            await in_viewport(browser, "#approvals .approval .approve")
            shown = await run(lambda: browser.find_element(By.ID, "approvals").text)
            assert "Allow command:" in shown
            assert "echo pinned-approval" in shown
            assert "To ship." in shown
            assert "expires in 4m" in shown or "expires in 5m" in shown, shown
            await until(browser, text_in("progress", "Waiting for your approval"))
            await no_sideways_scrolling(browser)
            await run(shot, browser, "chat-approval-1280")

            def approve_with_the_keyboard() -> None:
                ActionChains(browser).key_down(Keys.ALT).send_keys("a").key_up(Keys.ALT).perform()

            await run(approve_with_the_keyboard)
            await until(browser, text_in("messages", "command ran"))
            await until(browser, lambda d: not d.find_elements(By.CSS_SELECTOR, ".approval"))
            output = await run(
                lambda: browser.find_element(By.CSS_SELECTOR, ".command .output").text
            )
            assert "pinned-approval" in output
            title = await run(lambda: browser.find_element(By.ID, "title").text)

            await resize(browser, PHONE)
            await run(browser.refresh)
            await until(browser, text_in("status", "live"))
            await until(browser, text_in("messages", "command ran"))
            assert await run(lambda: browser.find_element(By.ID, "title").text) == title
            at_end = await run(
                browser.execute_script,
                "const m = document.getElementById('messages');"
                "return m.scrollHeight - m.scrollTop - m.clientHeight;",
            )
            assert at_end <= 2, at_end
            sidebar = await run(lambda: browser.find_element(By.ID, "sidebar"))
            assert not await run(sidebar.is_displayed)
            await no_sideways_scrolling(browser)
            await run(shot, browser, "chat-390")

            await run(lambda: browser.find_element(By.ID, "drawer-toggle").click())
            await until(browser, ec.visibility_of_element_located((By.ID, "threads")))
            await until(browser, lambda d: d.execute_script(SLID_IN))  # the drawer's slide ends
            assert "web:default" in await run(lambda: browser.find_element(By.ID, "threads").text)
            await no_sideways_scrolling(browser)
            await run(shot, browser, "chat-drawer-390")
            await run(lambda: browser.find_element(By.CSS_SELECTOR, "#threads li button").click())
            await until(browser, lambda d: not d.find_element(By.ID, "sidebar").is_displayed())

            await say(browser, "one more from the phone")
            await until(
                browser, ec.visibility_of_element_located((By.CSS_SELECTOR, "#approvals .approval"))
            )
            await in_viewport(browser, "#approvals .approval .decline")
            await no_sideways_scrolling(browser)
            await run(shot, browser, "chat-approval-390")
            for width in (360, 430):  # the narrowest and widest phones hold too
                await resize(browser, (width, 780))
                await in_viewport(browser, "#approvals .approval .decline")
                await no_sideways_scrolling(browser)
                await run(shot, browser, f"chat-approval-{width}")
            await run(lambda: browser.find_element(By.CSS_SELECTOR, ".approval .decline").click())
            await until(browser, text_in("messages", "declined, fine"))
            await resize(browser, DESKTOP)
            await run(lambda: browser.find_element(By.ID, "show-transcript").click())
            transcript = await until(
                browser, ec.visibility_of_element_located((By.CSS_SELECTOR, "#transcript h1"))
            )
            assert await run(lambda: transcript.text)
            assert "what is the plan?" in await run(
                lambda: browser.find_element(By.ID, "transcript").text
            )
            await run(shot, browser, "chat-transcript-1280")
            await run(lambda: browser.find_element(By.CSS_SELECTOR, "dialog button").click())
    assert (ARTIFACTS / "chat-approval-390.png").stat().st_size > 0


async def js(driver: WebDriver, script: str, *args: Any) -> Any:
    return await run(driver.execute_script, script, *args)


def codex_pid(daemon_pid: int) -> int:
    [pid] = [
        pid
        for pid in descendants(daemon_pid)
        if Path(f"/proc/{pid}/comm").read_text().strip() == "codex"
    ]
    return pid


async def test_the_dashboard_shows_a_killed_codex_turn_red_come_back_and_one_clean_error_line(
    dirs: CodexDirs, browser: WebDriver
) -> None:
    async with FakeResponsesProvider() as provider:
        hang = Hang()
        provider.script(Text("codex is up"), hang)
        config = web_config(dirs, provider)
        fast = "dashboard_interval = 0.2\n[tools.mcp]"  # frames often enough to see the restart
        config.write_text(config.read_text().replace("[tools.mcp]", fast, 1))
        async with daemon_running(config, dirs.root / "state" / "chat.sock", env=WEB_ENV) as daemon:
            await chat(config, "start codex")
            await resize(browser, DESKTOP)
            await run(browser.get, f"{web_base(config)}/dashboard#token={TOKEN}")
            codex = '#tree li[data-child="codex"]'
            await until(
                browser,
                ec.text_to_be_present_in_element((By.CSS_SELECTOR, f"{codex} > .status"), "wait"),
            )
            # the page redraws five times a second: read it in one script, not element by element
            charts = await js(
                browser,
                "return [...document.querySelectorAll('#charts .chart')]"
                ".map((c) => c.dataset.chart)",
            )
            assert charts == ["events", "in_flight", "latency", "turns", "tokens", "threads"]
            tokens = await js(
                browser, "return document.querySelector('[data-chart=tokens] .value').textContent"
            )
            assert int(tokens) > 0
            # a supervisor's subtree folds away and comes back
            toggle = "#tree li[data-child='events'] > .toggle"
            hidden = "return getComputedStyle(document.querySelector(arguments[0])).display"
            await js(browser, "document.querySelector(arguments[0]).click()", toggle)
            await until(
                browser,
                lambda d: d.execute_script(hidden, "#tree li[data-child='events'] > ul") == "none",
            )
            await js(browser, "document.querySelector(arguments[0]).click()", toggle)
            await until(
                browser,
                lambda d: d.execute_script(hidden, "#tree li[data-child='events'] > ul") == "block",
            )
            await no_sideways_scrolling(browser)
            await run(shot, browser, "dashboard-1280")

            path: str = await run(
                browser.execute_script,
                "return Object.keys(piano.statuses).find((p) => p.endsWith('/codex'))",
            )
            os.kill(codex_pid(daemon.pid), signal.SIGKILL)
            await until(
                browser,
                ec.text_to_be_present_in_element((By.CSS_SELECTOR, f"{codex} > .restarts"), "1"),
            )
            flashing = await js(
                browser, "return document.querySelector(arguments[0]).className", codex
            )
            await js(browser, "document.querySelector(arguments[0]).scrollIntoView()", codex)
            await run(shot, browser, "dashboard-codex-restarted-1280")
            back = (
                "const s = piano.statuses[arguments[0]];"
                "return s.length > 1 && s.at(-1) === 'waiting'"
            )
            await until(browser, lambda d: d.execute_script(back, path))  # the flash is over
            seen: list[str] = await run(
                browser.execute_script, "return piano.statuses[arguments[0]]", path
            )
            await until(browser, text_in("recent-errors", "codex crashed"))
            errors = await js(
                browser,
                "return [...document.querySelectorAll('#recent-errors .line')]"
                ".map((e) => e.textContent)",
            )

            await js(
                browser, "document.querySelector(arguments[0]).click()", f"{codex} > .child-id"
            )
            await until(browser, text_in("actor", "CodexClient"))
            actor = await js(browser, "return document.getElementById('actor').innerText")
            await run(shot, browser, "dashboard-actor-1280")

            turns = "return document.querySelector('[data-chart=turns] .value').textContent"
            async with aiohttp.ClientSession(headers=AUTH) as session:
                async with session.post(
                    f"{web_base(config)}/api/messages", json={"text": "think long"}
                ) as response:
                    assert response.status == 202, await response.text()
                    thread_id = (await response.json())["thread_id"]
                await until(browser, lambda d: d.execute_script(turns) == "1")
                await run(shot, browser, "dashboard-turn-running-1280")
                interrupt = f"{web_base(config)}/api/threads/{thread_id}/interrupt"
                async with session.post(interrupt) as response:
                    assert (await response.json())["interrupted"] is True
                await until(browser, lambda d: d.execute_script(turns) == "0")
            hang.release()

            await resize(browser, PHONE)
            await until(browser, text_in("tree", "codex"))
            await no_sideways_scrolling(browser)
            await run(shot, browser, "dashboard-390")
            await resize(browser, DESKTOP)
    assert "flash" in flashing.split(), flashing
    # drawn running, then red (not running, if a frame fell in the restart; restarted, for a
    # few seconds after the count grew, in any case), then running again
    assert seen[0] == "waiting", seen
    assert "restarted" in seen, seen
    assert set(seen[1 : seen.index("restarted") + 1]) <= {"not running", "restarted"}, seen
    assert seen[-1] == "waiting", seen
    # one line for the kill (not a crash report, a termination and a restart full of codex's
    # start-up text), and codex's start-up notices, twice three lines, grouped into one
    assert [line for line in errors if "137" in line] == [
        "codex crashed: codex app-server exited with code 137"
    ], errors
    assert len([line for line in errors if line.startswith("codex.stderr")]) <= 1, errors
    assert "restarts\n1" in actor
    assert "mailbox" in actor


SEND_FILES = """
const [target, kind, files] = arguments;
const transfer = new DataTransfer();
for (const [name, size] of files) {
  const bytes = new Uint8Array(size);
  bytes.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);  // a PNG's signature
  transfer.items.add(new File([bytes], name, {type: "image/png"}));
}
const init = {bubbles: true, cancelable: true};
const event = kind === "paste"
  ? new ClipboardEvent("paste", {...init, clipboardData: transfer})
  : new DragEvent("drop", {...init, dataTransfer: transfer});
document.getElementById(target).dispatchEvent(event);
"""


async def test_an_image_pasted_or_dropped_is_uploaded_with_progress_and_a_refusal_says_why(
    dirs: CodexDirs, browser: WebDriver
) -> None:
    async with FakeResponsesProvider() as provider:
        provider.script(Text("I see your screenshot"))
        config = web_config(dirs, provider, "[media]\nmax_image_bytes = 50000\n")
        async with daemon_running(config, dirs.root / "state" / "chat.sock", env=WEB_ENV):
            await resize(browser, DESKTOP)
            await run(browser.get, f"{web_base(config)}/chat#token={TOKEN}")
            await until(browser, text_in("status", "live"))
            await js(browser, SEND_FILES, "text", "paste", [["shot.png", 20_000]])
            await until(browser, text_in("messages", "I see your screenshot"))
            shown = await run(lambda: browser.find_element(By.ID, "messages").text)
            await js(browser, SEND_FILES, "chat", "drop", [["huge.png", 200_000]])
            await until(browser, text_in("errors", "huge.png was refused"))
            refusal = await run(lambda: browser.find_element(By.ID, "errors").text)
            uploads = await js(browser, "return piano.uploads")
            await run(shot, browser, "chat-upload-refused-1280")
    assert "image" in shown.lower()
    assert [(u["name"], u["status"], u["progress"]) for u in uploads] == [
        ("shot.png", "sent", 100),
        ("huge.png", "refused", uploads[1]["progress"]),
    ]
    assert uploads[1]["refusal"] in refusal
    assert "huge.png was refused: Sorry, that image is too large" in refusal, refusal
    assert "up to 50 KB" in refusal, refusal
    saved = list((dirs.work / "inbox").iterdir())
    assert [p.stat().st_size for p in saved] == [20_000], saved
