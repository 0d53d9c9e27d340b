"""Secrets never reach the agent or an onlooker; state and workspaces are owner-only; web tokens
rotate safely and the rotation survives a restart — all proved through `piano run` with the
real codex, the fake provider and the public wire protocols."""

from __future__ import annotations

import ast
import contextlib
import json
import os
import secrets
import subprocess
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import anyio
import pytest

from tests.acceptance.daemon import PIANO, chat, console, daemon_running, write_config
from tests.fakes.responses_provider import (
    CodexDirs,
    ExecCommand,
    FakeResponsesProvider,
    FunctionCall,
    Text,
)
from tests.telegram.fake_bot_api import FakeBotApi
from tests.test_webfetch import LocalSite

pytestmark = pytest.mark.anyio

SHOW_EVERYTHING = (
    'env; echo ==snapshots==; cat "$CODEX_HOME"/shell_snapshots/* 2>/dev/null; '
    'echo ==tmp==; grep -rs . "$TMPDIR" 2>/dev/null | head -c 20000; true'
)
"""What the agent runs to show its environment and every shell snapshot codex kept."""


def _secrets() -> dict[str, str]:
    """A distinct, unguessable value for every secret the daemon is configured with."""
    return {
        "FAKE_PROVIDER_KEY": f"sk-codexkey-{secrets.token_hex(12)}",
        "OTHER_PROVIDER_KEY": f"sk-otherkey-{secrets.token_hex(12)}",
        "PIANO_WEB_TOKEN": f"webtoken-{secrets.token_hex(12)}",
        "PIANO_TELEGRAM_TOKEN": f"4242:telegramtoken-{secrets.token_hex(12)}",
        "PIANO_MCP_KEY": f"mcpkey-{secrets.token_hex(20)}",
    }


def _hits(where: str, text: str, values: dict[str, str]) -> list[str]:
    return [f"{name} in {where}" for name, v in values.items() if v in text]


def _files_containing(root: Path, values: dict[str, str], *, skip: Path) -> list[str]:
    """Every file under `root` (state, codex home and its TMPDIR, workspace) holding a secret."""
    found = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink() and path != skip:
            data = path.read_bytes()
            found += [f"{name} in {path}" for name, v in values.items() if v.encode() in data]
    return found


