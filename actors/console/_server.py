"""The console server: a Python REPL inside a running actor system, over a Unix socket.

```python
async with ActorSystem() as system, ConsoleServer(system, "/run/piano/console.sock"):
    ...   # `piano console --socket /run/piano/console.sock` attaches
```

Security: the socket is created with mode 0600 (bound under umask 0o177; the umask is
process-wide, so files other threads create in that instant are as private), a path
that exists and is not a socket is never replaced, a socket that still answers is never taken
over, and every connection's peer uid (``SO_PEERCRED``) must be the server's own effective uid;
anyone else gets a fatal `Error` frame and is disconnected. Whoever attaches can run any code in
the process: the console is for the owner of the process only.

Each connection is a session with its own namespace: the helpers (`actors.console._helpers`),
``system``, ``actors``, ``asyncio``, ``sys`` and the `namespace` given to the server. Statements
run on the system's event loop, one at a time per session, in a task of their own: an exception
is shown as a traceback and the system keeps running; an `Interrupt` frame or `eval_timeout`
cancels the running statement (at its next await: code that blocks the loop blocks the whole
system, as any callback would); a disconnect cancels it and releases everything of the session
(tasks and actors a statement started on purpose are the system's and live on, as processes
spawned from ``iex`` do).
What a statement prints goes to its console (see `actors.console._capture`).
Every frame sent has each registered secret scrubbed from it (`actors.redact`): the console is
the owner's, and can reach any secret on purpose, but never shows one by accident (a token
inside an SDK object's repr, a key in a traceback).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import sys
import threading
from collections.abc import Mapping
from typing import Any

import actors
from actors._logging import get_logger
from actors._redaction import redact
from actors._system import ActorSystem
from actors.console import _capture
from actors.console._evaluator import NO_VALUE, Evaluator, show
from actors.console._helpers import Helpers
from schemas.console import (
    MAX_FRAME,
    Complete,
    Completions,
    Error,
    Eval,
    InvalidFrame,
    Output,
    Prompt,
    Result,
    ServerFrame,
    decode_client,
    encode,
)

__all__ = ["ConsoleServer"]

from actors.console._socket import bind_owner_socket, peer_uid

log = get_logger(__name__)

_CANCEL_GRACE = 5.0
"""Seconds a cancelled statement may take to unwind before its session stops waiting for it."""


class ConsoleServer:
    """Serve console sessions for `system` on the Unix socket `path`."""

    def __init__(
        self,
        system: ActorSystem,
        path: str | os.PathLike[str],
        namespace: Mapping[str, Any] | None = None,
        *,
        eval_timeout: float | None = None,
    ) -> None:
        self.system = system
        self.path = os.fspath(path)
        self.namespace = dict(namespace or {})
        self.eval_timeout = eval_timeout
        self._server: asyncio.AbstractServer | None = None
        self._identity: tuple[int, int] | None = None
        self._sessions: set[asyncio.Task[Any]] = set()

    async def __aenter__(self) -> ConsoleServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def sessions(self) -> int:
        """Connected clients."""
        return len(self._sessions)

    async def start(self) -> None:
        """Create the socket and start accepting; raises `FileExistsError` if `path` is taken."""
        if self._server is not None:
            raise RuntimeError("the console server is already started")
        loop = self.system._loop
        if loop is not None and loop is not asyncio.get_running_loop():
            raise RuntimeError("start the console on the event loop of its actor system")
        sock = bind_owner_socket(self.path)
        try:
            info = os.stat(self.path)
            self._identity = (info.st_dev, info.st_ino)
            # Serve from an empty context: started from inside an actor (the daemon does), the
            # connections would otherwise inherit that actor as "current", and statements would
            # be taken for actor code (their output not shown in the console).
            self._server = await asyncio.get_running_loop().create_task(
                asyncio.start_unix_server(self._serve, sock=sock, limit=MAX_FRAME),
                context=contextvars.Context(),
            )
        except BaseException:
            sock.close()
            self._unlink()
            raise
        _capture.acquire()
        log.info("console.listening", path=self.path)

    async def close(self) -> None:
        """Stop accepting, end every session (cancelling their statements), remove the socket."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        sessions = list(self._sessions)
        for task in sessions:
            task.cancel()
        if sessions:
            await asyncio.wait(sessions, timeout=_CANCEL_GRACE * 2)
        await server.wait_closed()
        self._unlink()
        _capture.release()
        log.info("console.closed", path=self.path)

    def _unlink(self) -> None:
        with contextlib.suppress(OSError):
            info = os.lstat(self.path)
            if (info.st_dev, info.st_ino) == self._identity:
                os.unlink(self.path)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        session = _Session(self, reader, writer)
        try:
            await session.run()
        except asyncio.CancelledError:
            # `close` cancels sessions; asyncio 3.11 logs a connection task that ends cancelled.
            task.uncancel()
        except (ConnectionError, OSError):
            pass
        except Exception:
            log.exception("console.session_failed", path=self.path)
        finally:
            self._sessions.discard(task)
            await session.release()


