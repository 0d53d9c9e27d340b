"""What the user is shown through the running daemon is true and complete: every MCP tool works
when Codex calls it, approvals and results say what happened, `piano status` lists the threads,
every line the daemon writes is structured, and bad input (a broken config, malformed HTTP) gets
one clear sentence instead of a traceback.

Every test drives `piano run` with the real codex and the fake model provider
(`tests.acceptance.daemon`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import aiohttp
import anyio
import anyio.abc
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec

from piano.store import StoreReader
from tests.acceptance.daemon import PIANO, chat, console, daemon_running, write_config
from tests.fakes.responses_provider import (
    ApplyPatch,
    CodexDirs,
    ExecCommand,
    FakeResponsesProvider,
    FunctionCall,
    Hang,
    Text,
)
from tests.test_webfetch import LocalSite
from tests.web.conftest import TOKEN, Client
from tests.web.test_browser import run, say, text_in, until

pytestmark = pytest.mark.anyio

PAGE = (
    "<html><head><title>Tool page</title></head><body><article><h1>Tool page</h1>"
    "<p id='intro'>Piano drives this page through every browser tool it offers.</p>"
    "<form action='/second'><input id='q' name='q'></form>"
    "<a id='next' href='/second'>next</a></article></body></html>"
)
SECOND = "<html><head><title>Second page</title></head><body><p>the second page</p></body></html>"


class Terminal:
    """An interactive `piano chat`: type lines, read what it prints so far."""

    def __init__(self, process: anyio.abc.Process) -> None:
        self.process = process
        self.shown = ""

    async def type(self, line: str) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send(line.encode() + b"\n")

    async def until(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        """Read until `pattern` (a regex) appears in the output; its match."""
        assert self.process.stdout is not None
        with anyio.fail_after(timeout):
            while (found := re.search(pattern, self.shown)) is None:
                try:
                    self.shown += (await self.process.stdout.receive()).decode()
                except anyio.EndOfStream:
                    raise AssertionError(
                        f"piano chat ended before {pattern!r}:\n{self.shown}"
                    ) from None
        return found


@contextlib.asynccontextmanager
async def terminal(config: Path, *options: str) -> AsyncIterator[Terminal]:
    """`piano chat` in interactive mode for the block; killed if still running at the end."""
    process = await anyio.open_process([*PIANO, "chat", "--config", str(config), *options])
    try:
        yield Terminal(process)
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def web_config(dirs: CodexDirs, provider: FakeResponsesProvider, extra: str = "") -> Path:
    """A daemon config with the web surface and the MCP endpoint on free loopback ports (the
    web token: `WEB_ENV`)."""
    ports = f"[web]\nenabled = true\nport = {free_port()}\n[tools.mcp]\nport = {free_port()}\n"
    return write_config(dirs, provider, ports + extra)


def web_base(config: Path, section: str = "web") -> str:
    port = re.search(
        rf"\[{re.escape(section)}\]\n(?:enabled = true\n)?port = (\d+)", config.read_text()
    )
    assert port is not None
    return f"http://127.0.0.1:{port[1]}"


WEB_ENV = {**os.environ, "PIANO_WEB_TOKEN": TOKEN}
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def read_only(config: Path) -> None:
    """Make the default agent's sandbox read-only, so that writing a file asks for approval."""
    text = config.read_text().replace(
        'model = "gpt-5.5"', 'model = "gpt-5.5"\nsandbox = "read-only"'
    )
    config.write_text(text)


def unstructured(log: Path) -> list[str]:
    """The lines of `log` that are not one JSON object each."""
    bad = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            assert isinstance(json.loads(line), dict)
        except (ValueError, AssertionError):
            bad.append(line)
    return bad


def _outputs(requests: list[dict[str, Any]]) -> dict[str, str]:
    """The model-visible output of every tool call, by call id, from what codex sent back."""
    outputs: dict[str, str] = {}
    for request in requests:
        for item in request["input"]:
            if item.get("type") == "function_call_output":
                outputs[item["call_id"]] = json.dumps(item["output"])
    return outputs


