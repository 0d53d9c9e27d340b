"""The terminal client of the console: ``piano console --socket PATH``.

A blocking REPL on `readline`: the prompt is ``piano> `` (``...> `` inside an unfinished
statement). What the server sends on its own while the REPL waits for a line (the lines of a
`trace` started in this console) is printed above the prompt as it arrives. Tab completes over
the session namespace on the server, the history is kept in ``$PIANO_CONSOLE_HISTORY`` or
``~/.piano_console_history`` (mode 0600). Ctrl-C interrupts the running statement, or drops
the line being typed; Ctrl-D (or ``exit()``) leaves, and the system keeps running. A missing
socket, a refused connection or a refused user is reported in one line with exit status 1.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import sys
import threading
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from schemas.console import (
    MAX_FRAME,
    ClientFrame,
    Complete,
    Completions,
    Error,
    Eval,
    Interrupt,
    InvalidFrame,
    Output,
    Prompt,
    Result,
    ServerFrame,
    decode_server,
    encode,
)

__all__ = ["HISTORY_ENV", "run_client"]

HISTORY_ENV: Final = "PIANO_CONSOLE_HISTORY"
PS1: Final = "piano> "
PS2: Final = "...> "
_COMPLETION_TIMEOUT = 3.0
_HISTORY_LENGTH = 2000


class _Interrupted:
    """Ctrl-C was pressed while waiting for the server."""


_INTERRUPTED: Final = _Interrupted()


class _Disconnected(Exception):
    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class _Connection:
    """Frames over the console socket; waits can be woken by Ctrl-C."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buffer = bytearray()
        self._pending: deque[ServerFrame] = deque()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self.lock = threading.Lock()
        """Held while reading: by the REPL, or by `_Listener` while the REPL waits for input."""

    def close(self) -> None:
        self.sock.close()
        self._wake_r.close()
        self._wake_w.close()

    def send(self, frame: ClientFrame) -> None:
        try:
            self.sock.sendall(encode(frame))
        except OSError:
            raise _Disconnected("the connection was closed") from None

    @contextlib.contextmanager
    def interruptible(self) -> Iterator[None]:
        """While waiting for the server, Ctrl-C wakes `next_frame` instead of raising."""
        self._drain_wakeups()
        previous_handler = signal.signal(signal.SIGINT, _ignore_signal)
        previous_fd = signal.set_wakeup_fd(self._wake_w.fileno(), warn_on_full_buffer=False)
        try:
            yield
        finally:
            signal.set_wakeup_fd(previous_fd)
            signal.signal(signal.SIGINT, previous_handler)

    def _drain_wakeups(self) -> bool:
        woken = False
        with contextlib.suppress(BlockingIOError):
            while self._wake_r.recv(64):
                woken = True
        return woken

    def next_frame(self, timeout: float | None = None) -> ServerFrame | _Interrupted | None:
        """The next frame; `_INTERRUPTED` on Ctrl-C (inside `interruptible`), None on timeout."""
        with self.lock:
            return self._next_frame(timeout)

    def poll_output(self, timeout: float, idle: threading.Event) -> list[Output]:
        """For `_Listener`: the output frames that arrive within `timeout` while `idle` (the
        REPL waits for a line) — what the server sends on its own, a trace's lines. Every
        other frame, and all of them once the REPL is busy again, stay queued for the REPL in
        their order."""
        with self.lock:
            frames: list[ServerFrame] = []
            while True:
                frame = self._next_frame(timeout, wake=False)
                if frame is None or isinstance(frame, _Interrupted):
                    break
                frames.append(frame)
                timeout = 0
            if not idle.is_set():
                self._pending.extend(frames)
                return []
            self._pending.extend(frame for frame in frames if not isinstance(frame, Output))
            return [frame for frame in frames if isinstance(frame, Output)]

    def _next_frame(
        self, timeout: float | None = None, wake: bool = True
    ) -> ServerFrame | _Interrupted | None:
        if self._pending:
            return self._pending.popleft()
        while True:
            newline = self._buffer.find(b"\n")
            if newline >= 0:
                line = bytes(self._buffer[: newline + 1])
                del self._buffer[: newline + 1]
                try:
                    return decode_server(line)
                except InvalidFrame as exc:
                    return Error(message=f"the server sent an invalid frame: {exc}")
            if len(self._buffer) > MAX_FRAME:
                raise _Disconnected("the server sent an oversized frame", status=1)
            watched = [self.sock, self._wake_r] if wake else [self.sock]
            readable, _, _ = select.select(watched, [], [], timeout)
            if not readable:
                return None
            if self._wake_r in readable and self._drain_wakeups():
                return _INTERRUPTED
            if self.sock in readable:
                try:
                    chunk = self.sock.recv(65536)
                except OSError:
                    chunk = b""
                if not chunk:
                    raise _Disconnected("the connection was closed")
                self._buffer += chunk

    def complete(self, text: str) -> list[str]:
        """Ask the server for the completions of `text`."""
        self.send(Complete(text=text))
        others: list[ServerFrame] = []
        try:
            while True:
                frame = self.next_frame(_COMPLETION_TIMEOUT)
                if frame is None:
                    return []
                if isinstance(frame, Completions) and frame.text == text:
                    return frame.matches
                if not isinstance(frame, _Interrupted | Completions):
                    others.append(frame)
        finally:
            self._pending.extend(others)