async def test_no_configured_secret_reaches_the_agent_its_files_the_logs_or_the_console(
    dirs: CodexDirs,
) -> None:
    values = _secrets()
    logs = dirs.root / "daemon.log"
    async with (
        FakeBotApi(values["PIANO_TELEGRAM_TOKEN"]) as telegram,
        FakeResponsesProvider() as (provider),
    ):
        provider.script(
            ExecCommand(SHOW_EVERYTHING),
            FunctionCall("mcp__piano__shell", {"command": "env; echo ==jail=="}),
            Text("done"),
        )
        config = write_config(
            dirs,
            provider,
            f'[telegram]\nbase_url = "{telegram.base_url}"\nusers = {{ "1001" = "admin" }}\n'
            "[web]\nenabled = true\nport = 0\n"
            '[tools.mcp]\nsecret_env = "PIANO_MCP_KEY"\n',
        )
        config.write_text(
            config.read_text().replace(
                "[providers.fake]\n", '[providers.fake]\nenv_key = "FAKE_PROVIDER_KEY"\n'
            )
            + '[providers.other]\nbase_url = "http://127.0.0.1:9/v1"\nwire_api = "chat"\n'
            'env_key = "OTHER_PROVIDER_KEY"\n'
            '[agents.helper]\nbackend = "openai"\nmodel = "m"\nprovider = "other"\n'
        )
        env = {**os.environ, **values}
        state = dirs.root / "state"
        with logs.open("wb") as log_file:
            async with daemon_running(config, state / "chat.sock", env, stderr=log_file):
                await telegram.wait_for(lambda call: call.method == "setMyCommands", timeout=60)
                assert "done" in await chat(config, "show me your environment")
                requests = await provider.wait_requests(3)
                shell = json.dumps(requests[1]["input"])
                jail = json.dumps(requests[2]["input"][-1])
                assert "==jail==" in jail, "the jailed command did not run"
                assert "PATH=" in jail, "the jailed environment was not shown"
                assert "==snapshots==" in shell, "the agent's command did not run"
                assert "CODEX_HOME=" in shell, "the agent's environment was not shown"
                status = await anyio.run_process([*PIANO, "status", "--config", str(config)])
                states = await console(
                    state,
                    "for r in sorted(system.processes(), key=lambda r: r.id): "
                    "print(r, await state(r))",
                    "",
                    "state('surface:telegram')",
                    "state('surface:web')",
                )
                web = await _web_url(state)
                status_code, dashboard = await _web(
                    web, "GET", "/api/dashboard", token=values["PIANO_WEB_TOKEN"]
                )
                assert status_code == 200
    assert "Bot" in states, "the console showed no state"
    hits = _hits("the model's requests (codex's shell)", json.dumps(requests[:2]), values)
    hits += _hits("piano status", status.stdout.decode(), values)
    hits += _hits("the console", states, values)
    hits += _hits("the dashboard", dashboard, values)
    hits += _hits("the daemon's log", logs.read_text(), values)
    hits += _files_containing(dirs.root, values, skip=logs)
    assert not hits, "secrets leaked:\n" + "\n".join(hits)
    # JAIL: the jail's environment is another engineer's wall (piano/tools/jail/); if only this
    # assertion fails, the jail still hands the daemon's environment to its commands.
    assert _hits("the jailed shell (MCP shell tool)", jail, values) == []


async def _web_url(state: Path) -> str:
    """The running daemon's web surface (it listens on a free port)."""
    host, port = ast.literal_eval(
        await console(
            state,
            "from piano.web import stream_address",
            "print(await stream_address(whereis('surface:web')))",
        )
    )
    return f"http://{host}:{port}"


async def _web(
    url: str, method: str, path: str, *, token: str, body: object = None
) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as http,
        http.request(
            method, url + path, json=body, headers={"Authorization": f"Bearer {token}"}
        ) as response,
    ):
        return response.status, await response.text()


@contextlib.asynccontextmanager
async def _web_daemon(dirs: CodexDirs, token: str) -> AsyncIterator[str]:
    """`piano run` with the web surface and `token` as PIANO_WEB_TOKEN; yields its URL."""
    state = dirs.root / "state"
    async with FakeResponsesProvider() as provider:
        config = write_config(dirs, provider, "[web]\nenabled = true\nport = 0\n")
        env = {**os.environ, "PIANO_WEB_TOKEN": token}
        async with daemon_running(config, state / "chat.sock", env):
            yield await _web_url(state)


async def _rotate(web: str, token: str, grace: float) -> tuple[int, str]:
    return await _web(web, "POST", "/api/token/rotate", token=token, body={"grace": grace})


async def test_a_token_in_its_grace_period_cannot_rotate_and_shut_its_successor_out(
    dirs: CodexDirs,
) -> None:
    first = f"webtoken-{secrets.token_hex(12)}"
    async with _web_daemon(dirs, first) as web:
        status, body = await _rotate(web, first, 3600)
        assert status == 200, body
        second = json.loads(body)["token"]
        status, body = await _rotate(web, first, 0)
        assert status == 422, body
        assert "only the current token may rotate" in body
        assert (await _web(web, "GET", "/api/threads", token=second))[0] == 200
        assert (await _web(web, "GET", "/api/threads", token=first))[0] == 200


