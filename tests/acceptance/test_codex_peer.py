"""A dead or broken provider, or a hung codex, is named within seconds — through `piano run`
with the real codex and the fake provider, `piano chat`, `piano doctor`, the store and the
daemon's log (issue #13)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream

from piano.codex import EVENT_TEXT_LIMIT
from piano.store import StoreReader
from schemas import events as ev
from tests.acceptance.daemon import PIANO, chat, console, daemon_running, write_config
from tests.fakes.responses_provider import CodexDirs, FakeResponsesProvider, HttpError, Text

pytestmark = pytest.mark.anyio


class DaemonLog:
    """The daemon's JSON log lines (its stderr), read as they come."""

    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []
        self._more = anyio.Event()

    async def read(self, stream: anyio.abc.ByteReceiveStream) -> None:
        buffered = BufferedByteReceiveStream(stream)
        with contextlib.suppress(anyio.EndOfStream, anyio.IncompleteRead):
            while True:
                raw = await buffered.receive_until(b"\n", 1 << 26)
                with contextlib.suppress(ValueError):
                    self.lines.append(json.loads(raw))
                self._more.set()
                self._more = anyio.Event()

    async def wait_for(self, event: str, **fields: Any) -> dict[str, Any]:
        """The first line logged as `event` with `fields` (waits for it, up to a minute)."""
        seen = 0
        with anyio.fail_after(60):
            while True:
                for line in self.lines[seen:]:
                    if line.get("event") == event and all(
                        line.get(k) == v for k, v in fields.items()
                    ):
                        return line
                seen = len(self.lines)
                await self._more.wait()


@contextlib.asynccontextmanager
async def logged_daemon(config: Path, dirs: CodexDirs) -> AsyncIterator[DaemonLog]:
    log = DaemonLog()
    async with (
        daemon_running(config, dirs.root / "state" / "chat.sock") as daemon,
        anyio.create_task_group() as tasks,
    ):
        assert daemon.stderr is not None
        tasks.start_soon(log.read, daemon.stderr)
        yield log
        tasks.cancel_scope.cancel()


async def failed_chat(config: Path, message: str) -> str:
    """`piano chat --message` whose turn fails (exit status 1); its output."""
    done = await anyio.run_process(
        [*PIANO, "chat", "--config", str(config), "--message", message], check=False
    )
    assert done.returncode == 1, done.stdout.decode() + done.stderr.decode()
    return done.stdout.decode()


def with_codex_options(config: Path, **options: float) -> Path:
    """`config` with `[codex]` `options` added (timeouts short enough for a test)."""
    lines = "".join(f"{key} = {value}\n" for key, value in options.items())
    config.write_text(config.read_text().replace("[codex]\n", f"[codex]\n{lines}", 1))
    return config


@dataclass(frozen=True)
class Gone:
    """A provider that is not there any more: its port is closed (`write_config` needs only
    the base URL)."""

    base_url: str


async def gone_provider() -> Any:
    async with FakeResponsesProvider() as provider:
        return Gone(provider.base_url)


def stored(dirs: CodexDirs) -> tuple[Any, list[Any]]:
    with StoreReader(dirs.root / "state" / "piano.db") as reader:
        [thread] = reader.threads()
        return reader.interactions(thread.id), reader.events_since(thread.id, 0)


async def test_an_unreachable_provider_fails_the_turn_within_seconds_naming_its_address(
    dirs: CodexDirs,
) -> None:
    provider = await gone_provider()
    base_url = provider.base_url
    address = base_url.removeprefix("http://").removesuffix("/v1")
    config = write_config(dirs, provider)
    async with logged_daemon(config, dirs) as log:
        with anyio.fail_after(45):  # codex's unbounded retries would keep it for 600 s
            shown = await failed_chat(config, "hello?")
        assert "[turn failed:" in shown
        assert f"POST {base_url}/responses: cannot connect" in shown, shown
        turn = await log.wait_for("codex.turn", status="failed", agent="default")
    [interaction], _ = stored(dirs)
    assert interaction.status == "failed"
    assert address in interaction.error
    assert "cannot connect" in interaction.error
    assert turn["duration_s"] < 45
    assert turn["thread"] == interaction.thread_id


async def test_doctor_fails_naming_an_unreachable_provider_and_passes_a_live_one(
    dirs: CodexDirs,
) -> None:
    async with FakeResponsesProvider() as provider:
        config = write_config(dirs, provider)
        done = await anyio.run_process([*PIANO, "doctor", "--config", str(config)], check=False)
        lines = done.stdout.decode().splitlines()
        [live] = [line for line in lines if "provider fake" in line]
        assert live.startswith(f"ok   provider fake: POST {provider.base_url}/responses: HTTP 200")
    dead = await gone_provider()
    config = write_config(dirs, dead)
    done = await anyio.run_process([*PIANO, "doctor", "--config", str(config)], check=False)
    shown = done.stdout.decode()
    assert done.returncode == 1, shown
    [line] = [line for line in shown.splitlines() if "provider fake" in line]
    assert line.startswith(f"FAIL provider fake: POST {dead.base_url}/responses: cannot connect")
    assert "fix: start the provider, or fix providers.fake" in shown