async def test_every_mcp_tool_works_when_codex_calls_it_through_the_running_daemon(
    dirs: CodexDirs,
) -> None:
    site = LocalSite()
    site.page("/", PAGE)
    site.page("/second", SECOND)
    async with site, FakeResponsesProvider() as provider:
        calls = {
            "web_fetch": {"url": site.url("/")},
            "browser_visit": {"url": site.url("/")},
            "browser_find": {"selector": "#intro"},
            "browser_read_text": {"selector": "#intro"},
            "browser_type": {"selector": "#q", "text": "piano"},
            "browser_run_script": {"script": "return document.querySelector('#q').value"},
            "browser_screenshot": {},
            "browser_click": {"selector": "#next"},
            "browser_current_url": {},
            "browser_back": {},
            "shell": {"command": "echo jailed > /workspace/out.txt && cat /workspace/out.txt"},
            "send_message": {"text": "Half-way through the tools."},
            "notes_save": {"title": "plan", "text": "tune the piano"},
            "notes_get": {"title": "plan"},
            "notes_list": {},
        }
        provider.script(
            *(
                FunctionCall(f"mcp__piano__{name}", arguments, call_id=f"call_{name}")
                for name, arguments in calls.items()
            ),
            Text("All tools ran."),
        )
        tools = (
            '[tools.webfetch]\nallowed_networks = ["127.0.0.1/32"]\n'
            '[tools.browser]\nallowed_networks = ["127.0.0.1/32"]\n'
            f'[tools.jail]\nworkspace_root = "{dirs.root / "jails"}"\n'
        )
        config = write_config(dirs, provider, tools)
        async with daemon_running(config, dirs.root / "state" / "chat.sock"):
            shown = await chat(config, "use every tool")
            outputs = _outputs(await provider.wait_requests(len(calls) + 1))
    from piano.mcp import TOOL_NAMES

    assert sorted(calls) == sorted(TOOL_NAMES), "a tool of the MCP endpoint is not exercised"
    expected = {
        "web_fetch": "Piano drives this page",
        "browser_visit": "Tool page",
        "browser_find": "Piano drives this page",
        "browser_read_text": "Piano drives this page",
        "browser_type": "Tool page",
        "browser_run_script": "piano",
        "browser_screenshot": "image",
        "browser_click": "Second page",
        "browser_current_url": "/second",
        "browser_back": "Tool page",
        "shell": "jailed",
        "send_message": "sent",
        "notes_save": "saved the note",
        "notes_get": "tune the piano",
        "notes_list": "plan",
    }
    for name, text in expected.items():
        output = outputs.get(f"call_{name}", "(no output)")
        assert text in output, f"{name}: {output[:500]}"
    assert "Half-way through the tools." in shown, shown
    assert "All tools ran." in shown


async def test_codex_keeps_notes_over_mcp_that_a_later_turn_of_the_conversation_reads(
    dirs: CodexDirs,
) -> None:
    async with FakeResponsesProvider() as provider:
        provider.script(
            FunctionCall("mcp__piano__notes_save", {"title": "plan", "text": "tune the piano"}),
            Text("Noted."),
            FunctionCall("mcp__piano__notes_get", {"title": "plan"}, call_id="call_get"),
            Text("Recalled."),
        )
        config = write_config(dirs, provider)
        async with daemon_running(config, dirs.root / "state" / "chat.sock"):
            first = await chat(config, "remember the plan", "--conversation", "work")
            second = await chat(config, "what was the plan?", "--conversation", "work")
            outputs = _outputs(await provider.wait_requests(4))

    assert "Noted." in first
    assert "Recalled." in second
    assert "tune the piano" in outputs["call_get"]


async def test_piano_status_lists_the_live_threads_without_the_console_banner(
    dirs: CodexDirs,
) -> None:
    async with FakeResponsesProvider() as provider:
        config = write_config(dirs, provider)
        async with daemon_running(config, dirs.root / "state" / "chat.sock"):
            await chat(config, "hello", "--conversation", "work")
            status = await anyio.run_process(
                [*PIANO, "status", "--config", str(config)], check=False
            )
            ps = await console(dirs.root / "state", "ps()")
    shown = status.stdout.decode()
    assert status.returncode == 0, status.stderr.decode()
    assert "threads:\n  terminal:work (default) -> <ActorRef" in shown, shown
    assert shown.startswith("ActorSystem ("), shown  # the tree first: no console greeting
    assert "Piano console" not in shown
    [conversation] = [line for line in ps.splitlines() if "ConversationThread" in line]
    assert "terminal:work:default" in conversation, ps


