"""Nothing accepted is lost or left hanging: conversations across shutdowns, kills and crashes.

Each test drives `piano run` (real codex, fake model provider) through `piano chat` and the
console, and reads the store the daemon wrote, as a user or an operator would see it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import anyio.abc
import pytest

from piano.store import InteractionRecord, StoreReader
from tests.acceptance.daemon import PIANO, chat, console, daemon_running, write_config
from tests.agents.fake_openai import FakeOpenAI
from tests.agents.fake_openai import Hang as OpenAIHang
from tests.agents.fake_openai import Text as OpenAIText
from tests.fakes.responses_provider import CodexDirs, FakeResponsesProvider, Hang, Text
from tests.telegram.fake_bot_api import FakeBotApi

pytestmark = pytest.mark.anyio


async def interactions_once(
    database: Path, done: Callable[[dict[str, InteractionRecord]], bool]
) -> dict[str, InteractionRecord]:
    """The only thread's interactions by text, once `done` holds for them (polling the store
    the daemon writes, up to 60 s)."""
    with anyio.fail_after(60):
        while True:
            with StoreReader(database) as reader:
                threads = reader.threads()
                found = {i.text: i for t in threads for i in reader.interactions(t.id)}
            if done(found):
                return found
            await anyio.sleep(0.05)


async def chat_until(config: Path, message: str, seen: str, *options: str) -> anyio.abc.Process:
    """`piano chat --message` left running once it has printed `seen` (the daemon accepted
    the message: the answer started, or it was queued)."""
    process = await anyio.open_process(
        [*PIANO, "chat", "--config", str(config), *options, "--message", message]
    )
    assert process.stdout is not None
    printed = ""
    with anyio.fail_after(60):
        async for chunk in process.stdout:
            printed += chunk.decode()
            if seen in printed:
                return process
    raise AssertionError(f"piano chat ended without printing {seen!r}: {printed!r}")


async def a_turn_running_and_a_message_queued(
    config: Path, provider: FakeResponsesProvider | FakeOpenAI, *options: str
) -> list[anyio.abc.Process]:
    """The turn of "first" hangs at the model; "second" is accepted behind it (the user saw
    "queued"). `options`: more `piano chat` options (``--agent``)."""
    first = await anyio.open_process(
        [*PIANO, "chat", "--config", str(config), *options, "--message", "first"]
    )
    await provider.wait_requests(1)
    second = await chat_until(config, "second", "queued", *options)
    return [first, second]


@pytest.mark.parametrize("stop", ["SIGTERM", "SIGKILL"])
async def test_a_turn_cut_by_a_stopping_daemon_ends_interrupted_and_the_queued_message_is_answered(
    dirs: CodexDirs, stop: str
) -> None:
    async with FakeResponsesProvider() as provider:
        hang = Hang()
        provider.script(hang, Text("the answer to the queued message"))
        config = write_config(dirs, provider)
        state = dirs.root / "state"
        database = state / "piano.db"
        async with daemon_running(config, state / "chat.sock") as daemon:
            clients = await a_turn_running_and_a_message_queued(config, provider)
            daemon.send_signal(getattr(signal, stop))
            with anyio.fail_after(30):
                status = await daemon.wait()
            assert status == (0 if stop == "SIGTERM" else -signal.SIGKILL)
            hang.release()
            for client in clients:
                await client.wait()
        with StoreReader(database) as reader:
            [thread] = reader.threads()
            left = {i.text: i for i in reader.interactions(thread.id)}
        assert left["second"].status == "pending", "a queued message was lost at the stop"
        if stop == "SIGTERM":
            assert (left["first"].status, left["first"].error) == (
                "interrupted",
                "the daemon stopped",
            )
        async with daemon_running(config, state / "chat.sock"):
            found = await interactions_once(
                database, lambda found: found["second"].status == "completed"
            )
            with StoreReader(database) as reader:
                [thread] = reader.threads()
                notices = [
                    entry.event
                    for entry in reader.events_since(thread.id)
                    if entry.event.interaction_id == found["second"].id
                    and getattr(entry.event, "level", None) == "info"
                ]
    assert (found["first"].status, found["first"].error) == ("interrupted", "the daemon stopped")
    assert found["first"].turn_id is not None
    assert found["second"].response == "the answer to the queued message"
    assert any("answering it now" in n.message for n in notices), notices  # type: ignore[union-attr]
    history = str(provider.requests[-1]["input"])
    assert "first" in history, "the queued message did not run in the conversation's thread"


async def live_threads(state: Path) -> list[str]:
    """The ids of the conversation actors `Threads` knows, and of the thread supervisor's
    children, as the console shows them."""
    printed = await console(
        state,
        "print(*sorted(r.id for r in (await conversations()).values()))",
        "print(*sorted(c.ref.id for c in await call('thread_supervisor', 'which_children')))",
    )
    live, children = printed.splitlines()
    assert live == children, f"threads knows {live!r}, the supervisor runs {children!r}"
    return live.split()


async def test_a_killed_conversation_actor_is_restarted_and_stays_the_conversations_only_actor(
    dirs: CodexDirs,
) -> None:
    async with FakeResponsesProvider() as provider:
        provider.script(Text("one"), Text("two"))
        config = write_config(dirs, provider)
        state = dirs.root / "state"
        async with daemon_running(config, state / "chat.sock"):
            assert "one" in await chat(config, "first")
            [old] = await live_threads(state)
            await console(state, f"kill({old})")
            with anyio.fail_after(30):
                while (now := await live_threads(state)) in ([], [old]):
                    pass
            [restarted] = now
            assert "two" in await chat(config, "second")
            assert await live_threads(state) == [restarted], "a second actor was started"
    found = await interactions_once(state / "piano.db", lambda found: len(found) == 2)
    assert [(i.status, i.response) for i in found.values()] == [
        ("completed", "one"),
        ("completed", "two"),
    ]


async def test_a_conversation_actor_killed_mid_turn_is_restarted_and_runs_the_queued_message(
    dirs: CodexDirs,
) -> None:
    async with FakeResponsesProvider() as provider:
        hang = Hang()
        provider.script(hang, Text("answered by the restarted actor"), Text("three"))
        config = write_config(dirs, provider)
        state = dirs.root / "state"
        database = state / "piano.db"
        async with daemon_running(config, state / "chat.sock"):
            clients = await a_turn_running_and_a_message_queued(config, provider)
            [old] = await live_threads(state)
            await console(state, f"kill({old})")
            found = await interactions_once(
                database, lambda found: found["second"].status == "completed"
            )
            [restarted] = await live_threads(state)
            assert restarted != old
            hang.release()
            assert "three" in await chat(config, "third")
            with anyio.fail_after(60):
                exits = [await client.wait() for client in clients]
            assert exits == [1, 0], "piano chat did not see first interrupted, second answered"
            found = await interactions_once(database, lambda found: "third" in found)
    assert [(i.text, i.status) for i in found.values()] == [
        ("first", "interrupted"),
        ("second", "completed"),
        ("third", "completed"),
    ], "the abandoned turn's late events changed the conversation"
    assert found["first"].status == "interrupted"
    assert "restarted" in (found["first"].error or "")
    assert found["second"].response == "answered by the restarted actor"


async def test_an_interaction_records_the_codex_turn_that_ran_it(dirs: CodexDirs) -> None:
    async with FakeResponsesProvider() as provider:
        provider.script(Text("hello"))
        config = write_config(dirs, provider)
        state = dirs.root / "state"
        async with daemon_running(config, state / "chat.sock"):
            assert "hello" in await chat(config, "hi")
        with StoreReader(state / "piano.db") as reader:
            [thread] = reader.threads()
            [interaction] = reader.interactions(thread.id)
            items = reader.items(interaction.id)
    assert interaction.turn_id is not None
    assert items
    assert {item.turn_id for item in items} == {interaction.turn_id}


@contextlib.contextmanager
def small_filesystem(path: Path, size: str = "8m") -> Iterator[Path]:
    """A tmpfs of `size` mounted at `path` for the block (the test runs as root)."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert mounted.returncode == 0, (
        f"cannot mount a tmpfs (run the tests as root, with mount(8)): {mounted.stderr}"
    )
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(path: Path) -> None:
    """Write `path` until its filesystem has no space left."""
    with path.open("wb", buffering=0) as out, contextlib.suppress(OSError):
        while True:
            out.write(b"\0" * 65536)


