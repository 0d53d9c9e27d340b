"""`piano chat` in a real terminal (tmux), through `piano run`: line editing, history,
multi-line entries, `/help` answered locally, markdown rendered, `y` answering an approval,
Ctrl-C stopping a running turn.

tmux gives the chat a pseudo-terminal, so it runs exactly as a user's does (prompt_toolkit's
prompt, rich's rendering); keys go in with ``send-keys`` and the screen is read with
``capture-pane``. Needs Debian's tmux (``scripts/bootstrap`` installs it).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from tests.acceptance.daemon import PIANO, daemon_running, write_config
from tests.acceptance.test_surfaces import terminal
from tests.fakes.responses_provider import (
    CodexDirs,
    ExecCommand,
    FakeResponsesProvider,
    Hang,
    Text,
)

pytestmark = pytest.mark.anyio


class Tmux:
    """One tmux server of the test's own (a private socket) with one window."""

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        binary = shutil.which("tmux")
        assert binary is not None, "tmux is missing: apt-get install tmux (scripts/bootstrap)"
        self.base = [binary, "-L", f"piano-test-{uuid.uuid4().hex[:8]}"]
        exports = [f"{key}={value}" for key, value in env.items()]
        subprocess.run(
            [*self.base, "new-session", "-d", "-x", "110", "-y", "45", "-s", "chat"]
            + [arg for export in exports for arg in ("-e", export)]
            + [" ".join(_quote(part) for part in command)],
            check=True,
        )

    def keys(self, *keys: str) -> None:
        subprocess.run([*self.base, "send-keys", "-t", "chat", *keys], check=True)

    def type(self, text: str) -> None:
        """Type `text` literally (no key names)."""
        subprocess.run([*self.base, "send-keys", "-t", "chat", "-l", text], check=True)

    def screen(self) -> str:
        return subprocess.run(
            [*self.base, "capture-pane", "-p", "-J", "-t", "chat", "-S", "-500"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout

    async def until(self, pattern: str, timeout: float = 60) -> str:
        """The screen once `pattern` (a regex) shows on it."""
        with anyio.fail_after(timeout):
            while True:  # polling the screen: tmux has no change notification to wait on
                screen = self.screen()
                if re.search(pattern, screen):
                    return screen
                await anyio.sleep(0.1)

    def close(self) -> None:
        subprocess.run([*self.base, "kill-server"], capture_output=True, check=False)


def _quote(part: str) -> str:
    return "'" + part.replace("'", "'\\''") + "'"


@pytest.fixture
def tmux_sessions() -> Iterator[list[Tmux]]:
    opened: list[Tmux] = []
    yield opened
    for tmux in opened:
        tmux.close()


async def test_piano_chat_in_a_terminal_edits_lines_answers_help_locally_and_approves_with_y(
    dirs: CodexDirs, tmp_path: Path, tmux_sessions: list[Tmux]
) -> None:
    async with FakeResponsesProvider() as provider:
        provider.script(
            Text("# Plan\n\n- **first** point\n- second point\n\nUse `piano chat`."),
            ExecCommand("echo approved-ran", require_escalated=True),
            Text("Done."),
            Text("Got both lines."),
            hang := Hang(),
        )
        config = write_config(dirs, provider)
        async with daemon_running(config, dirs.root / "state" / "chat.sock"):
            chat = Tmux(
                [*PIANO, "chat", "--config", str(config)],
                {"PIANO_CHAT_HISTORY": str(tmp_path / "history"), "TERM": "xterm-256color"},
            )
            tmux_sessions.append(chat)
            await chat.until("Connected to thread")

            # line editing: a typo fixed with the cursor keys before Enter
            chat.type("hello wrld")
            chat.keys("Left", "Left", "Left")
            chat.type("o")
            chat.keys("Enter")
            screen = await chat.until("second point")
            assert "hello world" in str((await provider.wait_requests(1))[0]["input"])
            assert "**first**" not in screen, "the answer's markdown was not rendered"
            assert "# Plan" not in screen
            assert re.search(r"• first point", screen), screen

            # /help is answered by the client; nothing reaches the model
            chat.type("/help")
            chat.keys("Enter")
            await chat.until(r"/approve \[N\|ID\]")
            assert len(provider.requests) == 1

            # an approval answered with y
            chat.type("run it")
            chat.keys("Enter")
            await chat.until(r"\? \[1\] approval: run: .*echo approved-ran")
            await chat.until("waiting for your approval")  # the status line
            chat.type("y")
            chat.keys("Enter")
            await chat.until("Done.")
            assert "approved-ran" in str(provider.requests[-1]["input"])

            # a multi-line entry: a line ending in a backslash goes on
            chat.type("line one\\")
            chat.keys("Enter")
            chat.type("line two")
            chat.keys("Enter")
            await chat.until("Got both lines.")
            assert "line one\\nline two" in str(provider.requests[-1]["input"]).replace("\n", "\\n")

            # history: Up recalls the last entry
            chat.keys("Up")
            await chat.until(r">\s+line one\s*\n\s+line two\s*$|> line one")
            chat.keys("C-u", "C-u")

            # Ctrl-C while a turn runs stops the turn, not the chat
            chat.type("take your time")
            chat.keys("Enter")
            await chat.until(r"● thinking")
            chat.keys("C-c")
            await chat.until(r"\[turn interrupted")
            hang.release()
            await chat.until(r"ready · /help")
            chat.type("/quit")
            chat.keys("Enter")
    assert "line one" in (tmp_path / "history").read_text()


async def test_approve_without_an_id_answers_the_only_pending_approval_and_reaches_no_model(
    dirs: CodexDirs,
) -> None:
    """The same commands from a pipe (a script driving `piano chat`): ``/approve`` alone
    accepts the one pending approval, and ``/approve`` with nothing pending is refused by the
    client instead of going to the model as a message."""
    async with FakeResponsesProvider() as provider:
        provider.script(ExecCommand("echo approved-ran", require_escalated=True), Text("Done."))
        config = write_config(dirs, provider)
        async with (
            daemon_running(config, dirs.root / "state" / "chat.sock"),
            terminal(config) as chat,
        ):
            await chat.until("Connected to thread")
            await chat.type("/approve")
            await chat.until("no approval is waiting")
            await chat.type("run it")
            await chat.until(r"\[1\] y / n · /approve 1")
            await chat.type("/approve")
            await chat.until("Done.")
            await chat.type("/quit")
    assert "approved-ran" in str(provider.requests[-1]["input"])
    sent = [str(request["input"]) for request in provider.requests]
    assert not any("/approve" in text for text in sent), "a command reached the model"