def _ignore_signal(signum: int, frame: Any) -> None:
    """SIGINT while waiting: the wakeup fd reports it."""


def run_client(path: str | os.PathLike[str], *, history_file: str | None = None) -> int:
    """Attach to the console at `path` and run the REPL; returns the exit status."""
    target = os.fspath(path)
    try:
        sock = _connect(target)
    except OSError as exc:
        print(f"piano console: {_explain(target, exc)}", file=sys.stderr)
        return 1
    conn = _Connection(sock)
    history = Path(history_file or _default_history())
    readline = _setup_readline(conn, history)
    try:
        return _repl(conn, readline)
    except _Disconnected as exc:
        print(f"\npiano console: {exc}", file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    finally:
        if readline is not None:
            _save_history(readline, history)
        conn.close()


def run_statements(
    path: str | os.PathLike[str], statements: list[str], *, banner: bool = True
) -> int:
    """Run `statements` in the console at `path`, printing what they show (for scripts);
    returns 0, or 1 if the console cannot be reached or a statement raised. `banner=False`
    leaves out the console's greeting (``piano status`` prints only what it asked for)."""
    target = os.fspath(path)
    try:
        sock = _connect(target)
    except OSError as exc:
        print(f"piano: {_explain(target, exc)}", file=sys.stderr)
        return 1
    conn = _Connection(sock)
    failed = False
    try:
        _until_prompt(conn, show=banner)
        for source in statements:
            conn.send(Eval(source=source))
            failed = _until_prompt(conn, report_errors=True) or failed
        return 1 if failed else 0
    except _Disconnected as exc:
        print(f"piano: {exc}", file=sys.stderr)
        return exc.status
    finally:
        conn.close()


def _connect(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError:
        sock.close()
        raise
    return sock


def _explain(path: str, exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return f"no console socket at {path} (is the system running? `piano demo` starts one)"
    if isinstance(exc, ConnectionRefusedError):
        return f"nothing is listening on {path} (a socket left by a system that stopped?)"
    if isinstance(exc, PermissionError):
        return f"permission denied on {path}: the console belongs to another user"
    return f"cannot connect to {path}: {exc.strerror or exc}"


class _Listener:
    """While the REPL waits for a line, shows what the server sends on its own (a trace's
    lines, as they happen) above the prompt, and keeps every other frame for the REPL."""

    def __init__(self, conn: _Connection, readline: Any) -> None:
        self.conn = conn
        self.readline = readline
        self.idle = threading.Event()
        self.prompt = PS1
        self.stopped = False
        self.thread = threading.Thread(target=self._run, name="console-listener", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopped:
            if not self.idle.wait(0.2):
                continue
            try:
                shown = self.conn.poll_output(0.1, self.idle)
            except _Disconnected:
                return
            if shown:
                typed = self.readline.get_line_buffer() if self.readline is not None else ""
                text = "".join(frame.text for frame in shown)
                sys.stdout.write("\r\x1b[K" + text + ("" if text.endswith("\n") else "\n"))
                sys.stdout.write(self.prompt + typed)
                sys.stdout.flush()


def _repl(conn: _Connection, readline: Any = None) -> int:
    listener = _Listener(conn, readline)
    try:
        return _read_eval(conn, listener)
    finally:
        listener.stopped = True
        listener.idle.clear()


def _read_eval(conn: _Connection, listener: _Listener) -> int:
    continuation = _until_prompt(conn)
    while True:
        listener.prompt = PS2 if continuation else PS1
        listener.idle.set()
        try:
            line = input(listener.prompt)
        except KeyboardInterrupt:
            sys.stdout.write("\nKeyboardInterrupt\n")
            conn.send(Interrupt())
            continuation = False
            continue
        except EOFError:
            sys.stdout.write("\n")
            return 0
        finally:
            listener.idle.clear()
        conn.send(Eval(source=line))
        continuation = _until_prompt(conn)


def _until_prompt(conn: _Connection, report_errors: bool = False, show: bool = True) -> bool:
    """Show what the server sends until it prompts; Ctrl-C meanwhile interrupts the statement.

    Returns whether the prompt is a continuation, or with `report_errors`, whether the
    statement raised."""
    raised = False
    with conn.interruptible():
        while True:
            frame = conn.next_frame()
            if isinstance(frame, _Interrupted):
                conn.send(Interrupt())
            elif isinstance(frame, Output):
                if not show:
                    continue
                stream = sys.stderr if frame.stream == "stderr" else sys.stdout
                stream.write(frame.text)
                stream.flush()
            elif isinstance(frame, Result):
                if frame.value is not None:
                    print(frame.value, flush=True)
                if frame.traceback is not None:
                    raised = True
                    sys.stderr.write(frame.traceback)
                    sys.stderr.flush()
            elif isinstance(frame, Prompt):
                return raised if report_errors else frame.continuation
            elif isinstance(frame, Error):
                if frame.fatal:
                    raise _Disconnected(frame.message, status=1)
                print(f"piano console: {frame.message}", file=sys.stderr, flush=True)


def _default_history() -> str:
    return os.environ.get(HISTORY_ENV) or str(Path.home() / ".piano_console_history")


def _setup_readline(conn: _Connection, history: Path) -> Any:
    try:
        import readline
    except ImportError:
        return None
    matches: list[str] = []

    def complete(text: str, state: int) -> str | None:
        if state == 0:
            try:
                matches[:] = conn.complete(text)
            except _Disconnected:
                matches.clear()
        return matches[state] if state < len(matches) else None

    readline.set_completer(complete)
    readline.set_completer_delims(" \t\n`~!@#$%^&*()-=+[{]}\\|;:'\",<>/?")
    if "libedit" in (readline.__doc__ or ""):
        readline.parse_and_bind("bind ^I rl_complete")
    else:
        readline.parse_and_bind("tab: complete")
    readline.set_history_length(_HISTORY_LENGTH)
    with contextlib.suppress(OSError):
        readline.read_history_file(history)
    return readline


def _save_history(readline: Any, history: Path) -> None:
    try:
        os.close(os.open(history, os.O_WRONLY | os.O_CREAT, 0o600))
        readline.write_history_file(history)
    except OSError as exc:
        print(f"piano console: history not saved to {history}: {exc}", file=sys.stderr)