async def test_a_full_disk_refuses_a_message_with_a_clear_error_and_the_daemon_recovers(
    dirs: CodexDirs,
) -> None:
    async with FakeResponsesProvider() as provider:
        provider.script(Text("one"), Text("two"))
        config = write_config(dirs, provider)
        with small_filesystem(dirs.root / "state") as state:
            async with daemon_running(config, state / "chat.sock") as daemon:
                assert "one" in await chat(config, "first")
                actors = "print(whereis('store').id, *(await conversations()).values())"
                before = await console(state, actors)
                fill(state / "filler")
                refused = await chat_until(config, "x" * 50_000, "the disk is full")
                refused.kill()
                await refused.wait()
                assert await console(state, actors) == before, "the store or thread crashed"
                (state / "filler").unlink()
                assert "two" in await chat(config, "second")
                assert daemon.returncode is None
            found = await interactions_once(state / "piano.db", lambda found: len(found) == 2)
    assert [(i.text, i.status, i.response) for i in found.values()] == [
        ("first", "completed", "one"),
        ("second", "completed", "two"),
    ]


async def test_a_telegram_message_queued_when_the_daemon_was_killed_is_answered_in_its_chat(
    dirs: CodexDirs,
) -> None:
    async with FakeBotApi() as telegram, FakeResponsesProvider() as provider:
        hang = Hang()
        provider.script(hang, Text("the answer to the queued message"))
        section = f'[telegram]\nbase_url = "{telegram.base_url}"\nusers = {{ "1001" = "admin" }}\n'
        config = write_config(dirs, provider, section)
        env = {**os.environ, "PIANO_TELEGRAM_TOKEN": telegram.token}
        state = dirs.root / "state"
        async with daemon_running(config, state / "chat.sock", env) as daemon:
            await telegram.wait_for(lambda call: call.method == "setMyCommands", timeout=60)
            await telegram.push_message(1001, "first", user_id=1001)
            await provider.wait_requests(1)
            await telegram.push_message(1001, "second", user_id=1001)
            await interactions_once(state / "piano.db", lambda found: "second" in found)
            daemon.kill()
            await daemon.wait()
            hang.release()
        async with daemon_running(config, state / "chat.sock", env):
            answer = await telegram.wait_for(
                lambda call: (
                    call.method in ("sendMessage", "editMessageText")
                    and "the answer to the queued message" in str(call.params.get("text"))
                ),
                timeout=60,
            )
            found = await interactions_once(
                state / "piano.db", lambda found: found["second"].status == "completed"
            )
    assert answer.params["chat_id"] == 1001
    assert (found["first"].status, found["first"].error) == ("interrupted", "the daemon stopped")
    with StoreReader(state / "piano.db") as reader:
        [thread] = reader.threads()
        texts = [i.text for i in reader.interactions(thread.id)]
    assert texts == ["first", "second"], "a message was lost or run twice"


