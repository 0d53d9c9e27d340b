"""The running daemon as the acceptance tests drive it: `piano run` as a child process with the
real codex against the fake model provider, and the public clients (`piano chat`, the console
socket) used the way a user uses them.

Every acceptance test goes through these, so a promise is tested through the wiring a user
gets and never through a fixture that stands in for it.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO

import anyio
import anyio.abc

from tests.fakes.responses_provider import CodexDirs, FakeResponsesProvider

PIANO = [sys.executable, "-m", "piano.cli"]


def write_config(dirs: CodexDirs, provider: FakeResponsesProvider, extra: str = "") -> Path:
    path = dirs.root / "piano.toml"
    path.write_text(
        extra
        + f"""
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


@contextlib.asynccontextmanager
async def daemon_running(
    config: Path, socket: Path, env: dict[str, str] | None = None, stderr: IO[bytes] | None = None
) -> AsyncIterator[anyio.abc.Process]:
    """`piano run` for the block, entered once its chat socket and then its console socket
    (beside it, the default) accept connections (a socket left by a killed daemon does not
    count). Leaving the block sends SIGTERM, which must end the daemon with status 0, unless
    the block killed it itself. `stderr` (a file) receives the daemon's log."""
    daemon = await anyio.open_process(
        [*PIANO, "run", "--config", str(config)],
        env=env,
        stderr=stderr if stderr is not None else subprocess.PIPE,
    )
    try:
        with anyio.fail_after(60):
            # the chat socket, then the console's (the console starts after the surfaces)
            for path in (socket, socket.parent / "console.sock"):
                while True:
                    assert daemon.returncode is None, "the daemon exited during start-up"
                    try:
                        stream = await anyio.connect_unix(path)
                    except OSError:
                        await anyio.sleep(0.05)
                        continue
                    await stream.aclose()
                    break
        yield daemon
        if daemon.returncode is None:
            daemon.send_signal(signal.SIGTERM)
            with anyio.fail_after(30):
                assert await daemon.wait() == 0
    finally:
        if daemon.returncode is None:
            daemon.kill()
            await daemon.wait()


async def chat(config: Path, message: str, *options: str) -> str:
    """`piano chat --message`, which must succeed; its output."""
    done = await anyio.run_process(
        [*PIANO, "chat", "--config", str(config), *options, "--message", message], check=False
    )
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
    return done.stdout.decode()


async def console(state: Path, *statements: str) -> str:
    """Run `statements` in the daemon's console; what they printed (after its banner)."""
    script = (
        "import sys\nfrom actors.console import run_statements\n"
        "sys.exit(run_statements(sys.argv[1], sys.argv[2:]))"
    )
    done = await anyio.run_process(
        [sys.executable, "-c", script, str(state / "console.sock"), *statements], check=False
    )
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
    banner, _, printed = done.stdout.decode().partition("\n")
    assert banner.startswith("Piano console"), banner
    return printed
