"""What an operator does to a running daemon: kill codex from the console, reload with SIGHUP,
ask its health and scrape its metrics. Each test drives `piano run` (real codex, fake provider)."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import aiohttp
import anyio
import pytest

from tests.acceptance.daemon import chat, console, daemon_running, write_config
from tests.acceptance.test_surfaces import free_port
from tests.fakes.responses_provider import CodexDirs, FakeResponsesProvider, Text

pytestmark = pytest.mark.anyio


async def codex_restarted(state: Path) -> None:
    """Kill the Codex client from the console and wait until its supervisor has started
    another."""
    before = await console(state, "print(whereis('codex'))")
    await console(state, "kill('codex')")
    with anyio.fail_after(60):
        while await console(state, "print(whereis('codex'))") in (before, "None\n"):
            pass


async def test_after_codex_is_killed_from_the_console_the_next_message_is_answered(
    dirs: CodexDirs,
) -> None:
    async with FakeResponsesProvider() as provider:
        provider.script(Text("one"), Text("two"))
        config = write_config(dirs, provider)
        state = dirs.root / "state"
        async with daemon_running(config, state / "chat.sock"):
            assert "one" in await chat(config, "first")
            await codex_restarted(state)
            assert "two" in await chat(config, "second")


def metric(text: str, name: str) -> float:
    """The value of the sample `name` (with its labels, as exposed) in a scrape."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {name} in:\n{text}")


async def test_health_and_prometheus_metrics_are_served_on_loopback_without_the_web_surface(
    dirs: CodexDirs,
) -> None:
    port = free_port()
    async with FakeResponsesProvider() as provider:
        provider.script(Text("one"))
        config = write_config(dirs, provider, f"[metrics]\nenabled = true\nport = {port}\n")
        assert "[web]" not in config.read_text()
        state = dirs.root / "state"
        base = f"http://127.0.0.1:{port}"
        async with daemon_running(config, state / "chat.sock"), aiohttp.ClientSession() as http:
            assert "one" in await chat(config, "first")
            async with http.get(f"{base}/health") as response:
                assert response.status == 200
                health = await response.json()
            assert health["ok"] is True, health
            assert health["codex"] is True, health
            async with http.get(f"{base}/metrics") as response:
                assert response.status == 200
                assert response.headers["Content-Type"].startswith("text/plain")
                scrape = await response.text()
            assert metric(scrape, "piano_codex_up") == 1
            assert metric(scrape, "piano_threads_live") == 1
            assert (
                metric(
                    scrape,
                    'piano_child_restarts_total{child="codex",supervisor="codex_supervisor"}',
                )
                == 0
            )
            assert metric(scrape, "piano_events_accepted_total") > 0
            assert metric(scrape, 'piano_actor_mailbox_length{actor="store"}') >= 0
            await codex_restarted(state)
            with anyio.fail_after(30):
                while True:
                    async with http.get(f"{base}/metrics") as response:
                        scrape = await response.text()
                    restarts = (
                        'piano_child_restarts_total{child="codex",supervisor="codex_supervisor"}'
                    )
                    if metric(scrape, restarts) == 1:
                        break


async def test_sighup_applies_the_log_level_names_what_needs_a_restart_and_survives_a_bad_file(
    dirs: CodexDirs, tmp_path: Path
) -> None:
    log_path = tmp_path / "daemon.log"
    async with FakeResponsesProvider() as provider:
        provider.script(Text("one"), Text("two"), Text("three"))
        config = write_config(dirs, provider)
        state = dirs.root / "state"
        with log_path.open("wb") as log_file:
            async with daemon_running(config, state / "chat.sock", stderr=log_file) as daemon:
                assert "one" in await chat(config, "first")
                good = config.read_text()
                config.write_text(
                    good.replace(
                        'log_format = "json"', 'log_format = "json"\nlog_level = "warning"'
                    ).replace('model = "gpt-5.5"', 'model = "gpt-5.5-mini"')
                )
                daemon.send_signal(signal.SIGHUP)
                await logged(log_path, "daemon.reload_needs_restart")
                assert "two" in await chat(config, "second")
                config.write_text(good.replace("[daemon]", "[daemon]\nnonsense = 1"))
                daemon.send_signal(signal.SIGHUP)
                await logged(log_path, "daemon.reload_refused")
                # the file no longer loads, so piano chat is told the socket itself
                assert "three" in await chat(config, "third", "--socket", str(state / "chat.sock"))
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    events = [line["event"] for line in lines]
    reloaded = events.index("daemon.reloaded")
    assert lines[reloaded]["applied"] == ["daemon.log_level"]
    [later] = [line for line in lines if line["event"] == "daemon.reload_needs_restart"]
    assert later["keys"] == ["agents.default.model"]
    assert [line for line in lines[reloaded + 1 :] if line["level"] == "info"] == [], (
        "info lines were logged after the level became warning"
    )
    assert any(line["level"] == "info" for line in lines[:reloaded])


async def logged(path: Path, event: str) -> None:
    """Wait until the daemon's log at `path` has a line with `event`."""
    with anyio.fail_after(30):
        while True:  # polling the file the daemon appends to
            if f'"{event}"' in await anyio.Path(path).read_text():
                return
            await anyio.sleep(0.05)