async def test_a_declined_command_shows_as_declined_with_its_command_on_the_terminal(
    dirs: CodexDirs,
) -> None:
    async with FakeResponsesProvider() as provider:
        provider.script(ExecCommand("echo never-ran", require_escalated=True), Text("Understood."))
        config = write_config(dirs, provider)
        async with (
            daemon_running(config, dirs.root / "state" / "chat.sock"),
            terminal(config) as chat_client,
        ):
            await chat_client.until("Connected to thread")
            await chat_client.type("run it")
            asked = await chat_client.until(r"\? approval (\S+): (.*)")
            assert "echo never-ran" in asked[2]
            await chat_client.type(f"/deny {asked[1]}")
            await chat_client.until("Understood.")
            await chat_client.type("/quit")
    assert "[declined: /bin/bash -lc 'echo never-ran']" in chat_client.shown, chat_client.shown
    assert "exit None" not in chat_client.shown


async def test_a_file_change_approval_shows_each_path_and_its_diff_on_the_terminal(
    dirs: CodexDirs,
) -> None:
    async with FakeResponsesProvider() as provider:
        target = dirs.work / "notes.txt"
        patch = f"*** Begin Patch\n*** Add File: {target}\n+a line Piano shows\n*** End Patch\n"
        provider.script(ApplyPatch(patch), Text("Written."))
        config = write_config(dirs, provider)
        config.write_text(
            config.read_text().replace(
                'model = "gpt-5.5"', 'model = "gpt-5.5"\nsandbox = "read-only"'
            )
        )
        async with daemon_running(config, dirs.root / "state" / "chat.sock"):
            shown = await chat(config, "write the notes", "--approve")
    assert f"change files\n  add {target}\n    +a line Piano shows" in shown, shown
    assert target.read_text() == "a line Piano shows\n"


async def test_a_daemon_with_a_codex_thread_stops_promptly_and_every_line_it_wrote_is_json(
    dirs: CodexDirs,
) -> None:
    async with FakeResponsesProvider() as provider, contextlib.AsyncExitStack() as stack:
        provider.script(FunctionCall("mcp__piano__send_message", {"text": "on it"}), Text("Done."))
        config = write_config(dirs, provider)
        log = dirs.root / "daemon.log"
        async with daemon_running(
            config, dirs.root / "state" / "chat.sock", stderr=stack.enter_context(log.open("wb"))
        ) as daemon:
            assert "on it" in await chat(config, "hello")
            daemon.send_signal(signal.SIGTERM)
            with anyio.fail_after(30):
                assert await daemon.wait() == 0
    assert unstructured(log) == []
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    errors = [line for line in lines if line["level"] in ("error", "critical")]
    assert [line for line in errors if line["event"] != "codex.stderr"] == []  # codex's own
    # Promptly, without a clock: no child outlived its shutdown timeout (that would be a
    # supervisor.shutdown_error above) and codex left when its stdin closed, unkilled.
    assert [line for line in lines if line["event"] == "codex.kill"] == []


async def test_a_thread_another_surface_opened_is_named_in_the_web_snapshot_and_gets_the_message(
    dirs: CodexDirs,
) -> None:
    async with FakeResponsesProvider() as provider:
        provider.script(Text("first answer"), Text("second answer"))
        config = web_config(dirs, provider)
        state = dirs.root / "state"
        async with (
            daemon_running(config, state / "chat.sock", env=WEB_ENV),
            aiohttp.ClientSession() as session,
        ):
            await chat(config, "from the terminal")
            ws = await session.ws_connect(f"{web_base(config)}/stream", headers=AUTH)
            client = Client(ws)
            await client.of_type("welcome")
            with anyio.fail_after(30):
                while True:  # the web surface looks the conversation up when it sees the thread
                    await client.send({"type": "subscribe", "thread_id": "*"})
                    snapshot = await client.of_type("snapshot")
                    [thread] = snapshot.threads
                    if thread.surface:
                        break
            assert (thread.surface, thread.conversation) == ("terminal", "default")
            await client.send({"type": "message", "thread_id": thread.thread_id, "text": "hi"})
            accepted = await client.of_type("accepted")
            assert accepted.thread_id == thread.thread_id
            await client.until(lambda e: e.type == "turn.completed" and e.seq > 0, timeout=60)
            await ws.close()
    with StoreReader(state / "piano.db") as reader:
        [stored] = reader.threads()
        texts = [i.text for i in reader.interactions(stored.id)]
    assert (stored.surface, texts) == ("terminal", ["from the terminal", "hi"])


