"""What a codex agent can reach, proved through `piano run` with the real codex (and its real
bubblewrap sandbox) and the fake provider: the commands it runs read its workspace but not
Piano's state (the database, the sockets), nor the jails of conversations, nor the daemon's
environment through /proc; and a jail root it could write is refused at start."""

from __future__ import annotations

import os
import secrets
import shlex
import sys
from pathlib import Path

import anyio
import pytest

from tests.acceptance.daemon import PIANO, chat, daemon_running, write_config
from tests.fakes.responses_provider import (
    CodexDirs,
    FakeResponsesProvider,
    FunctionCall,
    Text,
)

pytestmark = pytest.mark.anyio

CONNECT = (
    "import socket,sys\n"
    "s = socket.socket(socket.AF_UNIX)\n"
    "try:\n"
    "    s.connect(sys.argv[1]); print('CONNECTED')\n"
    "except OSError as e:\n"
    "    print('refused:', e)\n"
)


def _snoop(state: Path, jails: Path, work: Path, canary_name: str) -> str:
    """The command a prompt-injected agent runs to read what it should not (and, to show that
    codex's own sandbox still works inside the namespace, to write outside its workspace)."""
    return (
        f"exec 2>&1; echo ==control==; cat {work}/control.txt; "
        f"echo ==sandbox==; touch {work.parent}/outside.txt && echo WROTE-OUTSIDE; "
        f"echo ==state==; umount -l {state} >/dev/null 2>&1; ls -A {state}; "
        f"echo ==db==; head -c 15 {state}/piano.db; echo; "
        f"echo ==jails==; cat {jails}/*/jailed.txt; "
        f"echo ==console==; {sys.executable} -c {shlex.quote(CONNECT)} {state}/console.sock; "
        f"echo ==proc==; cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' "
        f"| grep -a {canary_name}; "
        "echo ==end==; true"
    )


def _section(output: str, name: str) -> str:
    return output.split(f"=={name}==", 1)[1].split("==", 1)[0]


@pytest.mark.parametrize("sandbox", ["workspace-write", "danger-full-access"])
async def test_the_agent_reads_its_workspace_but_not_pianos_state_the_jails_or_the_daemon(
    dirs: CodexDirs, sandbox: str
) -> None:
    state, jails = dirs.root / "state", dirs.root / "jails"
    control = f"control-{secrets.token_hex(8)}"
    jailed = f"jailed-{secrets.token_hex(8)}"
    canary = f"canary-{secrets.token_hex(8)}"
    (dirs.work / "control.txt").write_text(control)
    snoop = _snoop(state, jails, dirs.work, "PIANO_CANARY")
    async with FakeResponsesProvider() as provider:
        provider.script(
            FunctionCall(
                "mcp__piano__shell", {"command": f"echo {jailed} > /workspace/jailed.txt"}
            ),
            # not a login shell: the profile's `pyenv rehash` may wait a minute on a lock when
            # unsandboxed; and codex returns what a command printed after yield_time_ms (10 s
            # by default) even if it still runs: a loaded machine gets more time
            FunctionCall("exec_command", {"cmd": snoop, "login": False, "yield_time_ms": 30000}),
            Text("done"),
        )
        config = write_config(dirs, provider, f'[tools.jail]\nworkspace_root = "{jails}"\n')
        config.write_text(config.read_text() + f'sandbox = "{sandbox}"\n')
        env = {**os.environ, "PIANO_CANARY": canary}
        async with daemon_running(config, state / "chat.sock", env):
            assert "done" in await chat(config, "show me what you can read")
            requests = await provider.wait_requests(3)
    assert (state / "piano.db").read_bytes().startswith(b"SQLite format 3")
    assert list(jails.glob("*/jailed.txt")), "the jailed command did not write its file"
    output = str(requests[2]["input"][-1]["output"])
    assert "==end==" in output, f"the agent's command did not run to its end:\n{output}"
    assert control in _section(output, "control"), "the agent cannot read its own workspace"
    sandboxed = "WROTE-OUTSIDE" not in _section(output, "sandbox")
    assert sandboxed == (sandbox == "workspace-write"), (
        f"codex's sandbox is not as configured:\n{output}"
    )
    reached = {
        "lists Piano's state directory": _section(output, "state").split() != [],
        "reads piano.db": "SQLite" in _section(output, "db"),
        "reads a conversation's jail": jailed in _section(output, "jails"),
        "connects to the daemon's console": "CONNECTED" in _section(output, "console"),
        "reads the daemon's environment": canary in _section(output, "proc"),
    }
    leaks = [what for what, yes in reached.items() if yes]
    assert leaks == [], f"the agent {', '.join(leaks)}:\n{output}"


async def test_a_jail_root_inside_an_agents_workspace_is_refused_naming_both_keys(
    dirs: CodexDirs,
) -> None:
    async with FakeResponsesProvider() as provider:
        jails = dirs.work / "jails"
        config = write_config(dirs, provider, f'[tools.jail]\nworkspace_root = "{jails}"\n')
        with anyio.fail_after(60):  # a daemon that accepted the configuration runs on
            done = await anyio.run_process([*PIANO, "run", "--config", str(config)], check=False)
    error = done.stderr.decode()
    assert done.returncode != 0
    assert "tools.jail.workspace_root" in error
    assert "agents.default.workspace" in error
    assert "move one out of the other" in error
    assert not jails.exists(), "the refused daemon created the jail root"