async def test_a_message_whose_turn_cannot_start_fails_with_the_reason_and_crashes_nothing(
    dirs: CodexDirs,
) -> None:
    async with FakeResponsesProvider() as provider:
        config = write_config(dirs, provider)
        state = dirs.root / "state"
        async with daemon_running(config, state / "chat.sock") as daemon:
            shutil.rmtree(dirs.work)
            dirs.work.write_text("the agent's workspace is now a file")
            actors = []
            for message in ("first", "second"):
                with anyio.fail_after(60):
                    done = await anyio.run_process(
                        [*PIANO, "chat", "--config", str(config), "--message", message],
                        check=False,
                    )
                printed = done.stdout.decode()
                assert done.returncode == 1, printed + done.stderr.decode()
                assert "[turn failed: the turn could not start" in printed, printed
                actors.append(await live_threads(state))
            assert actors[0] == actors[1], "the conversation's actor crashed"
            assert daemon.returncode is None
        found = await interactions_once(state / "piano.db", lambda found: len(found) == 2)
    assert [i.status for i in found.values()] == ["failed", "failed"]


async def test_messages_queued_when_a_conversation_starts_afresh_end_interrupted_saying_why(
    dirs: CodexDirs,
) -> None:
    async with FakeBotApi() as telegram, FakeResponsesProvider() as provider:
        hang = Hang()
        provider.script(hang)
        section = f'[telegram]\nbase_url = "{telegram.base_url}"\nusers = {{ "1001" = "admin" }}\n'
        config = write_config(dirs, provider, section)
        env = {**os.environ, "PIANO_TELEGRAM_TOKEN": telegram.token}
        state = dirs.root / "state"
        async with daemon_running(config, state / "chat.sock", env):
            await telegram.wait_for(lambda call: call.method == "setMyCommands", timeout=60)
            await telegram.push_message(1001, "first", user_id=1001)
            await provider.wait_requests(1)
            await telegram.push_message(1001, "second", user_id=1001)
            await interactions_once(state / "piano.db", lambda found: "second" in found)
            await telegram.push_message(1001, "/new", user_id=1001)
            found = await interactions_once(
                state / "piano.db",
                lambda found: found["second"].status != "pending",
            )
            hang.release()
    assert (found["first"].status, found["first"].error) == (
        "interrupted",
        "the conversation was closed",
    )
    assert (found["second"].status, found["second"].error) == (
        "interrupted",
        "the conversation was started afresh before this message ran",
    )


async def test_an_openai_agents_turn_cut_by_a_kill_ends_interrupted_and_its_queue_is_answered(
    dirs: CodexDirs,
) -> None:
    async with FakeOpenAI() as openai, FakeResponsesProvider() as provider:
        hang = OpenAIHang()
        openai.script(hang, OpenAIText("the helper's answer to the queued message"))
        section = (
            f'[providers.compatible]\nbase_url = "{openai.base_url}"\nenv_key = "COMPATIBLE_KEY"\n'
            'wire_api = "chat"\n'
            '[agents.helper]\nbackend = "openai"\nmodel = "fake-model"\nprovider = "compatible"\n'
        )
        config = write_config(dirs, provider)
        config.write_text(config.read_text() + section)
        env = {**os.environ, "COMPATIBLE_KEY": openai.api_key}
        state = dirs.root / "state"
        database = state / "piano.db"
        async with daemon_running(config, state / "chat.sock", env) as daemon:
            clients = await a_turn_running_and_a_message_queued(config, openai, "--agent", "helper")
            daemon.kill()
            await daemon.wait()
            hang.release()
            for client in clients:
                await client.wait()
        async with daemon_running(config, state / "chat.sock", env):
            found = await interactions_once(
                database, lambda found: found["second"].status == "completed"
            )
    assert (found["first"].status, found["first"].error) == ("interrupted", "the daemon stopped")
    assert found["second"].response == "the helper's answer to the queued message"