async def test_a_rotation_survives_a_restart_the_old_token_stays_dead_and_the_new_one_works(
    dirs: CodexDirs,
) -> None:
    first = f"webtoken-{secrets.token_hex(12)}"
    async with _web_daemon(dirs, first) as web:
        status, body = await _rotate(web, first, 0)
        assert status == 200, body
        second = json.loads(body)["token"]
    async with _web_daemon(dirs, first) as web:
        status, body = await _web(web, "GET", "/api/threads", token=first)
        assert status == 401, body
        assert "token_expired" in body
        assert (await _web(web, "GET", "/api/threads", token=second))[0] == 200
    saved = dirs.root / "state" / "web-tokens.json"
    assert saved.stat().st_mode & 0o777 == 0o600
    assert first not in saved.read_text()
    assert second not in saved.read_text()


async def test_web_fetch_refuses_to_write_its_long_result_through_a_symlink_the_agent_planted(
    dirs: CodexDirs,
) -> None:
    victim = dirs.root / "host-folder"
    victim.mkdir()
    site = LocalSite()
    site.page("/long", "A long page. " * 400, content_type="text/plain")
    jails = dirs.root / "jails"
    # The jailed shell writes its /workspace; the symlink's target is a path of the host.
    plant = f"ln -s {victim} /workspace/webfetch; ls -l /workspace/"
    async with site, FakeResponsesProvider() as provider:
        provider.script(
            FunctionCall("mcp__piano__shell", {"command": plant}),
            FunctionCall("mcp__piano__web_fetch", {"url": site.url("/long")}),
            Text("done"),
        )
        tools = (
            '[tools.webfetch]\nallowed_networks = ["127.0.0.1/32"]\ninline_limit = 1000\n'
            f'[tools.jail]\nworkspace_root = "{jails}"\n'
        )
        config = write_config(dirs, provider, tools)
        async with daemon_running(config, dirs.root / "state" / "chat.sock"):
            assert "done" in await chat(config, "fetch the long page")
            requests = await provider.wait_requests(3)
    planted = json.dumps(requests[1]["input"])
    assert f"webfetch -> {victim}" in planted, "the agent did not plant its symlink"
    fetched = json.dumps(requests[2]["input"])
    assert "A long page." in fetched, "the long page did not reach the model"
    assert list(victim.iterdir()) == [], "the daemon wrote through the agent's symlink"


def _as_nobody(*command: str) -> subprocess.CompletedProcess[bytes]:
    """`command` run by another user (uid and gid 65534, no groups)."""
    setpriv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]
    return subprocess.run([*setpriv, *command], capture_output=True, check=False)


async def test_another_user_can_read_neither_the_state_nor_codex_home_nor_the_workspace(
    dirs: CodexDirs,
) -> None:
    state = dirs.root / "state"
    # What an earlier version (umask 022) left behind, under a folder anyone may traverse.
    dirs.root.chmod(0o755)
    for folder in (state, dirs.home, dirs.work):
        folder.mkdir(exist_ok=True)
        folder.chmod(0o755)
    (dirs.work / "notes.txt").write_text("a user's private notes")
    (dirs.work / "notes.txt").chmod(0o644)
    exposed = [state, dirs.home, dirs.work / "notes.txt"]
    for path in exposed:
        assert _as_nobody("ls", str(path)).returncode == 0, f"the test cannot see {path}"
    async with FakeResponsesProvider() as provider:
        provider.script(ExecCommand("echo hello > made-by-agent.txt"), Text("done"))
        config = write_config(dirs, provider)
        config.chmod(0o644)
        before = set(dirs.root.rglob("*"))
        logs = dirs.root / "daemon.log"
        with logs.open("wb") as log_file:
            async with daemon_running(config, state / "chat.sock", stderr=log_file):
                assert "done" in await chat(config, "a private conversation")
    assert _as_nobody("cat", str(config)).returncode == 0, "the other user is not a real check"
    for path in [
        *exposed,
        state / "piano.db",
        dirs.home / "sessions",
        dirs.work / "made-by-agent.txt",
    ]:
        assert path.exists(), path
        denied = _as_nobody("cat" if path.is_file() else "ls", str(path))
        assert denied.returncode != 0, f"another user read {path}"
        assert b"Permission denied" in denied.stderr
    for path in (state, dirs.home, dirs.work):
        assert path.stat().st_mode & 0o777 == 0o700, path
        assert f'"path": "{path}"' in logs.read_text(), f"no daemon.mode_fixed line for {path}"
    # Piano's own files are created owner-only (codex sets some modes itself, e.g. its
    # installation_id 0644, but inside its 0700 home nobody else reaches them).
    created = {p for p in set(dirs.root.rglob("*")) - before if not p.is_symlink()}
    piano_made = [p for p in created - {logs} if not p.is_relative_to(dirs.home)]
    assert state / "piano.db" in piano_made
    assert [p for p in piano_made if p.stat().st_mode & 0o077] == []


