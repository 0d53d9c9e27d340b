"""The daemon end to end: `piano run`, then `piano chat` through it, then SIGTERM."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import pytest

from piano.codex import CODEX
from piano.daemon import SURFACES
from piano.events import EVENTS
from piano.mcp import TOOLS
from piano.store import STORE, StoreReader, open_connection
from piano.threads import THREAD_SUPERVISOR
from tests.acceptance.daemon import PIANO, chat, console, daemon_running, write_config
from tests.agents.fake_openai import FakeOpenAI
from tests.agents.fake_openai import Text as OpenAIText
from tests.fakes.responses_provider import (
    CodexDirs,
    FakeResponsesProvider,
    FunctionCall,
    Hang,
    Text,
)
from tests.media.pictures import png
from tests.telegram.fake_bot_api import FakeBotApi
from tests.test_webfetch import LocalSite

pytestmark = pytest.mark.anyio
ARTICLE = (
    "<html><head><title>About Piano</title></head><body><article><h1>About Piano</h1>"
    "<p>Piano keeps every conversation in its own supervised actor, so one crash never "
    "takes the others down, and it stores every event in order.</p></article></body></html>"
)


async def test_piano_chat_talks_to_an_agent_through_the_running_daemon(dirs: CodexDirs) -> None:
    async with FakeResponsesProvider() as provider:
        provider.script(Text("Hello through the daemon", deltas=3))
        config = write_config(dirs, provider)
        chat_socket = dirs.root / "state" / "chat.sock"
        async with daemon_running(config, chat_socket):
            assert chat_socket.stat().st_mode & 0o777 == 0o600
            assert "Hello through the daemon" in await chat(config, "hello")
            status = await anyio.run_process(
                [*PIANO, "status", "--config", str(config)], check=False
            )
            shown = status.stdout.decode()
            assert status.returncode == 0, status.stderr.decode()
            for part in ("'piano'", "CodexClient", "Threads", "ChatServer", "rest_for_one"):
                assert part in shown
            assert "terminal:default (default)" in shown
            with StoreReader(dirs.root / "state" / "piano.db") as reader:
                [thread] = reader.threads()
                [interaction] = reader.interactions(thread.id)
                assert (interaction.text, interaction.status) == ("hello", "completed")
                assert interaction.response == "Hello through the daemon"
                assert [e.seq for e in reader.events_since(thread.id, 0)] == list(
                    range(1, reader.last_seq(thread.id) + 1)
                )
        assert not chat_socket.exists()


async def test_a_daemon_killed_mid_turn_leaves_an_intact_database_with_every_accepted_message(
    dirs: CodexDirs,
) -> None:
    async with FakeResponsesProvider() as provider:
        hang = Hang()
        provider.script(Text("first answer"), hang, Text("after the restart"))
        config = write_config(dirs, provider)
        socket = dirs.root / "state" / "chat.sock"
        database = dirs.root / "state" / "piano.db"
        async with daemon_running(config, socket) as daemon:
            await chat(config, "one")
            second = await anyio.open_process(
                [*PIANO, "chat", "--config", str(config), "--message", "two"]
            )
            await provider.wait_requests(2)
            daemon.kill()
            await daemon.wait()
            hang.release()
            await second.wait()
        check = open_connection(database, query_only=True)
        assert check.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        check.close()
        with StoreReader(database) as reader:
            [thread] = reader.threads()
            texts = {i.text: i for i in reader.interactions(thread.id)}
            assert set(texts) == {"one", "two"}
            assert texts["one"].status == "completed"
            assert texts["one"].response == "first answer"
            assert texts["two"].status in ("pending", "in_progress")
        async with daemon_running(config, socket):
            assert "after the restart" in await chat(config, "three")
            history = str((await provider.wait_requests(3))[-1]["input"])
            assert "one" in history, "the daemon did not resume the thread's Codex history"


async def test_the_agent_calls_pianos_web_fetch_through_mcp_and_the_call_is_stored(
    dirs: CodexDirs,
) -> None:
    site = LocalSite()
    site.page("/", ARTICLE)
    async with site, FakeResponsesProvider() as provider:
        provider.script(
            FunctionCall("mcp__piano__web_fetch", {"url": site.url("/")}),
            Text("The page talks about Piano."),
        )
        tools = '[tools.webfetch]\nallowed_networks = ["127.0.0.1/32"]\n'
        config = write_config(dirs, provider, tools)
        async with daemon_running(config, dirs.root / "state" / "chat.sock"):
            assert "The page talks about Piano." in await chat(config, "read the page")
            second = json.dumps((await provider.wait_requests(2))[1]["input"])
            assert "Piano keeps every conversation" in second, "the page did not reach the model"
    with StoreReader(dirs.root / "state" / "piano.db") as reader:
        [thread] = reader.threads()
        calls = [i for i in reader.thread_items(thread.id) if i.kind == "tool_call"]
        assert [(c.tool, c.status) for c in calls] == [("piano.web_fetch", "completed")]
        assert "Piano keeps every conversation" in calls[0].output


async def test_a_telegram_message_and_a_photo_are_answered_through_the_daemon(
    dirs: CodexDirs,
) -> None:
    async with FakeBotApi() as telegram, FakeResponsesProvider() as provider:
        provider.script(Text("Hello, Telegram"))
        section = f'[telegram]\nbase_url = "{telegram.base_url}"\nusers = {{ "1001" = "admin" }}\n'
        config = write_config(dirs, provider, section)
        env = {**os.environ, "PIANO_TELEGRAM_TOKEN": telegram.token}
        async with daemon_running(config, dirs.root / "state" / "chat.sock", env):
            await telegram.wait_for(lambda call: call.method == "setMyCommands", timeout=60)
            await telegram.push_message(1001, "hello", user_id=1001)
            answer = await telegram.wait_for(
                lambda call: (
                    call.method == "sendMessage"
                    and "Hello, Telegram" in str(call.params.get("text"))
                ),
                timeout=60,
            )
            assert answer.params["chat_id"] == 1001
            provider.script(Text("A green square."))
            await telegram.push_photo(1001, [png(16, 12, (10, 200, 10))], caption="What is it?")
            await telegram.wait_for(
                lambda call: (
                    call.method == "sendMessage"
                    and "A green square." in str(call.params.get("text"))
                ),
                timeout=60,
            )
            request = json.dumps((await provider.wait_requests(2))[-1]["input"])
            assert '"input_image"' in request, "the photo did not reach the model as an image"


async def test_an_openai_agent_answers_through_the_daemon_and_its_turn_is_stored(
    dirs: CodexDirs,
) -> None:
    async with FakeOpenAI() as openai, FakeResponsesProvider() as provider:
        openai.script(OpenAIText("Hello from the OpenAI backend"))
        section = (  # a chat-completions server, which codex itself refuses to be given
            f'[providers.compatible]\nbase_url = "{openai.base_url}"\nenv_key = "COMPATIBLE_KEY"\n'
            'wire_api = "chat"\n'
            '[agents.helper]\nbackend = "openai"\nmodel = "fake-model"\n'
            'provider = "compatible"\n'
        )
        config = write_config(dirs, provider, "")
        config.write_text(config.read_text() + section)
        env = {**os.environ, "COMPATIBLE_KEY": openai.api_key}
        async with daemon_running(config, dirs.root / "state" / "chat.sock", env):
            output = await chat(config, "hi", "--agent", "helper")
            assert "Hello from the OpenAI backend" in output
    with StoreReader(dirs.root / "state" / "piano.db") as reader:
        [thread] = reader.threads()
        assert thread.agent == "helper"
        [interaction] = reader.interactions(thread.id)
        assert (interaction.status, interaction.response) == (
            "completed",
            "Hello from the OpenAI backend",
        )
        assert reader.agent("helper").backend == "openai"  # type: ignore[union-attr]


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
    refused = tmp_path / "refused.toml"  # codex itself refuses this, only when it starts
    refused.write_text(
        f'[daemon]\nstate_dir = "{dirs.root / "state"}"\n[codex]\n'
        'args = ["-c", "model_providers.openai={name=\\"x\\", base_url=\\"http://127.0.0.1:1\\"}"]\n'
    )
    result = subprocess.run(
        [*PIANO, "doctor", "--config", str(refused)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1
    [line] = [line for line in result.stdout.splitlines() if "codex start" in line]
    assert line.startswith("FAIL codex start:")
    assert "reserved built-in provider IDs" in line
    assert "Stack backtrace" not in line


def ids(*names: str) -> str:
    return f"print(*(whereis(n).id for n in {names!r}))"


async def restarted(state: Path, name: str, old: str) -> None:
    """Wait until the actor registered as `name` is a new one (a restart takes a back-off
    delay, then the actor's init)."""
    with anyio.fail_after(30):
        while (await console(state, f"print(getattr(whereis({name!r}), 'id', None))")).strip() in (
            "None",
            old,
        ):
            pass


async def _kill_codex(state: Path) -> None:
    os.kill(int(await console(state, "print((await call('codex', 'connection')).pid)")), 9)


async def _kill_store(state: Path) -> None:
    await console(state, "kill('store')")


@pytest.mark.parametrize(("victim", "kill"), [(CODEX, _kill_codex), (STORE, _kill_store)])
async def test_a_crashed_codex_or_store_restarts_alone_and_nothing_accepted_is_lost(
    dirs: CodexDirs, victim: str, kill: Callable[[Path], Awaitable[None]]
) -> None:
    others = [STORE, EVENTS, CODEX, TOOLS, THREAD_SUPERVISOR, SURFACES]
    others.remove(victim)
    async with FakeResponsesProvider() as provider:
        provider.script(Text("one"), Text("two"))
        config = write_config(dirs, provider)
        state = dirs.root / "state"
        async with daemon_running(config, state / "chat.sock"):
            assert "one" in await chat(config, "first")
            old, *before = (await console(state, ids(victim, *others))).split()
            await kill(state)
            await restarted(state, victim, old)
            _, *after = (await console(state, ids(victim, *others))).split()
            assert "two" in await chat(config, "second")
    assert after == before, f"a crash of {victim} restarted other children of the daemon"
    with StoreReader(state / "piano.db") as reader:
        [thread] = reader.threads()
        answers = [(i.text, i.status, i.response) for i in reader.interactions(thread.id)]
    assert answers == [("first", "completed", "one"), ("second", "completed", "two")]
