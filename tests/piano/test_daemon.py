"""The daemon end to end: `piano run`, then `piano chat` through it, then SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from tests.fakes.responses_provider import CodexDirs, FakeResponsesProvider, Text

pytestmark = pytest.mark.anyio
PIANO = [sys.executable, "-m", "piano.cli"]


def write_config(dirs: CodexDirs, provider: FakeResponsesProvider) -> Path:
    path = dirs.root / "piano.toml"
    path.write_text(
        f"""
[daemon]
state_dir = "{dirs.root / "state"}"
log_format = "json"

[codex]
home = "{dirs.home}"

[providers.fake]
base_url = "{provider.base_url}"
request_max_retries = 1
stream_max_retries = 1

[agents.default]
model = "gpt-5.5"
provider = "fake"
workspace = "{dirs.work}"
"""
    )
    return path


async def test_piano_chat_talks_to_an_agent_through_the_running_daemon(dirs: CodexDirs) -> None:
    async with FakeResponsesProvider() as provider:
        provider.script(Text("Hello through the daemon", deltas=3))
        config = write_config(dirs, provider)
        chat_socket = dirs.root / "state" / "chat.sock"
        daemon = await anyio.open_process([*PIANO, "run", "--config", str(config)])
        try:
            with anyio.fail_after(60):
                while not chat_socket.exists():
                    assert daemon.returncode is None, "the daemon exited during start-up"
                    await anyio.sleep(0.05)
            assert chat_socket.stat().st_mode & 0o777 == 0o600
            chat = await anyio.run_process(
                [*PIANO, "chat", "--config", str(config), "--message", "hello"], check=False
            )
            assert chat.returncode == 0, chat.stderr.decode()
            assert "Hello through the daemon" in chat.stdout.decode()
            status = await anyio.run_process(
                [*PIANO, "status", "--config", str(config)], check=False
            )
            shown = status.stdout.decode()
            assert status.returncode == 0, status.stderr.decode()
            for part in ("'piano'", "CodexClient", "Threads", "ChatServer", "rest_for_one"):
                assert part in shown
            assert "terminal:default (default)" in shown
            daemon.send_signal(signal.SIGTERM)
            with anyio.fail_after(30):
                assert await daemon.wait() == 0
            assert not chat_socket.exists()
        finally:
            if daemon.returncode is None:
                daemon.kill()
                await daemon.wait()


def test_a_bad_config_is_refused_with_the_file_key_and_reason(tmp_path: Path) -> None:
    bad = tmp_path / "piano.toml"
    bad.write_text('[agents.default]\nbusy = "later"\n')
    result = subprocess.run(
        [*PIANO, "run", "--config", str(bad)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert f"{bad}: agents.default.busy" in result.stderr
    assert "later" in result.stderr


def test_piano_chat_without_a_daemon_says_how_to_start_one(tmp_path: Path) -> None:
    result = subprocess.run(
        [*PIANO, "chat", "--socket", str(tmp_path / "none.sock"), "--message", "hi"],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ},
    )
    assert result.returncode == 1
    assert "piano run --config" in result.stderr


def test_doctor_passes_on_this_machine_and_names_the_fix_for_what_fails(
    dirs: CodexDirs, tmp_path: Path
) -> None:
    good = tmp_path / "good.toml"
    good.write_text(f'[daemon]\nstate_dir = "{dirs.root / "state"}"\n')
    result = subprocess.run(
        [*PIANO, "doctor", "--config", str(good)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout
    assert "all checks passed" in result.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text(
        f'[daemon]\nstate_dir = "{dirs.root / "state"}"\n[codex]\nbinary = "/nonexistent/codex"\n'
    )
    result = subprocess.run(
        [*PIANO, "doctor", "--config", str(bad)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1
    assert "FAIL codex" in result.stdout
    assert "fix:" in result.stdout