class _Quit(Exception):
    """Raised by ``exit()`` / ``quit()`` in a session: end it."""


class _Session:
    """One connected client: reads frames, runs statements, writes frames."""

    def __init__(
        self, server: ConsoleServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.loop = asyncio.get_running_loop()
        self.thread = threading.get_ident()
        self.capturing = False
        namespace: dict[str, Any] = {
            "__name__": "__console__",
            "__doc__": None,
            "system": server.system,
            "actors": actors,
            "asyncio": asyncio,
            "sys": sys,
            "exit": self._quit,
            "quit": self._quit,
        }
        self.helpers = Helpers(server.system, server.namespace, output=self._traced_line)
        namespace.update(self.helpers.namespace())
        namespace.update(server.namespace)
        self.evaluator = Evaluator(namespace)
        self.statement: asyncio.Task[None] | None = None
        self.interrupted = False
        self._pending: list[tuple[str, str]] = []
        self._flush_scheduled = False
        self._context = contextvars.copy_context()
        self._context.run(_capture.capturing.set, self)

    def _traced_line(self, text: str) -> None:
        """Output of a trace this session started; raises once the client is gone, which
        ends that trace."""
        if self.writer.is_closing():
            raise ConnectionError("the console that traced this actor is gone")
        self.write_output("stdout", text)

    @staticmethod
    def _quit(code: object = None) -> None:
        """End this console session (the system keeps running)."""
        raise _Quit

    async def run(self) -> None:
        uid = peer_uid(self.writer)
        if uid != os.geteuid():
            log.warning("console.refused", path=self.server.path, peer_uid=uid)
            self.send(Error(message=f"refused: uid {uid} does not own this console", fatal=True))
            return
        log.info("console.connected", path=self.server.path)
        stats = self.server.system.statistics()
        self.send(
            Output(
                stream="stdout",
                text=f"Piano console, pid {os.getpid()}, {stats.alive} actors. "
                "help() lists the helpers; Ctrl-D quits.\n",
            )
        )
        self.send(Prompt())
        while True:
            try:
                line = await self.reader.readline()
            except ValueError:
                self.send(Error(message=f"frame longer than {MAX_FRAME} bytes", fatal=True))
                return
            if not line:
                return
            if not line.strip():
                continue
            try:
                frame = decode_client(line)
            except InvalidFrame as exc:
                self.send(Error(message=f"invalid frame: {exc}"))
                continue
            if isinstance(frame, Eval):
                if self.statement is not None:
                    self.send(Error(message="a statement is running: interrupt it first"))
                else:
                    self._start(frame.source)
            elif isinstance(frame, Complete):
                matches = self.evaluator.complete(frame.text)
                self.send(Completions(text=frame.text, matches=matches))
            elif self.statement is not None:
                self.interrupted = True
                self.statement.cancel()
            else:
                self.evaluator.reset()

    def _start(self, source: str) -> None:
        self.statement = self.loop.create_task(self._evaluate(source), context=self._context)
        self.statement.add_done_callback(self._finished)

    async def _evaluate(self, source: str) -> None:
        _capture.ensure_installed()
        self.capturing = True
        for line in source.split("\n"):
            if not await self._push(line):
                break

    def _finished(self, task: asyncio.Task[None]) -> None:
        """A statement task ended: report an interrupt, then prompt (or end on ``exit()``)."""
        self.statement = None
        self.capturing = False
        interrupted, self.interrupted = self.interrupted, False
        if task.cancelled():
            if not interrupted:
                return
            self.evaluator.reset()
            self.send(Result(traceback="KeyboardInterrupt\n"))
        else:
            error = task.exception()
            if isinstance(error, _Quit):
                self.writer.close()
                return
            if error is not None:
                log.error("console.statement_failed", path=self.server.path, exc_info=error)
                self.send(Result(traceback=self.evaluator.format_exception(error)))
        self.send(Prompt(continuation=self.evaluator.continuing))

    async def _push(self, line: str) -> bool:
        """Push one line, run the statement it completes; False to drop the rest of the input."""
        try:
            statement = self.evaluator.push(line)
        except (SyntaxError, ValueError, OverflowError) as exc:
            self.send(Result(traceback=self.evaluator.format_exception(exc)))
            return True
        if not statement:
            return True
        timeout = asyncio.timeout(self.server.eval_timeout)
        try:
            async with timeout:
                value = await self.evaluator.run(statement)
        except _Quit:
            raise
        except asyncio.CancelledError as exc:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            self.send(Result(traceback=self.evaluator.format_exception(exc)))
            return False
        except TimeoutError as exc:
            if timeout.expired():
                limit = self.server.eval_timeout
                text = f"TimeoutError: the statement ran longer than {limit}s and was cancelled\n"
            else:
                text = self.evaluator.format_exception(exc)
            self.send(Result(traceback=text))
            return False
        except BaseException as exc:
            self.send(Result(traceback=self.evaluator.format_exception(exc)))
            return False
        if value is NO_VALUE:
            self.send(Result())
        else:
            self.send(Result(value=_show(value)))
        with contextlib.suppress(ConnectionError):
            await self.writer.drain()
        return True

    def write_output(self, stream: _capture.Stream, text: str) -> None:
        """Queue output for the client (from any thread); flushed on the next loop iteration."""
        if threading.get_ident() != self.thread:
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(self.write_output, stream, text)
            return
        self._pending.append((stream, text))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        pending, self._pending = self._pending, []
        merged: list[tuple[str, str]] = []
        for stream, text in pending:
            if merged and merged[-1][0] == stream:
                merged[-1] = (stream, merged[-1][1] + text)
            else:
                merged.append((stream, text))
        for stream, text in merged:
            self._write(Output(stream="stderr" if stream == "stderr" else "stdout", text=text))

    def send(self, frame: ServerFrame) -> None:
        """Send a frame after any output queued before it."""
        if self._pending:
            self._flush()
        self._write(frame)

    def _write(self, frame: ServerFrame) -> None:
        """Send a frame, every registered secret scrubbed from it (`actors.redact`): values,
        output and tracebacks alike, so no statement can show one by accident."""
        if not self.writer.is_closing():
            self.writer.write(redact(encode(frame).decode()).encode())

    async def release(self) -> None:
        """Cancel the running statement, close the connection, forget the session's state."""
        statement = self.statement
        self.interrupted = False
        if statement is not None:
            statement.cancel()
            done, _ = await asyncio.wait([statement], timeout=_CANCEL_GRACE)
            if not done:
                log.warning("console.statement_ignores_cancel", path=self.server.path)
        self.capturing = False
        self.helpers.close()
        self._pending.clear()
        self.evaluator.close()
        self.evaluator.namespace.clear()
        self.writer.close()
        with contextlib.suppress(OSError, asyncio.CancelledError):
            await self.writer.wait_closed()
        log.info("console.disconnected", path=self.server.path)


def _show(value: Any) -> str:
    try:
        return show(value)
    except Exception as exc:
        return f"<repr failed: {exc!r}>"
