"""The jail attacked the way it was attacked: through `piano run`, the real codex calling Piano's
MCP `shell` tool as the (fake) model scripts it, Piano's MCP endpoint called directly with a
token for a thread the store does not know, and a second local uid on the host.

Each test checks what the model was told (the tool output codex sends back in the next model
request), what the store audited (``shell_commands``) and what is left on the host.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from piano.mcp import ThreadTokens
from piano.store import StoreReader
from piano.tools.jail import CommandRecord, RestartReason, command_log
from tests.acceptance.daemon import chat, daemon_running, write_config
from tests.fakes.responses_provider import CodexDirs, FakeResponsesProvider, FunctionCall, Text
from tests.test_jail_escapes import RIG

pytestmark = pytest.mark.anyio

SECRETS = {
    "OPENAI_API_KEY": "sk-openai-" + secrets.token_hex(16),
    "PIANO_WEB_TOKEN": "web-" + secrets.token_hex(16),
    "PIANO_TELEGRAM_TOKEN": "123456:tg-" + secrets.token_hex(16),
    "PIANO_MCP_KEY": "mcp-" + secrets.token_hex(32),
}
SECOND_UID = 4242

# Reads the pipe the shell reads its commands from (the attacker found it on fd 10) and answers
# every frame it finds with invented output, the frame's own marker and exit status 0.
FORGER = r"""
import os, re
seen = b""
while True:
    data = os.read(0, 65536)
    if not data:
        break
    seen += data
    for marker in re.findall(rb"__PIANO_[0-9a-f]{32}__", seen):
        os.write(1, b"invented\n" + marker + b"0\n")
        os.write(2, marker)
    seen = b""
"""


def shell(command: str, timeout: float | None = None) -> FunctionCall:
    arguments: dict[str, Any] = {"command": command}
    if timeout is not None:
        arguments["timeout_seconds"] = timeout
    return FunctionCall("mcp__piano__shell", arguments)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def jail_config(
    dirs: CodexDirs, provider: FakeResponsesProvider, jail: str = "", mcp: str = ""
) -> Path:
    section = (
        f'[tools.jail]\nworkspace_root = "{dirs.root / "jails"}"\n{jail}\n'
        f'[tools.mcp]\nsecret_env = "PIANO_MCP_KEY"\n{mcp}\n'
    )
    return write_config(dirs, provider, section)


@asynccontextmanager
async def daemon(dirs: CodexDirs, config: Path) -> AsyncIterator[anyio.abc.Process]:
    async with daemon_running(
        config, dirs.root / "state" / "chat.sock", {**os.environ, **SECRETS}
    ) as running:
        yield running


def _text(output: Any) -> str:
    if isinstance(output, str):
        return output
    if isinstance(output, list):
        return "\n".join(_text(part) for part in output)
    if isinstance(output, dict):
        return str(output.get("text", "")) or _text(output.get("content", ""))
    return ""


async def tool_outputs(provider: FakeResponsesProvider, calls: int) -> list[str]:
    """What the model was told for each of the turn's `calls` tool calls, in order."""
    last = (await provider.wait_requests(calls + 1))[calls]["input"]
    return [_text(item["output"]) for item in last if item.get("type") == "function_call_output"]


def audit(dirs: CodexDirs) -> tuple[str, list[CommandRecord]]:
    """The one thread's id and its audited shell commands."""
    database = dirs.root / "state" / "piano.db"
    with StoreReader(database) as reader:
        [thread] = reader.threads()
    return thread.id, command_log(database, thread.id)


def jail_processes(daemon_pid: int) -> list[int]:
    """Every process in the daemon's jail cgroups (the pids hierarchy, v1 or v2)."""
    found: list[int] = []
    for base in (
        Path("/sys/fs/cgroup/pids"),
        Path("/sys/fs/cgroup/unified"),
        Path("/sys/fs/cgroup"),
    ):
        for group in base.glob(f"piano-jail-{daemon_pid}-*"):
            procs = group / "cgroup.procs"
            if (group / "pids.max").exists() and procs.exists():
                found += [int(p) for p in procs.read_text().split()]
    return found


@dataclass
class Turn:
    outputs: list[str]  # what the model was told for each tool call, in order
    left: list[int]  # the processes in the jail's cgroup once the turn was over


async def run_turn(dirs: CodexDirs, *calls: FunctionCall, jail: str = "", mcp: str = "") -> Turn:
    """One chat turn through the daemon in which the model makes `calls`, then says "done"."""
    async with FakeResponsesProvider() as provider:
        provider.script(*calls, Text("done"))
        config = jail_config(dirs, provider, jail, mcp)
        async with daemon(dirs, config) as running:
            assert "done" in await chat(config, "go")
            return Turn(await tool_outputs(provider, len(calls)), jail_processes(running.pid))


async def test_no_secret_of_the_daemon_reaches_the_jail(dirs: CodexDirs) -> None:
    turn = await run_turn(dirs, shell("cat /proc/[0-9]*/environ | tr '\\0' '\\n'; echo ---; env"))
    [seen] = turn.outputs
    assert "PATH=/usr/local/bin:/usr/bin:/bin" in seen, seen  # the output did come back
    assert "HOME=/workspace" in seen
    for name, value in SECRETS.items():
        assert value not in seen, f"{name} is readable inside the jail"
    _, [row] = audit(dirs)
    assert all(value not in row.stdout for value in SECRETS.values())


