"""The console: protocol-level behaviour of the server on a real Unix socket, and end-to-end
sessions of `piano console` against `piano demo`, typed into a real terminal (tmux)."""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest

from actors import Actor, ActorSystem, Caller
from actors.console import ConsoleServer
from schemas.console import (
    Completions,
    Error,
    Eval,
    Interrupt,
    Output,
    Prompt,
    Result,
    ServerFrame,
    decode_server,
    encode,
)

pytestmark = pytest.mark.anyio

PIANO = Path(sys.executable).parent / "piano"
NOBODY_PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
"""A Python that uid 65534 can run (the virtualenv's may live under /root)."""


class Counter(Actor):
    def __init__(self) -> None:
        self.count = 0

    async def handle_call(self, message: Any, caller: Caller) -> Any:
        if message == "get":
            return self.count
        if message == "shout":
            print("from the actor")
            return "shouted"
        return await super().handle_call(message, caller)

    def handle_cast(self, message: Any) -> None:
        self.count += message

    def describe(self) -> str:
        return f"count={self.count}"


class Child(Actor):
    pass


class Parent(Actor):
    async def init(self) -> None:
        await self.spawn_link(Child(), name="child")


@dataclass
class Transcript:
    frames: list[ServerFrame]

    @property
    def output(self) -> str:
        return "".join(
            f.text for f in self.frames if isinstance(f, Output) and f.stream == "stdout"
        )

    @property
    def errors(self) -> str:
        return "".join(
            f.text for f in self.frames if isinstance(f, Output) and f.stream == "stderr"
        )

    @property
    def values(self) -> list[str]:
        return [f.value for f in self.frames if isinstance(f, Result) and f.value is not None]

    @property
    def tracebacks(self) -> list[str]:
        return [f.traceback for f in self.frames if isinstance(f, Result) and f.traceback]

    @property
    def continuation(self) -> bool:
        last = self.frames[-1]
        assert isinstance(last, Prompt)
        return last.continuation


