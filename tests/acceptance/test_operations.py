"""What an operator does to a running daemon: kill codex from the console, reload with SIGHUP,
scrape its health and metrics. Each test drives `piano run` (real codex, fake provider)."""

from __future__ import annotations

import anyio
import pytest

from tests.acceptance.daemon import chat, console, daemon_running, write_config
from tests.fakes.responses_provider import CodexDirs, FakeResponsesProvider, Text

pytestmark = pytest.mark.anyio


async def test_after_codex_is_killed_from_the_console_the_next_message_is_answered(
    dirs: CodexDirs,
) -> None:
    async with FakeResponsesProvider() as provider:
        provider.script(Text("one"), Text("two"))
        config = write_config(dirs, provider)
        state = dirs.root / "state"
        async with daemon_running(config, state / "chat.sock"):
            assert "one" in await chat(config, "first")
            before = await console(state, "print(whereis('codex'))")
            await console(state, "kill('codex')")
            with anyio.fail_after(60):  # until the supervisor has started a new client
                while await console(state, "print(whereis('codex'))") in (
                    before,
                    "None\n",
                ):
                    pass
            assert "two" in await chat(config, "second")