async def test_a_provider_answering_500_fails_the_turn_with_its_status_and_own_message(
    dirs: CodexDirs,
) -> None:
    body = json.dumps({"error": {"message": "model shard 7 is on fire", "type": "server_error"}})
    async with FakeResponsesProvider(default=HttpError(500, body)) as provider:
        config = write_config(dirs, provider)
        async with logged_daemon(config, dirs) as log:
            with anyio.fail_after(60):
                shown = await failed_chat(config, "hello?")
            assert "HTTP 500: model shard 7 is on fire" in shown, shown
            retry = await log.wait_for("codex.stderr", level="warning")
            assert "retrying sampling request" in retry["line"]
            await log.wait_for("codex.turn", status="failed", level="warning")
            probed = await log.wait_for("codex.provider_probed", provider="fake")
            assert "HTTP 500: model shard 7 is on fire" in probed["answer"]
    [interaction], _ = stored(dirs)
    assert interaction.status == "failed"
    assert f"POST {provider.base_url}/responses: HTTP 500: model shard 7 is on fire" in (
        interaction.error
    )


async def test_a_turn_logs_one_line_with_its_thread_agent_status_duration_and_tokens(
    dirs: CodexDirs,
) -> None:
    async with FakeResponsesProvider() as provider:
        provider.script(Text("counted"))
        config = write_config(dirs, provider)
        async with logged_daemon(config, dirs) as log:
            assert "counted" in await chat(config, "count my tokens")
            turn = await log.wait_for("codex.turn", status="completed")
            [interaction], _ = stored(dirs)
            assert turn["thread"] == interaction.thread_id
            assert turn["agent"] == "default"
            assert turn["level"] == "info"
            assert 0 < turn["duration_s"] < 60
            assert turn["total_tokens"] > 0
            assert turn["output_tokens"] > 0


async def test_a_huge_delta_is_stored_capped_while_the_final_answer_stays_whole(
    dirs: CodexDirs,
) -> None:
    answer = "".join(f"line {i:07d} of a very long answer\n" for i in range(40_000))  # 1.3 MB
    async with FakeResponsesProvider() as provider:
        provider.script(Text(answer, deltas=1))
        config = write_config(dirs, provider)
        async with logged_daemon(config, dirs):
            with anyio.fail_after(60):
                shown = await chat(config, "write a lot")
            assert answer.strip() in shown
            [interaction], events = stored(dirs)
    assert interaction.response == answer
    [delta] = [e.event for e in events if isinstance(e.event, ev.ItemDelta)]
    assert len(delta.delta) < EVENT_TEXT_LIMIT + 100
    assert delta.delta.startswith("line 0000000")
    assert "characters not stored" in delta.delta
    [final] = [
        e.event
        for e in events
        if isinstance(e.event, ev.ItemCompleted) and e.event.item.kind == "agent_message"
    ]
    assert final.item.text == answer


async def codex_pid(dirs: CodexDirs) -> int:
    """The pid of the running codex's process group leader (the bubblewrap that sets up its
    namespace, with codex inside it); 0 while none is registered (it is being restarted)."""
    ask = "print((await call('codex', 'connection')).pid if whereis('codex') else 0)"
    return int(await console(dirs.root / "state", ask))


@contextlib.contextmanager
def stopped(pid: int, *, kill: bool = True) -> Any:
    """SIGSTOP the process group `pid` leads (codex and its namespace's bubblewrap) for the
    block; afterwards it is continued (and killed, if `kill`) if it is still there."""
    os.killpg(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for sig in (signal.SIGCONT, signal.SIGKILL) if kill else (signal.SIGCONT,):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, sig)


async def test_a_stopped_codex_is_noticed_by_the_watchdog_logged_and_restarted(
    dirs: CodexDirs,
) -> None:
    async with FakeResponsesProvider(default=Text("still here")) as provider:
        config = with_codex_options(
            write_config(dirs, provider), watchdog_interval=0.5, watchdog_timeout=2
        )
        async with logged_daemon(config, dirs) as log:
            assert "still here" in await chat(config, "first")
            old = await codex_pid(dirs)
            with stopped(old):
                with anyio.fail_after(20):
                    hung = await log.wait_for("codex.hung")
                    await log.wait_for("codex.exited", pid=old)
                    assert hung["level"] == "error"
                    assert hung["pid"] == old
                    while (new := await codex_pid(dirs)) in (old, 0):
                        pass
                assert new != old
                assert "still here" in await chat(config, "after the restart")


async def test_a_turn_start_that_timed_out_is_never_run_later_by_codex(dirs: CodexDirs) -> None:
    async with FakeResponsesProvider(default=Text("an answer")) as provider:
        config = with_codex_options(
            write_config(dirs, provider),
            request_timeout=3,
            watchdog_interval=3600,
        )
        async with logged_daemon(config, dirs):
            assert "an answer" in await chat(config, "warm up")
            old = await codex_pid(dirs)
            with stopped(old, kill=False):
                with anyio.fail_after(60):
                    shown = await failed_chat(config, "zebra-crossing")
                assert "[turn failed: Codex did not start the turn in time" in shown, shown
            # The old codex, continued now, must not run the zebra turn.
            assert "an answer" in await chat(config, "after")
            sent = json.dumps(provider.requests)
            assert "zebra-crossing" not in sent
            interactions, _ = stored(dirs)
            assert [(i.text, i.status) for i in interactions] == [
                ("warm up", "completed"),
                ("zebra-crossing", "failed"),
                ("after", "completed"),
            ]