@dataclass
class Wire:
    """A protocol-level client: raw frames over the console socket."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    banner: list[ServerFrame] = field(default_factory=list)

    @classmethod
    async def open(cls, path: Path) -> Wire:
        reader, writer = await asyncio.open_unix_connection(str(path))
        wire = cls(reader, writer)
        wire.banner = (await wire.until_prompt()).frames
        return wire

    async def frame(self) -> ServerFrame:
        with anyio.fail_after(10):
            line = await self.reader.readline()
        assert line, "the server closed the connection"
        return decode_server(line)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def until_prompt(self) -> Transcript:
        frames = [await self.frame()]
        while not isinstance(frames[-1], Prompt):
            frames.append(await self.frame())
        return Transcript(frames)

    async def eval(self, source: str) -> Transcript:
        await self.send(encode(Eval(source=source)))
        return await self.until_prompt()

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


@dataclass
class Env:
    system: ActorSystem
    server: ConsoleServer
    path: Path
    loop: asyncio.AbstractEventLoop
    started: asyncio.Event
    cancelled: asyncio.Event
    kept: list[Any]


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    async with ActorSystem() as system:
        await system.spawn(Counter(), name="counter")
        await system.spawn(Parent(), name="parent")
        started, cancelled = asyncio.Event(), asyncio.Event()
        kept: list[object] = []
        namespace = {"started": started, "cancelled": cancelled, "keep": kept.append}
        path = tmp_path / "console.sock"
        async with ConsoleServer(system, path, namespace) as server:
            yield Env(system, server, path, asyncio.get_running_loop(), started, cancelled, kept)


async def until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    """Wait until `condition()` holds, checking on every loop turn (fails after `seconds`)."""
    with anyio.fail_after(seconds):
        while True:
            if condition():
                return
            await asyncio.sleep(0.005)


async def test_expressions_are_echoed_and_kept_in_underscore_and_the_namespace_persists(
    env: Env,
) -> None:
    wire = await Wire.open(env.path)
    assert "Piano console" in Transcript(wire.banner).output
    assert (await wire.eval("x = 20")).values == []
    assert (await wire.eval("x + 22")).values == ["42"]
    assert (await wire.eval("_ * 2")).values == ["84"]
    assert (await wire.eval("None")).values == []
    assert (await wire.eval("print('hello'); print('oops', file=sys.stderr)")).output == "hello\n"
    assert (await wire.eval("print('oops', file=sys.stderr)")).errors == "oops\n"
    await wire.close()


async def test_top_level_await_runs_on_the_system_loop_and_coroutine_values_are_awaited(
    env: Env,
) -> None:
    env.system.whereis("counter").cast(5)  # type: ignore[union-attr]
    wire = await Wire.open(env.path)
    assert (await wire.eval("await asyncio.sleep(0, 'slept')")).values == ["'slept'"]
    assert (await wire.eval("keep(asyncio.get_running_loop())")).tracebacks == []
    assert env.kept == [env.loop]
    assert (await wire.eval("await call('counter', 'get')")).values == ["5"]
    assert (await wire.eval("call('counter', 'get')")).values == ["5"]
    assert (await wire.eval("async def twice(n):\n    return 2 * n\n\ntwice(4)")).values == ["8"]
    await wire.close()


async def test_a_statement_spans_lines_until_it_is_complete_like_the_python_repl(env: Env) -> None:
    wire = await Wire.open(env.path)
    assert (await wire.eval("def add(a, b):")).continuation is True
    assert (await wire.eval("    return a + b")).continuation is True
    done = await wire.eval("")
    assert done.continuation is False
    assert done.tracebacks == []
    assert (await wire.eval("add(1, 2)")).values == ["3"]
    pasted = await wire.eval("for i in range(3):\n    print(i)\n\nadd(i, 10)")
    assert pasted.output == "0\n1\n2\n"
    assert pasted.values == ["12"]
    await wire.close()


async def test_an_exception_prints_a_traceback_and_the_system_keeps_running(env: Env) -> None:
    wire = await Wire.open(env.path)
    crash = await wire.eval("def boom():\n    raise ValueError('bad input')\n\nboom()")
    (text,) = crash.tracebacks
    assert "Traceback" in text
    assert "ValueError: bad input" in text
    assert "raise ValueError('bad input')" in text, "the source line is shown"
    assert "_server.py" not in text
    assert "_evaluator.py" not in text
    for fatal in ("raise SystemExit(3)", "raise KeyboardInterrupt", "1/0", "x = )", "call(99, 1)"):
        assert (await wire.eval(fatal)).tracebacks, fatal
    (missing,) = (await wire.eval("call(99, 1)")).tracebacks
    assert "no live actor has the id 99" in missing
    assert "Traceback" in missing, "an awaited helper's frames are shown"
    assert "_evaluator.py" not in missing
    assert (await wire.eval("call('counter', 'get')")).values == ["0"]
    assert env.system.whereis("counter") is not None
    await wire.close()


async def test_statement_output_goes_to_its_console_and_other_tasks_and_actors_print_as_before(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    go, done = asyncio.Event(), asyncio.Event()

    async def bystander() -> None:
        await go.wait()
        print("from a bystander")
        done.set()

    task = asyncio.create_task(bystander())
    env.server.namespace.update(go=go, done=done)
    wire = await Wire.open(env.path)
    source = (
        "print('before'); go.set(); await done.wait(); await asyncio.to_thread(print, 'thread')"
    )
    assert (await wire.eval(source)).output == "before\nthread\n"
    await task
    result = await wire.eval("call('counter', 'shout')")
    assert result.values == ["'shouted'"]
    assert result.output == ""
    captured = capsys.readouterr().out
    assert "from a bystander" in captured
    assert "from the actor" in captured
    assert "before" not in captured
    assert "thread" not in captured
    await wire.close()


async def test_invalid_frames_are_answered_with_an_error_and_the_session_goes_on(
    env: Env,
) -> None:
    wire = await Wire.open(env.path)
    for bad in (
        b"not json\n",
        b'{"type": "launch"}\n',
        b'{"type": "eval"}\n',
        b'{"type": "eval", "source": 5}\n',
        b'{"type": "eval", "source": "1", "extra": true}\n',
        b"[1, 2]\n",
        b"\xff\xfe\n",
    ):
        await wire.send(bad)
        reply = await wire.frame()
        assert isinstance(reply, Error), bad
        assert not reply.fatal, bad
        assert reply.message.startswith("invalid frame"), bad
    assert (await wire.eval("1 + 1")).values == ["2"]
    other = await Wire.open(env.path)
    assert (await other.eval("'still serving'")).values == ["'still serving'"]
    await wire.close()
    await other.close()


async def test_the_socket_is_owner_only_and_never_replaces_what_it_does_not_own(
    env: Env, tmp_path: Path
) -> None:
    assert stat.S_IMODE(os.stat(env.path).st_mode) == 0o600
    assert stat.S_ISSOCK(os.stat(env.path).st_mode)
    with pytest.raises(FileExistsError, match="already listening"):
        await ConsoleServer(env.system, env.path).start()
    regular = tmp_path / "notes.txt"
    regular.write_text("keep me")
    with pytest.raises(FileExistsError, match="not a socket"):
        await ConsoleServer(env.system, regular).start()
    assert regular.read_text() == "keep me"
    link = tmp_path / "link.sock"
    link.symlink_to(env.path)
    with pytest.raises(FileExistsError, match="not a socket"):
        await ConsoleServer(env.system, link).start()
    stale = tmp_path / "stale.sock"
    async with ConsoleServer(env.system, stale):
        pass
    assert not stale.exists(), "closing removes the socket"
    dead = await asyncio.start_unix_server(lambda r, w: None, path=str(stale))
    dead.close()
    await dead.wait_closed()
    os.chmod(stale, 0o666)
    async with ConsoleServer(env.system, stale):
        assert stat.S_IMODE(os.stat(stale).st_mode) == 0o600, "a dead socket is replaced"
        assert (await (await Wire.open(stale)).eval("2 * 3")).values == ["6"]


_NOBODY_CLIENT = """
import socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
except PermissionError:
    print("EACCES")
    sys.exit(0)