async def test_an_sse_file_change_approval_carries_each_path_and_its_diff(dirs: CodexDirs) -> None:
    async with FakeResponsesProvider() as provider:
        target = dirs.work / "notes.txt"
        patch = f"*** Begin Patch\n*** Add File: {target}\n+a line Piano shows\n*** End Patch\n"
        provider.script(ApplyPatch(patch), Text("Written."))
        config = web_config(dirs, provider)
        read_only(config)
        async with (
            daemon_running(config, dirs.root / "state" / "chat.sock", env=WEB_ENV),
            aiohttp.ClientSession(headers=AUTH) as session,
        ):
            base = web_base(config)
            frames: list[tuple[str, dict[str, Any]]] = []
            async with session.post(
                f"{base}/api/messages/stream", json={"text": "write the notes"}
            ) as response:
                event = ""
                async for raw in response.content:
                    line = raw.decode().rstrip("\n")
                    if line.startswith("event: "):
                        event = line[7:]
                    elif line.startswith("data: "):
                        data = json.loads(line[6:])
                        frames.append((event, data))
                        if event == "user_message":
                            thread_id = data["thread_id"]
                        if event == "approval":
                            decided = await session.post(
                                f"{base}/api/threads/{thread_id}/approvals/{data['approval_id']}",
                                json={"decision": "accept"},
                            )
                            assert decided.status < 300, await decided.text()
    [approval] = [data for event, data in frames if event == "approval"]
    assert approval["kind"] == "file_change"
    assert approval["changes"] == [
        {"path": str(target), "kind": "add", "diff": "a line Piano shows\n"}
    ]
    assert frames[-1] == ("done", {**frames[-1][1], "status": "completed"})


async def test_the_dashboard_codex_panel_counts_the_restarts_the_tree_shows(
    dirs: CodexDirs,
) -> None:
    async with FakeResponsesProvider() as provider:
        config = web_config(dirs, provider)
        state = dirs.root / "state"
        async with (
            daemon_running(config, state / "chat.sock", env=WEB_ENV),
            aiohttp.ClientSession(headers=AUTH) as session,
        ):
            await chat(config, "start codex")
            await console(state, "kill('codex')")
            with anyio.fail_after(60):
                while True:  # until the supervisor has restarted it
                    async with session.get(f"{web_base(config)}/api/dashboard") as response:
                        dashboard = await response.json()
                    [codex] = dashboard["codex"] or [None]
                    if codex is not None and codex["status"] != "exited":
                        [row] = _nodes(dashboard["tree"], "codex")
                        if row["restarts"] == 1:
                            break
    assert codex["restarts"] == 1, codex
    # the other panels read the same declared describe() and statistics()
    assert dashboard["pipeline"]["accepted"] > 0, dashboard["pipeline"]
    [events] = _nodes(dashboard["tree"], "events")
    assert events["description"].startswith("pipeline 'events': "), events
    assert "restarts" in dashboard["tree"][0]["description"], dashboard["tree"][0]


def _nodes(tree: list[dict[str, Any]], child_id: str) -> list[dict[str, Any]]:
    """Every node of the dashboard's tree whose child id is `child_id`."""
    found = []
    for node in tree:
        if node["child_id"] == child_id:
            found.append(node)
        found.extend(_nodes(node.get("children") or [], child_id))
    return found


BAD_REQUESTS = [
    ("POST", "/api/uploads", {"Content-Type": "text/plain"}, b"not a form"),
    ("POST", "/api/uploads", {"Content-Type": "multipart/form-data"}, b"--x\r\n"),
    (
        "POST",
        "/api/uploads",
        {"Content-Type": "multipart/form-data; boundary=x"},
        b"--x\r\nContent-Disposition: form-data; name=file\r\n\r\nabc",
    ),
    ("POST", "/api/messages", {}, b'{"text": "hi", "agent": "nobody"}'),
    ("POST", "/api/messages", {}, b"\xff\xfe"),
    ("POST", "/api/messages", {}, b"[]"),
    ("POST", "/api/threads/nothing/messages", {}, b'{"text": "hi"}'),
    ("POST", "/api/threads/nothing/approvals/x", {}, b'{"decision": "expired"}'),
    ("POST", "/api/threads/nothing/interrupt", {}, b""),
    ("GET", "/api/threads/nothing/interactions", {}, b""),
    ("GET", "/api/threads/nothing/transcript", {}, b""),
    ("GET", "/api/threads/%00/transcript", {}, b""),
    ("GET", "/api/no-such-route", {}, b""),
    ("DELETE", "/api/threads", {}, b""),
    ("POST", "/api/messages/stream", {}, b'{"text": 1}'),
    ("POST", "/api/messages/stream", {}, b'{"text": "hi", "agent": "nobody"}'),
    ("POST", "/api/token/rotate", {}, b'{"grace": -1}'),
    ("POST", "/api/token/rotate", {}, b'{"grace": 1e400}'),
]