async def test_an_agent_cannot_rewrite_codex_config_or_the_database_when_state_is_under_tmp(
    dirs: CodexDirs,
) -> None:
    with tempfile.TemporaryDirectory(prefix="piano-state-", dir="/tmp") as under_tmp:
        state = Path(under_tmp) / "state"
        home = state / "codex-home"
        # The mark is assembled by printf, so the command's own text (stored) never holds it.
        tamper = (
            f"printf '# TAMP%sERED' X >> {home}/config.toml; "
            f"printf 'TAMP%sERED' X >> {state}/piano.db; "
            "echo fine > $TMPDIR/scratch && cat $TMPDIR/scratch"
        )
        async with FakeResponsesProvider() as provider:
            provider.script(ExecCommand(tamper), Text("done"))
            config = write_config(dirs, provider)
            config.write_text(
                config.read_text()
                .replace(f'state_dir = "{dirs.root / "state"}"', f'state_dir = "{state}"')
                .replace(f'home = "{dirs.home}"\n', "")
            )
            async with daemon_running(config, state / "chat.sock"):
                assert "done" in await chat(config, "tamper with Piano")
                shown = json.dumps((await provider.wait_requests(2))[1]["input"])
        assert "fine" in shown, "the agent's command did not run, or its TMPDIR is not writable"
        assert "Read-only file system" in shown
        for path in home / "config.toml", state / "piano.db":
            assert not path.exists() or b"TAMPXERED" not in path.read_bytes(), path


def test_a_state_directory_inside_an_agents_workspace_is_refused_with_the_key_and_the_fix(
    dirs: CodexDirs,
) -> None:
    config = dirs.root / "piano.toml"
    config.write_text(
        f'[daemon]\nstate_dir = "{dirs.work / "state"}"\n'
        f'[agents.default]\nworkspace = "{dirs.work}"\n'
    )
    done = subprocess.run(
        [*PIANO, "run", "--config", str(config)], capture_output=True, check=False, timeout=60
    )
    assert done.returncode == 2
    [line] = done.stderr.decode().strip().splitlines()
    assert "daemon.state_dir" in line
    assert "agents.default.workspace" in line
    assert "move one out of the other" in line


async def test_a_web_upload_is_refused_not_written_through_an_inbox_the_agent_made_a_symlink(
    dirs: CodexDirs,
) -> None:
    victim = dirs.root / "host-folder"
    victim.mkdir()
    (dirs.work / "inbox").symlink_to(victim)  # what `ln -s` in the agent's workspace makes
    token = f"webtoken-{secrets.token_hex(12)}"
    async with _web_daemon(dirs, token) as web:
        form = aiohttp.FormData()
        form.add_field(
            "file", b"%PDF-1.4 report", filename="report.pdf", content_type="application/pdf"
        )
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"{web}/api/uploads", data=form, headers={"Authorization": f"Bearer {token}"}
            ) as response,
        ):
            status, body = response.status, await response.text()
    assert status == 422, body
    assert "could not save the file" in body
    assert list(victim.iterdir()) == []