async def test_a_set_id_file_made_in_the_jail_lends_no_uid_to_another_local_user(
    dirs: CodexDirs,
) -> None:
    turn = await run_turn(
        dirs, shell("cp /usr/bin/bash rb; chmod 4755 rb; mkdir sg; chmod 2775 sg; ls -l rb")
    )
    [made] = turn.outputs
    thread_id, _ = audit(dirs)
    assert made.count("Operation not permitted") == 2, made  # refused by the seccomp filter
    workspace = dirs.root / "jails" / thread_id
    for name in ("rb", "sg"):
        mode = (workspace / name).lstat().st_mode
        assert not mode & (stat.S_ISUID | stat.S_ISGID), f"{name} keeps a set-id bit on the host"
    assert stat.S_IMODE((dirs.root / "jails").stat().st_mode) == 0o700
    other = await anyio.run_process(
        [
            "setpriv",
            f"--reuid={SECOND_UID}",
            f"--regid={SECOND_UID}",
            "--clear-groups",
            "--",
            "/bin/sh",  # the lookup of the path must happen as that user, not in setpriv
            "-c",
            '"$0" -p -c "id -u"',
            str(workspace / "rb"),
        ],
        check=False,
    )
    assert other.returncode != 0, "another user could run a file of the workspace"
    assert other.stdout == b""


async def test_a_command_cannot_forge_another_commands_result_or_audit_row(
    dirs: CodexDirs,
) -> None:
    turn = await run_turn(
        dirs,
        shell(f"cat > forger.py <<'EOF'\n{FORGER}\nEOF\ncat > rig.sh <<'EOF'\n{RIG}\nEOF"),
        shell("exec python3 forger.py 0<&10", timeout=3),  # the pipe bash kept on fd 10
        shell("echo real-one"),
        shell("python3 forger.py </proc/$PPID/fd/0 & echo started"),  # reopened through /proc
        shell("echo real-two"),
        shell(". ./rig.sh"),  # a DEBUG trap and shadowed builtins in the shell itself
        shell("echo real-three"),
    )
    attacks, reals = turn.outputs[1::2], turn.outputs[2::2]
    for real, text in zip(reals, ("real-one", "real-two", "real-three"), strict=True):
        assert "exit code: 0" in real, real
        assert text in real
        assert "invented" not in real
    assert all("invented" not in attack for attack in attacks[:2]), attacks
    _, rows = audit(dirs)
    assert [(r.command, r.exit_code, r.stdout) for r in rows[2::2]] == [
        ("echo real-one", 0, "real-one\n"),
        ("echo real-two", 0, "real-two\n"),
        ("echo real-three", 0, "real-three\n"),
    ]
    assert all("invented" not in row.stdout for row in rows[:5])  # the rig may print its own


async def test_a_token_for_a_thread_the_store_does_not_know_runs_nothing(
    dirs: CodexDirs,
) -> None:
    port = free_port()
    async with FakeResponsesProvider() as provider:
        config = jail_config(dirs, provider, mcp=f"port = {port}")
        async with daemon(dirs, config):
            token = ThreadTokens(SECRETS["PIANO_MCP_KEY"].encode()).token("ghost")
            async with (
                create_mcp_http_client(headers={"Authorization": f"Bearer {token}"}) as http,
                Client(
                    streamable_http_client(f"http://127.0.0.1:{port}/mcp", http_client=http)
                ) as session,
            ):
                answer = await session.call_tool("shell", {"command": "touch /workspace/ran"})
    assert answer.is_error
    assert "not run" in _text([part.model_dump() for part in answer.content])
    assert not (dirs.root / "jails" / "ghost" / "ran").exists(), "it ran before the audit failed"


async def test_nothing_a_command_starts_outlives_it_and_the_jail_gets_a_cpu_quota(
    dirs: CodexDirs,
) -> None:
    burn = "timeout 2 sh -c 'while :; do :; done' &"
    turn = await run_turn(
        dirs,
        shell("(while :; do :; done) & (while :; do :; done) & echo spinning"),
        shell(":(){ :|:& };:", timeout=5),
        shell(f"{burn} {burn} wait; times"),
        jail="cpu_limit = 0.25",
    )
    assert "spinning" in turn.outputs[0]
    assert len(turn.left) == 3, f"only bwrap, its pid 1 and bash may remain: {len(turn.left)}"
    # `times`: the shell's own, then its children's user and system CPU time
    children = re.findall(r"(\d+)m([\d.]+)s", turn.outputs[2].splitlines()[-1])
    used = sum(int(m) * 60 + float(s) for m, s in children)
    assert used <= 0.25 * 2 * 1.5 + 0.2, f"two busy loops got {used:.2f}s of CPU in 2s"


async def test_a_models_timeout_is_capped_by_the_configured_one(dirs: CodexDirs) -> None:
    turn = await run_turn(
        dirs, shell("sleep 60", timeout=1e6), shell("echo negative", timeout=-5), jail="timeout = 3"
    )
    capped, negative = turn.outputs
    assert "timed out after 3." in capped, capped
    assert "negative" in negative
    assert "exit code: 0" in negative
    _, rows = audit(dirs)
    assert [(r.timed_out, r.duration < 10) for r in rows] == [(True, True), (False, True)]


async def test_a_command_is_killed_when_its_caller_gives_up(dirs: CodexDirs) -> None:
    turn = await run_turn(
        dirs,
        shell("sleep 60"),
        shell("echo next"),
        jail="timeout = 40",
        mcp="tool_timeout_sec = 3",
    )
    _, after = turn.outputs
    assert "next" in after
    assert "exit code: 0" in after
    assert "the jail was restarted" in after
    _, [sleep, echo] = audit(dirs)
    assert sleep.restart_reason == RestartReason.ABANDONED.value
    assert echo.started_at - sleep.started_at < 20, "the next command waited for the first"