MALFORMED_HTTP = [
    b"GARBAGE\r\n\r\n",
    b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + bytes(64),
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -1\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX: " + b"a" * 70_000 + b"\r\n\r\n",
    b"POST /api/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"GET /\x00 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
]


async def send_raw(base: str, raw: bytes) -> tuple[int, str]:
    """Send `raw` bytes to the server at `base`; the status and text of its answer."""
    host, port = base.removeprefix("http://").split(":")
    async with await anyio.connect_tcp(host, int(port)) as stream:
        await stream.send(raw)
        answer = b""
        with anyio.fail_after(30):
            while b"\r\n\r\n" not in answer:
                try:
                    answer += await stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    break
    head = answer.decode(errors="replace")
    match = re.match(r"HTTP/1\.[01] (\d{3})", head)
    return (int(match[1]) if match else 0), head


async def test_every_bad_api_request_gets_the_documented_json_error_and_the_daemon_carries_on(
    dirs: CodexDirs,
) -> None:
    async with FakeResponsesProvider() as provider, contextlib.AsyncExitStack() as stack:
        config = web_config(dirs, provider)
        log = dirs.root / "daemon.log"
        answers = []
        async with (
            daemon_running(
                config,
                dirs.root / "state" / "chat.sock",
                env=WEB_ENV,
                stderr=stack.enter_context(log.open("wb")),
            ),
            aiohttp.ClientSession(headers=AUTH) as session,
        ):
            for method, path, headers, body in BAD_REQUESTS:
                url = web_base(config) + path
                async with session.request(method, url, headers=headers, data=body) as response:
                    text = await response.text(errors="replace")
                    answers.append((method, path, body, response.status, text))
            for base in (web_base(config), web_base(config, "tools.mcp")):
                for raw in MALFORMED_HTTP:
                    answers.append(("RAW", base, raw, *await send_raw(base, raw)))
            assert "ok" in await chat(config, "still there?")
    for method, path, body, status, text in answers:
        if method == "RAW":
            assert 400 <= status < 500, f"{path} {body[:40]!r} -> {status} {text[:200]}"
            continue
        where = f"{method} {path} {body[:40]!r} -> {status} {text[:200]}"
        assert status >= 400, where
        error = json.loads(text)["error"]
        assert error["code"], where
        assert error["message"], where
    assert unstructured(log) == []
    crashed = [line for line in log.read_text().splitlines() if "child_terminated" in line]
    assert crashed == [], "bad input crashed part of the daemon"
    assert unstructured(log) == []


async def test_piano_chat_says_the_daemon_went_away_and_carries_on_when_it_is_back(
    dirs: CodexDirs,
) -> None:
    async with FakeResponsesProvider() as provider:
        provider.script(Text("first answer"), Text("answer after the restart"))
        config = write_config(dirs, provider)
        socket = dirs.root / "state" / "chat.sock"
        async with daemon_running(config, socket) as daemon:
            client = await anyio.open_process([*PIANO, "chat", "--config", str(config)])
            try:
                user = Terminal(client)
                await user.until("Connected to thread")
                await user.type("hello")
                await user.until("first answer")
                daemon.kill()
                await daemon.wait()
                await user.until("the daemon went away; reconnecting")
                await user.type("are you back?")  # typed while the daemon is down
                async with daemon_running(config, socket):
                    await user.until("answer after the restart")
                    await user.type("/quit")
                    with anyio.fail_after(30):
                        assert await client.wait() == 0
            finally:
                if client.returncode is None:
                    client.kill()
                    await client.wait()
    assert user.shown.count("Connected to thread") == 2, user.shown


