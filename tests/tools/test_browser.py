"""Browser sessions against a local page with real headless Chromium: the actions, page errors
that leave the session alone, a killed Chromium (clear error, fresh browser), the session limit
and the idle close. One browser serves the first tests, in one tools tree per test."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import anyio
import pytest

from actors import ActorSystem
from piano.tools import BROWSERS, SessionLimitReached, Toolbox, ToolError, browser_name
from piano.tools.browser import (
    Back,
    BrowserActionError,
    BrowserCrashed,
    Click,
    CurrentUrl,
    Find,
    PageInfo,
    ReadText,
    RunScript,
    Screenshot,
    Type,
    Visit,
)
from supervisors import DynamicSupervisor
from tests.test_webfetch import LocalSite
from tests.tools.conftest import Tools, require_binaries, tools_config

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def _binaries() -> None:
    require_binaries()


async def test_a_session_visits_clicks_types_finds_reads_and_goes_back(
    tools: Tools, site: LocalSite
) -> None:
    box = tools.toolbox
    visited = await box.browse("thread-a", Visit(site.url("/")))
    found = await box.browse("thread-a", Find("a, input, button", limit=3))
    await box.browse("thread-a", Click("#counter"))
    counter = await box.browse("thread-a", ReadText("#counter"))
    script = await box.browse("thread-a", RunScript("return [document.title, window.n, {a: 1}]"))
    png = await box.browse("thread-a", Screenshot())
    typed = await box.browse("thread-a", Type("input[name=q]", "pianos", submit=True))
    with anyio.fail_after(10):  # submitting does not wait for the next page: the agent reads on
        while not (await box.browse("thread-a", CurrentUrl())).url.startswith(site.url("/result")):
            pass
    result_text = await box.browse("thread-a", ReadText())
    back = await box.browse("thread-a", Back())
    linked = await box.browse("thread-a", Click("#next"))
    here = await box.browse("thread-a", CurrentUrl())

    assert visited == PageInfo(url=site.url("/"), title="Piano test page")
    assert [(e.tag, e.attributes.get("id") or e.attributes.get("name")) for e in found] == [
        ("input", "q"),
        ("button", "go"),
        ("a", "next"),
    ]
    assert counter == "clicked 1"
    assert script == ["Piano test page", 1, {"a": 1}]
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert typed.title in ("Piano test page", "Result")
    assert "you searched pianos" in result_text
    assert back.url == site.url("/")
    assert linked == here == PageInfo(url=site.url("/second"), title="Second")


async def test_a_page_error_fails_the_action_clearly_and_the_session_carries_on(
    tools: Tools, site: LocalSite
) -> None:
    box = tools.toolbox
    await box.browse("thread-a", Visit(site.url("/")))
    session = tools.system.whereis(browser_name("thread-a"))

    with pytest.raises(BrowserActionError, match="no element matches css selector '#missing'"):
        await box.browse("thread-a", Click("#missing"))
    with pytest.raises(BrowserActionError, match="RunScript failed"):
        await box.browse("thread-a", RunScript("throw new Error('boom')"))
    with pytest.raises(BrowserActionError, match="only http"):
        await box.browse("thread-a", Visit("file:///etc/passwd"))

    assert (await box.browse("thread-a", CurrentUrl())).url == site.url("/")
    assert tools.system.whereis(browser_name("thread-a")) == session


async def test_a_killed_chromium_fails_the_next_action_clearly_and_a_fresh_browser_follows(
    tools: Tools, site: LocalSite
) -> None:
    box = tools.toolbox
    await box.browse("thread-a", Visit(site.url("/second")))
    session = tools.system.whereis(browser_name("thread-a"))
    assert session is not None
    pids = await session.call("pids", timeout=10)

    os.kill(pids[0], signal.SIGKILL)
    with pytest.raises(BrowserCrashed, match="the action was lost"):
        await box.browse("thread-a", ReadText())
    with anyio.fail_after(10):
        reason = await session.join()
    fresh = await box.browse("thread-a", CurrentUrl())
    again = await box.browse("thread-a", Visit(site.url("/")))

    assert isinstance(reason, BrowserCrashed)
    restarted = tools.system.whereis(browser_name("thread-a"))
    assert restarted is not None
    assert restarted != session
    assert fresh.url != site.url("/second"), "the fresh browser starts without the old page"
    assert again.title == "Piano test page"
    assert not set(await restarted.call("pids", timeout=10)) & set(pids)


async def test_sessions_beyond_the_limit_are_refused_until_an_idle_one_closes(
    tmp_path: Path, site: LocalSite
) -> None:
    config = tools_config(tmp_path, max_sessions=1, idle_timeout=1.0)
    async with ActorSystem() as system:
        await system.spawn(DynamicSupervisor(max_children=1), name=BROWSERS)
        box = Toolbox(system, config)
        await box.browse("thread-a", Visit(site.url("/")))
        first = system.whereis(browser_name("thread-a"))
        assert first is not None

        with pytest.raises(SessionLimitReached):
            await box.browse("thread-b", Visit(site.url("/")))
        with anyio.fail_after(15):
            reason = await first.join()
        page = await box.browse("thread-b", Visit(site.url("/second")))

        assert reason == "normal"
        assert page.title == "Second"
        assert system.whereis(browser_name("thread-a")) is None


async def test_a_missing_browser_tool_is_reported_not_raised_as_a_crash(tmp_path: Path) -> None:
    async with ActorSystem() as system:
        box = Toolbox(system, tools_config(tmp_path))
        with pytest.raises(ToolError, match="browser tool is not running"):
            await box.browse("thread-a", CurrentUrl())


async def test_a_browser_that_cannot_start_is_reported_with_the_reason(tmp_path: Path) -> None:
    config = tools_config(tmp_path, chromedriver="/bin/false")
    async with ActorSystem() as system:
        await system.spawn(DynamicSupervisor(), name=BROWSERS)
        box = Toolbox(system, config)
        with pytest.raises(ToolError, match=r"browser could not start.*/bin/false exited"):
            await box.browse("thread-a", CurrentUrl())
        assert system.whereis(browser_name("thread-a")) is None
