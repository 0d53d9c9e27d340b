"""The web fetcher as an actor: results for the thread's workspace, and a slow page does not
hold up other fetches."""

from __future__ import annotations

import asyncio

import anyio
import pytest

from piano.tools.webfetch import FetchErrorKind
from tests.test_webfetch import LocalSite
from tests.tools.conftest import Tools

pytestmark = pytest.mark.anyio


async def test_a_fetch_returns_the_pages_main_content(tools: Tools, site: LocalSite) -> None:
    result = await tools.toolbox.fetch("thread-a", site.url("/"))

    assert result.ok
    assert result.title == "Hello from the test page"
    assert "quick brown fox" in result.content


async def test_a_slow_page_does_not_hold_up_other_fetches(tools: Tools, site: LocalSite) -> None:
    pending = asyncio.ensure_future(tools.toolbox.fetch("thread-a", site.url("/slow")))
    with anyio.fail_after(10):
        await site.entered.wait()
        quick = await tools.toolbox.fetch("thread-b", site.url("/"))
    assert quick.ok
    assert not pending.done()
    site.release.set()
    with anyio.fail_after(10):
        late = await pending
    assert late.status == 200
    assert late.error_kind in (None, FetchErrorKind.EMPTY, FetchErrorKind.UNEXTRACTABLE)