async def test_a_scripted_piano_chat_fails_with_a_reason_when_the_daemon_dies_mid_answer(
    dirs: CodexDirs,
) -> None:
    async with FakeResponsesProvider() as provider:
        hang = Hang()
        provider.script(hang)
        config = write_config(dirs, provider)
        async with daemon_running(config, dirs.root / "state" / "chat.sock") as daemon:
            scripted = await anyio.open_process(
                [*PIANO, "chat", "--config", str(config), "--message", "hello"]
            )
            await provider.wait_requests(1)
            daemon.kill()
            await daemon.wait()
            hang.release()
            with anyio.fail_after(30):
                assert await scripted.wait() == 1
            assert scripted.stderr is not None
            said = (await scripted.stderr.receive()).decode()
    assert "the daemon went away before the answer finished" in said


def with_key(text: str, section: str, assignment: str) -> str:
    """`text` with `assignment` (``key = value``) in `[section]`, replacing the key's value
    there or adding the key, or the section, if missing."""
    header = f"[{section}]\n"
    if header not in text:
        return text + f"\n{header}{assignment}\n"
    before, _, rest = text.partition(header)
    body, next_header, after = rest.partition("\n[")
    key = assignment.split("=")[0].strip()
    lines = [line for line in body.splitlines() if line.split("=")[0].strip() != key]
    return before + header + "\n".join([assignment, *lines]) + "\n" + next_header + after


LONG = "s" * 120
BAD_CONFIGS: list[tuple[str, str, str | bytes]] = [
    # (what, the key the error must name, a [section] and assignment, or the whole file)
    ("not UTF-8", "UTF-8", b"[daemon]\nlog_level = '\xff\xfe'\n"),
    ("deep arrays", "nested", "x = " + "[" * 5000 + "]" * 5000 + "\n"),
    ("deep tables", "nested", "x = " + "{a = " * 3000 + "1" + "}" * 3000 + "\n"),
    ("not TOML", "line 1", "[daemon\n"),
    ("a directory", "directory", "DIRECTORY"),
    ("state dir under /proc", "daemon.state_dir", "daemon|state_dir = '/proc/piano-state'"),
    ("state dir a file", "daemon.state_dir", "daemon|state_dir = '/etc/hostname'"),
    ("socket path too long", "daemon.chat_socket", f"daemon|chat_socket = '{LONG}.sock'"),
    ("backoff cap 0", "codex.restart_backoff_cap", "codex|restart_backoff_cap = 0"),
    ("backoff negative", "codex.restart_backoff", "codex|restart_backoff = -1"),
    ("backoff above cap", "codex.restart_backoff", "codex|restart_backoff = 60.0"),
    ("request timeout inf", "codex.request_timeout", "codex|request_timeout = inf"),
    ("request timeout 0", "codex.request_timeout", "codex|request_timeout = 0"),
    ("shutdown nan", "daemon.shutdown_timeout", "daemon|shutdown_timeout = nan"),
    ("shutdown negative", "daemon.shutdown_timeout", "daemon|shutdown_timeout = -1"),
    ("turn timeout inf", "agents.default.turn_timeout", "agents.default|turn_timeout = inf"),
    ("idle timeout 0", "agents.default.idle_timeout", "agents.default|idle_timeout = 0"),
    ("log level", "daemon.log_level", "daemon|log_level = 'loud'"),
    ("state dir type", "daemon.state_dir", "daemon|state_dir = 5"),
    ("unknown key", "daemon.colour", "daemon|colour = 'blue'"),
    ("unknown section", "sounds", "sounds|on = true"),
    ("agents not a table", "agents", "agents = 5\n"),
    ("agent not a table", "agents.other", "agents|other = 'x'"),
    ("unknown provider", "agents.default.provider", "agents.default|provider = 'nope'"),
    ("default agent", "default_agent", "default_agent = 'ghost'\n"),
    ("web port", "web.port", "web|port = 70000"),
    ("web port negative", "web.port", "web|port = -1"),
    ("web heartbeat inf", "web.heartbeat", "web|heartbeat = inf"),
    ("web buffer 0", "web.replay_buffer", "web|replay_buffer = 0"),
    ("web frame 0", "web.max_frame", "web|max_frame = 0"),
    ("mcp port", "tools.mcp.port", "tools.mcp|port = 123456"),
    ("mcp timeout inf", "tools.mcp.tool_timeout_sec", "tools.mcp|tool_timeout_sec = inf"),
    ("jail timeout inf", "tools.jail.timeout", "tools.jail|timeout = inf"),
    ("fetch timeout nan", "tools.webfetch.timeout", "tools.webfetch|timeout = nan"),
    ("codex args", "codex.args", "codex|args = 'plugins'"),
    ("wire api", "providers.fake.wire_api", "providers.fake|wire_api = 'smoke'"),
    (
        "provider type",
        "providers.fake.request_max_retries",
        "providers.fake|request_max_retries = 'x'",
    ),
]