print(s.makefile("rb").readline().decode().strip())
"""


async def test_another_user_is_refused_even_when_the_socket_mode_would_let_it_in() -> None:
    if shutil.which("setpriv") is None:
        pytest.fail("setpriv not found: apt-get install util-linux")
    if os.geteuid() != 0:
        pytest.fail("this test switches to uid 65534 with setpriv: run it as root")
    directory = tempfile.mkdtemp(prefix="piano-console-")
    try:
        os.chmod(directory, 0o755)
        path = os.path.join(directory, "console.sock")

        async def as_nobody() -> str:
            command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", NOBODY_PYTHON]
            result = await anyio.run_process([*command, "-c", _NOBODY_CLIENT, path])
            return result.stdout.decode().strip()

        async with ActorSystem() as system, ConsoleServer(system, path) as server:
            assert await as_nobody() == "EACCES", "mode 0600 keeps other users out"
            os.chmod(path, 0o666)
            refusal = decode_server((await as_nobody()).encode())
            assert isinstance(refusal, Error)
            assert refusal.fatal
            assert "refused: uid 65534" in refusal.message
            await until(lambda: server.sessions == 0)
            assert (await (await Wire.open(Path(path))).eval("'owner'")).values == ["'owner'"]
    finally:
        shutil.rmtree(directory)


async def test_a_disconnect_mid_statement_cancels_it_and_leaves_nothing_behind(env: Env) -> None:
    before = asyncio.all_tasks()
    wire = await Wire.open(env.path)
    made = await wire.eval(
        "import weakref\nclass Thing: pass\n\nthing = Thing(); keep(weakref.ref(thing))"
    )
    assert made.tracebacks == []
    await wire.send(
        encode(
            Eval(
                source="try:\n    started.set()\n    await asyncio.sleep(60)\n"
                "finally:\n    cancelled.set()\n"
            )
        )
    )
    with anyio.fail_after(5):
        await env.started.wait()
    await wire.close()
    with anyio.fail_after(5):
        await env.cancelled.wait()
    await until(lambda: env.server.sessions == 0)
    await until(lambda: asyncio.all_tasks() <= before)
    gc.collect()
    assert env.kept[0]() is None, "the session namespace was released"


async def test_an_interrupt_cancels_the_running_statement_and_the_session_goes_on(
    env: Env,
) -> None:
    wire = await Wire.open(env.path)
    await wire.send(encode(Eval(source="started.set(); await asyncio.sleep(60)")))
    with anyio.fail_after(5):
        await env.started.wait()
    await wire.send(encode(Interrupt()))
    assert (await wire.until_prompt()).tracebacks == ["KeyboardInterrupt\n"]
    await wire.send(encode(Eval(source="await asyncio.sleep(60)")) + encode(Interrupt()))
    assert (await wire.until_prompt()).tracebacks == ["KeyboardInterrupt\n"]
    assert (await wire.eval("if True:")).continuation is True
    await wire.send(encode(Interrupt()))
    assert (await wire.eval("'fresh'")).values == ["'fresh'"], "the half statement was dropped"
    await wire.close()


async def test_a_statement_running_past_the_eval_timeout_is_cancelled(
    env: Env, tmp_path: Path
) -> None:
    path = tmp_path / "timed.sock"
    async with ConsoleServer(env.system, path, eval_timeout=0.2):
        wire = await Wire.open(path)
        (text,) = (await wire.eval("await asyncio.sleep(60)")).tracebacks
        assert "ran longer than 0.2s" in text
        assert (await wire.eval("await asyncio.sleep(0, 'quick')")).values == ["'quick'"]
        await wire.close()


async def test_completion_uses_the_session_namespace_and_sessions_are_separate(env: Env) -> None:
    one, two = await Wire.open(env.path), await Wire.open(env.path)
    await one.eval("mine = 1")
    await one.send(encode_complete("mi"))
    reply = await one.frame()
    assert isinstance(reply, Completions)
    assert "mine" in reply.matches
    await one.send(encode_complete("system.proc"))
    reply = await one.frame()
    assert isinstance(reply, Completions)
    assert reply.matches == ["system.processes()"]
    assert "NameError" in (await two.eval("mine")).tracebacks[0]
    await one.close()
    await two.close()


def encode_complete(text: str) -> bytes:
    return b'{"type": "complete", "text": %b}\n' % repr(text).replace("'", '"').encode()


async def test_helpers_inspect_and_drive_actors_by_ref_name_or_id(env: Env) -> None:
    wire = await Wire.open(env.path)
    ps = (await wire.eval("ps()")).output
    assert "counter" in ps
    assert "Counter" in ps
    assert "waiting" in ps
    assert "3 actors" in ps
    tree = (await wire.eval("tree()")).output
    assert "├── Counter#1 'counter' [waiting] — count=0" in tree
    assert "└── Parent#2 'parent' [waiting]" in tree
    assert "    └── Child#3 'child' [waiting linked]" in tree
    assert (await wire.eval("info(1).name")).values == ["'counter'"]
    assert (await wire.eval("whereis('child') == info('child').ref")).values == ["True"]
    await wire.eval("cast('counter', 4)")
    assert (await wire.eval("state(whereis('counter'))")).values == ["{'count': 4}"]
    replaced = await wire.eval("replace_state('counter', lambda s: {**s, 'count': 40})")
    assert replaced.values == ["{'count': 40}"]
    await wire.eval("suspend('counter')")
    assert (await wire.eval("info('counter').status")).values == ["'suspended'"]
    await wire.eval("cast('counter', 2); await resume('counter')")
    assert (await wire.eval("call('counter', 'get')")).values == ["42"]
    assert "tracing" in (await wire.eval("trace('counter')")).output
    assert (await wire.eval("info('counter').tracing")).values == ["True"]
    await wire.eval("trace('counter', False)")
    assert (await wire.eval("kill('child')")).values == ["'killed'"]
    assert (await wire.eval("stop('counter')")).values == ["'normal'"]
    assert env.system.whereis("counter") is None
    assert env.system.whereis("parent") is None
    assert "replace_state(x, fn)" in (await wire.eval("help()")).output
    assert "LookupError" in (await wire.eval("info('counter')")).tracebacks[0]
    await wire.close()


async def test_exit_ends_only_the_session_and_closing_the_server_ends_every_session(
    env: Env,
) -> None:
    wire = await Wire.open(env.path)
    await wire.send(encode(Eval(source="exit()")))
    with anyio.fail_after(5):
        assert await wire.reader.read() == b""
    other = await Wire.open(env.path)
    await other.send(encode(Eval(source="started.set(); await asyncio.sleep(60)")))
    with anyio.fail_after(5):
        await env.started.wait()
    await env.server.close()
    with anyio.fail_after(5):
        assert await other.reader.read() == b""
    assert not env.path.exists()
    assert env.server.sessions == 0
    assert env.system.whereis("counter") is not None


# -- end to end: `piano console` in a real terminal against `piano demo` ------------------------


class Terminal:
    """A tmux session on a private tmux server, running one command."""

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        if shutil.which("tmux") is None:
            pytest.fail("tmux not found: run scripts/bootstrap (apt-get install tmux)")
        self.server = f"piano-test-{uuid.uuid4().hex[:8]}"
        settings = [arg for key, value in env.items() for arg in ("-e", f"{key}={value}")]
        self._tmux(
            "new-session",
            "-d",
            "-s",
            "console",
            "-x",
            "200",
            "-y",
            "50",
            *settings,
            " ".join(command),
        )

    def _tmux(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["tmux", "-L", self.server, *args], capture_output=True, text=True, check=False
        )

    def type(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", "console", *keys)

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "console").stdout

    @property
    def alive(self) -> bool:
        return self._tmux("has-session", "-t", "console").returncode == 0

    def wait_for(self, condition: Callable[[str], bool], what: str, seconds: float = 10) -> str:
        """Poll the screen until `condition(screen)` holds; fail with the screen after `seconds`."""
        deadline = time.monotonic() + seconds
        screen = self.screen()
        while not condition(screen):
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what}; the screen:\n{screen}")
            time.sleep(0.05)
            screen = self.screen()
        return screen

    def wait_for_text(self, text: str, seconds: float = 10) -> str:
        return self.wait_for(lambda screen: text in screen, repr(text), seconds)

    def close(self) -> None:
        self._tmux("kill-server")


def prompt_line(screen: str) -> str:
    return [line for line in screen.splitlines() if line.strip()][-1]


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "demo.sock"
    log = tmp_path / "demo.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(PIANO), "demo", "--socket", str(path)], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 15
        while f"attach with: piano console --socket {path}" not in log.read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"piano demo did not serve its console:\n{log.read_text()}")
            time.sleep(0.05)
        yield path
        assert process.poll() is None, "the demo keeps running after the console leaves"
        process.terminate()
        assert process.wait(timeout=10) == 0
        assert not path.exists(), "the demo removes its socket when it stops"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.fixture
def terminal(demo: Path, tmp_path: Path) -> Iterator[Terminal]:
    history = tmp_path / "history"
    term = Terminal(
        [str(PIANO), "console", "--socket", str(demo)], {"PIANO_CONSOLE_HISTORY": str(history)}
    )
    try:
        yield term
    finally:
        term.close()


def test_a_console_session_in_a_terminal_inspects_and_drives_the_running_demo(
    terminal: Terminal, demo: Path, tmp_path: Path
) -> None:
    terminal.wait_for_text("piano>")
    terminal.type("ps()", "Enter")
    screen = terminal.wait_for_text("\n5 actors\npiano>")
    for name in ("counter", "ticker", "listener", "manager", "worker"):
        assert name in screen
    terminal.type("tree()", "Enter")
    screen = terminal.wait_for_text("    └── Worker#5 'worker'")
    assert "├── Counter#1 'counter' [waiting] — count=0" in screen
    assert "└── Manager#4 'manager' [waiting] — restarts=0" in screen
    terminal.type('call("counter", ("add", 7))', "Enter")
    terminal.wait_for_text('piano> call("counter", ("add", 7))\n7\npiano>')

    # a trace prints in this console as messages arrive, while it waits at the prompt
    terminal.type("trace('ticker')", "Enter")
    terminal.wait_for_text("printed here")
    terminal.wait_for_text("in kind=info message='tick'")
    terminal.wait_for(lambda s: prompt_line(s) == "piano>", "the prompt drawn again below")
    terminal.type("trace('ticker', False)", "Enter")
    terminal.wait_for_text("tracing <ActorRef Ticker#3 'ticker'>: off")

    terminal.type("1/0", "Enter")
    terminal.wait_for_text("ZeroDivisionError: division by zero\npiano>")
    terminal.type('call("counter", "get")', "Enter")
    terminal.wait_for_text('piano> call("counter", "get")\n7\npiano>')

    terminal.type("print('sleeping'); await asyncio.sleep(60)", "Enter")
    terminal.wait_for_text("\nsleeping\n")
    terminal.type("C-c")
    terminal.wait_for_text("KeyboardInterrupt\npiano>")

    terminal.type("syst", "Tab")
    terminal.wait_for(lambda s: prompt_line(s) == "piano> system", "the completion of 'syst'")
    terminal.type(".proc", "Tab")
    terminal.wait_for(
        lambda s: prompt_line(s) == "piano> system.processes()", "the completion of '.proc'"
    )
    terminal.type("Enter")
    terminal.wait_for_text("[<ActorRef Counter#1 'counter'>,")

    terminal.type("Up")
    terminal.wait_for(
        lambda s: prompt_line(s) == "piano> system.processes()", "history recalling the line"
    )
    terminal.type("C-u", "C-d")
    terminal.wait_for(lambda _: not terminal.alive, "the console to exit on Ctrl-D")

    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(demo))
        banner = decode_server(sock.makefile("rb").readline())
    assert isinstance(banner, Output)
    assert "Piano console" in banner.text, "the demo still serves consoles"

    history = (tmp_path / "history").read_text()
    assert 'call("counter", "get")' in history
    assert "system.processes()" in history
    assert stat.S_IMODE((tmp_path / "history").stat().st_mode) == 0o600


def test_the_client_explains_a_missing_socket(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(PIANO), "console", "--socket", str(tmp_path / "none.sock")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "no console socket at" in result.stderr
    assert "piano demo" in result.stderr


async def test_trace_prints_to_the_console_that_asked_and_not_to_another_or_the_log(
    env: Env,
) -> None:
    tracer = await Wire.open(env.path)
    other = await Wire.open(env.path)
    assert "printed here" in (await tracer.eval("trace('counter')")).output
    assert (await other.eval("call('counter', 'get')")).values == ["0"]
    seen = ""
    with anyio.fail_after(10):  # the trace lines arrive on their own, between statements
        while "out reply=0" not in seen:
            frame = await tracer.frame()
            if isinstance(frame, Output):
                seen += frame.text
    assert "in kind=call message='get'" in seen
    assert "trace" not in (await other.eval("1")).output
    await tracer.close()
    await until(lambda: not env.server.system.whereis("counter")._actor._tracing)  # type: ignore[union-attr]
    await other.close()


class Keeper(Actor):
    def __init__(self, size: int) -> None:
        self.items = [f"{index:0100d}" for index in range(size)]  # distinct strings


@dataclass(frozen=True)
class Key:
    surface: str
    conversation: str


async def test_ps_names_registered_actors_and_shows_mailboxes_and_memory_on_request(
    env: Env,
) -> None:
    from actors import Registry

    registry = Registry(keys="unique")
    big = await env.system.spawn(Keeper(1000))
    small = await env.system.spawn(Keeper(1))
    registry.register(Key("terminal", "work"), big)
    wire = await Wire.open(env.path)
    await wire.eval("await suspend('counter')")
    await wire.eval("cast('counter', 5); send('counter', 'hello')")
    shown = (await wire.eval("ps(messages=True, memory=True)")).output
    header, *lines = shown.splitlines()
    rows = [line for line in lines[:-1] if not line.lstrip().startswith("·")]
    assert lines[-1].endswith(" actors")
    assert header.split() == ["ID", "NAME", "CLASS", "STATUS", "MAILBOX", "HANDLED", "MEMORY"]
    [keeper] = [row for row in rows if row.split()[0] == str(big.id)]
    assert keeper.split()[1] == "terminal:work"
    assert "· cast 5" in shown
    assert "· info 'hello'" in shown

    def memory(ref_id: int) -> float:
        [row] = [row for row in rows if row.split()[0] == str(ref_id)]
        number, unit = row.split()[-2:]
        return float(number) * {"B": 1, "KiB": 1024, "MiB": 1024**2}[unit]

    assert memory(big.id) > 50 * memory(small.id)
    listed = (await wire.eval("mailbox('counter')")).output
    assert listed.splitlines() == ["cast 5", "info 'hello'", "2 waiting"]
    await wire.eval("await resume('counter')")
    await wire.close()