def _bad_config(dirs: CodexDirs, provider: FakeResponsesProvider, case: str | bytes) -> Path:
    path = write_config(dirs, provider)
    if case == "DIRECTORY":
        path.unlink()
        path.mkdir()
    elif isinstance(case, bytes):
        path.write_bytes(case)
    elif "|" in case:
        section, assignment = case.split("|", 1)
        path.write_text(with_key(path.read_text(), section, assignment))
    elif case.startswith(("x = ", "[daemon\n", "agents = ")):
        path.write_text(case)
    else:
        path.write_text(case + path.read_text())
    return path


async def run_briefly(command: list[str]) -> CompletedProcess[bytes]:
    """Run `command`; one still running after 30 s (a daemon that started) is stopped and
    reported with status 0 and what it wrote."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = await anyio.open_process(command, stdout=out, stderr=err, env=WEB_ENV)
        with anyio.move_on_after(30):
            await process.wait()
        returncode = process.returncode
        if returncode is None:
            process.terminate()
            await process.wait()
            returncode = 0
        out.seek(0)
        err.seek(0)
        return CompletedProcess(command, returncode, out.read(), err.read())


@pytest.mark.parametrize(("what", "key", "case"), BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
async def test_a_bad_config_gets_one_line_naming_the_file_and_key_from_run_and_doctor(
    dirs: CodexDirs, what: str, key: str, case: str | bytes
) -> None:
    async with FakeResponsesProvider() as provider:
        path = _bad_config(dirs, provider, case)
        ran = await run_briefly([*PIANO, "run", "--config", str(path)])
        doctor = await anyio.run_process(
            [*PIANO, "doctor", "--config", str(path)], check=False, env=WEB_ENV
        )
    said = ran.stderr.decode() + ran.stdout.decode()
    assert ran.returncode != 0, f"piano run accepted it: {said}"
    assert "Traceback" not in said, said
    [line] = said.splitlines()
    assert str(path) in line, line
    assert key in line, line
    checked = doctor.stdout.decode() + doctor.stderr.decode()
    assert doctor.returncode != 0, checked
    assert "Traceback" not in checked, checked
    failed = [line for line in checked.splitlines() if line.startswith("FAIL")]
    assert any(key in line for line in failed), checked


async def test_the_chat_page_sends_to_the_selected_thread_and_shows_a_file_changes_diff(
    dirs: CodexDirs, browser: WebDriver
) -> None:
    async with FakeResponsesProvider() as provider:
        target = dirs.work / "notes.txt"
        patch = f"*** Begin Patch\n*** Add File: {target}\n+a line Piano shows\n*** End Patch\n"
        provider.script(
            Text("terminal answer"), Text("answer to the page"), ApplyPatch(patch), Text("Written.")
        )
        config = web_config(dirs, provider)
        read_only(config)
        state = dirs.root / "state"
        async with daemon_running(config, state / "chat.sock", env=WEB_ENV):
            await chat(config, "from the terminal")
            await run(browser.get, f"{web_base(config)}/chat#token={TOKEN}")
            await until(browser, text_in("status", "live"))
            await until(browser, text_in("threads", "terminal:default"))
            await run(lambda: browser.find_element(By.CSS_SELECTOR, "#threads li").click())
            await say(browser, "from the web page")
            await until(browser, text_in("messages", "answer to the page"))

            def new_conversation() -> None:
                browser.find_element(By.ID, "conversation-name").send_keys("files\n")

            await run(new_conversation)
            await say(browser, "write the notes")
            diff = await until(
                browser, ec.visibility_of_element_located((By.CSS_SELECTOR, "#approvals pre.diff"))
            )
            shown = await run(lambda: diff.text)
            await run(lambda: browser.find_element(By.CSS_SELECTOR, "button.approve").click())
            await until(browser, text_in("messages", "Written."))
    assert shown == f"add {target}\na line Piano shows", shown
    with StoreReader(state / "piano.db") as reader:
        by_key = {
            (t.surface, t.conversation): [i.text for i in reader.interactions(t.id)]
            for t in reader.threads()
        }
    assert by_key == {
        ("terminal", "default"): ["from the terminal", "from the web page"],
        ("web", "files"): ["write the notes"],
    }
