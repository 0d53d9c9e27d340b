"""`CodexProcess`: one `codex app-server` child process spoken to over stdio JSON-RPC.

`start()` spawns the binary (after the `wrapper` argv, if any: the command that sets up the
namespace codex runs in, see `piano.codex._namespace`), does the initialize/initialized
handshake and returns the server's `InitializeResponse`. Then:

* `call(params)` / `request(method, params)` send a request and wait for the response with the id
  it was sent under, at most `timeout` seconds (`CodexTimeout`; a response arriving later is
  logged and dropped). An error response raises `CodexRpcError`.
* Server → client requests go to `request_handlers[method]` (an async function of the
  `RpcRequest` returning the result, or raising `CodexRpcError` to answer with that error); any
  other method is answered at once with JSON-RPC error -32601. Nothing is left unanswered.
* Notifications go, in stdout order, to `on_notification(thread_id, method, params)` (params
  typed per `schemas.codex.NOTIFICATIONS`, a dict otherwise); if it returns an awaitable, it is
  awaited before the next line is read (back-pressure), so it must not itself wait for a
  response from this process (hand such work to another task).
* stdout lines that are not valid messages are logged and skipped. stderr lines are logged as
  `codex.stderr` at codex's own level (its ``WARN``/``ERROR`` prefix; a continuation line at
  the level of the line it continues), and the last `stderr_lines` are kept for error messages.
* When the process exits, for whatever reason, every pending request fails with `CodexExited`
  (exit code and stderr tail, which is where codex explains a startup failure), and
  `on_exit(CodexExited)` is called once.

* With a `watchdog_interval`, a trivial request (``account/read``) goes out every that many
  seconds; no answer within `watchdog_timeout` means codex is hung (stopped, deadlocked): that is
  logged (``codex.hung``, an error) and the process is killed, so every pending request fails at
  once and the owner restarts it, instead of each request waiting out its own timeout.

`close()` closes stdin (codex exits on EOF), waits `grace` s, then kills the process group;
`kill(reason)` kills it at once (a turn codex may still be running must never run later).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import os
import re
import signal
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import structlog

from schemas.codex import (
    INTERNAL_ERROR,
    METHOD_NOT_FOUND,
    ClientInfo,
    InitializeCapabilities,
    InitializeParams,
    InitializeResponse,
    InvalidMessage,
    Message,
    Request,
    RequestId,
    RpcErrorBody,
    RpcNotification,
    RpcRequest,
    RpcResponse,
    decode_message,
    decode_result,
    encode_message,
)

from ._binary import find_codex_binary

R = TypeVar("R")
NotificationCallback = Callable[[str | None, str, Any], Awaitable[None] | None]
RequestHandler = Callable[[RpcRequest], Awaitable[Any]]

log = structlog.get_logger(__name__)

_LINE_LIMIT = 64 * 1024 * 1024
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_LEVEL = re.compile(r"^\S+\s+(TRACE|DEBUG|INFO|WARN|ERROR)\s")
_LEVELS = {"TRACE": "debug", "DEBUG": "debug", "INFO": "info", "WARN": "warning", "ERROR": "error"}
_NULL = msgspec.Raw(b"null")


class CodexError(Exception):
    """Base of the errors raised by `CodexProcess`."""


class CodexRpcError(CodexError):
    """A JSON-RPC error: received from codex, or raised by a request handler to answer one."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"codex error {code}: {message}")
        self.code, self.message, self.data = code, message, data


class CodexTimeout(CodexError, TimeoutError):
    """No response within the timeout."""


class CodexExited(CodexError):
    """The process is gone (or never started): carries its exit code and last stderr lines."""

    def __init__(
        self, returncode: int | None, stderr_tail: Sequence[str], context: str = ""
    ) -> None:
        tail = "\n".join(stderr_tail) or "(no stderr output)"
        what = f"{context}: " if context else ""
        super().__init__(f"{what}codex app-server exited with code {returncode}; stderr:\n{tail}")
        self.returncode, self.stderr_tail = returncode, list(stderr_tail)


class CodexProcess:
    """One `codex app-server` process; see the module docstring."""

    def __init__(
        self,
        *,
        binary: str | Path | None = None,
        args: Sequence[str] = ("--disable", "plugins"),
        wrapper: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        inherit_env: bool = True,
        cwd: str | Path | None = None,
        client_info: ClientInfo | None = None,
        capabilities: InitializeCapabilities | None = None,
        on_notification: NotificationCallback | None = None,
        request_handlers: Mapping[str, RequestHandler] | None = None,
        on_exit: Callable[[CodexExited], None] | None = None,
        request_timeout: float = 60.0,
        startup_timeout: float = 30.0,
        stderr_lines: int = 50,
        watchdog_interval: float | None = None,
        watchdog_timeout: float = 10.0,
    ) -> None:
        self.binary = Path(binary) if binary is not None else None
        self.args, self.env, self.cwd = list(args), dict(env or {}), cwd
        self.wrapper = list(wrapper)
        self.inherit_env = inherit_env
        self.client_info = client_info or ClientInfo(name="piano", version="0.1.0", title="Piano")
        self.capabilities = capabilities
        self.on_notification, self.on_exit = on_notification, on_exit
        self.request_handlers = dict(request_handlers or {})
        self.request_timeout, self.startup_timeout = request_timeout, startup_timeout
        self.watchdog_interval, self.watchdog_timeout = watchdog_interval, watchdog_timeout
        self.stderr_tail: deque[str] = deque(maxlen=stderr_lines)
        self.exit: CodexExited | None = None
        self.codex_home: str | None = None
        """Codex's CODEX_HOME as codex itself names it (its `initialize` answer), once started."""
        self._proc: asyncio.subprocess.Process | None = None
        self._ids = itertools.count()
        self._pending: dict[RequestId, asyncio.Future[msgspec.Raw]] = {}
        self._timed_out: set[RequestId] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._exited = asyncio.Event()
        self._log = log

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    async def start(self) -> InitializeResponse:
        """Spawn codex and do the handshake; raises `CodexExited` with stderr if it dies."""
        binary = self.binary or find_codex_binary()
        inherited = os.environ if self.inherit_env else {}
        env = {**inherited, "RUST_LOG": inherited.get("RUST_LOG", "warn"), **self.env}
        self._proc = await asyncio.create_subprocess_exec(
            *self.wrapper,
            str(binary),
            "app-server",
            *self.args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd=self.cwd,
            limit=_LINE_LIMIT,
            start_new_session=True,
        )
        self._log = log.bind(pid=self._proc.pid)
        self._log.info("codex.spawned", binary=str(binary), args=self.args, wrapper=self.wrapper)
        readers = [self._spawn(self._read_stdout()), self._spawn(self._read_stderr())]
        self._spawn(self._watch(readers))
        try:
            result = await self.call(
                InitializeParams(client_info=self.client_info, capabilities=self.capabilities),
                timeout=self.startup_timeout,
            )
        except CodexExited as exc:
            raise CodexExited(exc.returncode, exc.stderr_tail, "startup failed") from None
        except CodexTimeout as exc:
            tail = "\n".join(self.stderr_tail)
            raise CodexTimeout(f"{exc}; stderr:\n{tail}") from None
        self.codex_home = result.codex_home
        await self.notify("initialized")
        if self.watchdog_interval is not None:
            self._spawn(self._watchdog(self.watchdog_interval))
        return result

    async def call(
        self,
        params: Request[R],
        *,
        timeout: float | None = None,
    ) -> R:
        """Send a typed request; returns its typed result."""
        raw = await self.request(params.method, params, timeout=timeout)
        result: R = decode_result(raw, params.response_type)
        return result

    async def request(
        self,
        method: str,
        params: Any = None,
        *,
        timeout: float | None = None,
    ) -> msgspec.Raw:
        """Send a request; returns the raw `result` (decode it with `decode_result`)."""
        if self.exit is not None:
            raise self.exit
        req_id = next(self._ids)
        future: asyncio.Future[msgspec.Raw] = asyncio.get_running_loop().create_future()
        self._pending[req_id] = future
        limit = self.request_timeout if timeout is None else timeout
        try:
            await self._send(RpcRequest(id=req_id, method=method, params=params))
            async with asyncio.timeout(limit):
                return await future
        except TimeoutError:
            self._timed_out.add(req_id)
            raise CodexTimeout(f"{method} (id {req_id}): no response in {limit} s") from None
        finally:
            self._pending.pop(req_id, None)

    async def notify(self, method: str, params: Any = None) -> None:
        await self._send(RpcNotification(method=method, params=params))

    async def wait_closed(self) -> CodexExited:
        """Wait until the process has exited and every pending request has failed."""
        await self._exited.wait()
        assert self.exit is not None
        return self.exit

    async def close(self, grace: float = 5.0) -> None:
        """Close stdin, wait up to `grace` seconds, then SIGKILL the process group."""
        proc = self._proc
        if proc is None:
            return
        if proc.returncode is None and proc.stdin is not None:
            proc.stdin.close()
        try:
            async with asyncio.timeout(grace):
                await proc.wait()
        except TimeoutError:
            self._log.warning("codex.kill", reason="no exit after stdin closed", grace=grace)
        self._kill_group()
        await self._exited.wait()

    async def kill(self, reason: str) -> None:
        """Kill the process group now (a stopped process too) and wait until every pending
        request has failed; `reason` is logged."""
        if self._proc is None:
            return
        if self.exit is None:
            self._log.warning("codex.kill", reason=reason)
        self._kill_group()
        await self._exited.wait()

    def _kill_group(self) -> None:
        assert self._proc is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, signal.SIGKILL)

    async def _watchdog(self, interval: float) -> None:
        limit = self.watchdog_timeout
        while self.exit is None:
            await asyncio.sleep(interval)
            try:
                await self.request("account/read", {"refreshToken": False}, timeout=limit)
            except CodexTimeout:
                self._log.error("codex.hung", waited=limit, action="killing it to restart it")
                await self.kill(f"no answer to the watchdog within {limit:g} s")
                return
            except CodexError:
                return

    async def __aenter__(self) -> CodexProcess:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _spawn(self, coro: Awaitable[None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _send(self, msg: Message) -> None:
        proc = self._proc
        if self.exit is not None:
            raise self.exit
        if proc is None or proc.stdin is None or proc.stdin.is_closing():
            raise CodexExited(None, self.stderr_tail, "not running")
        proc.stdin.write(encode_message(msg))
        try:
            await proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise CodexExited(proc.returncode, self.stderr_tail, "stdin closed") from exc

    async def _read_stderr(self) -> None:
        assert self._proc is not None
        assert self._proc.stderr is not None
        level = "info"
        async for raw in self._proc.stderr:
            line = _ANSI.sub("", raw.decode(errors="replace")).rstrip()
            if line:
                self.stderr_tail.append(line)
                if found := _LEVEL.match(line):
                    level = _LEVELS[found.group(1)]
                elif not line[0].isspace():
                    level = "info"
                getattr(self._log, level)("codex.stderr", line=line)

    async def _read_stdout(self) -> None:
        assert self._proc is not None
        assert self._proc.stdout is not None
        stdout = self._proc.stdout
        while True:
            try:
                line = await stdout.readline()
            except ValueError as exc:
                self._log.error("codex.line_too_long", error=str(exc))
                continue
            if not line:
                return
            if line.strip():
                await self._dispatch(line)
                # A streamed answer arrives as a burst of buffered lines, which readline
                # returns without suspending: yield after each, so that every event reaches
                # the thread, the pipeline, the surfaces and the store before the next line is
                # read, instead of waiting behind the rest of the burst (docs/BENCHMARKS.md).
                await asyncio.sleep(0)

    async def _dispatch(self, line: bytes) -> None:
        try:
            msg = decode_message(line)
        except InvalidMessage as exc:
            self._log.warning("codex.invalid_message", error=str(exc), line=line[:300])
            if exc.request_id is not None:
                await self._answer_error(exc.request_id, exc.method, -32602, str(exc))
            return
        if isinstance(msg, RpcResponse):
            self._resolve(msg)
        elif isinstance(msg, RpcRequest):
            handler = self.request_handlers.get(msg.method)
            if handler is None:
                self._log.info("codex.unhandled_request", method=msg.method, id=msg.id)
                message = f"method not found: {msg.method}"
                await self._answer_error(msg.id, msg.method, METHOD_NOT_FOUND, message)
            else:
                self._spawn(self._handle(msg, handler))
        elif self.on_notification is not None:
            try:
                result = self.on_notification(msg.thread_id, msg.method, msg.params)
                if result is not None and inspect.isawaitable(result):
                    await result
            except Exception:
                self._log.exception("codex.notification_callback_failed", method=msg.method)

    def _resolve(self, msg: RpcResponse) -> None:
        future = self._pending.pop(msg.id, None)
        if future is None or future.done():
            late = msg.id in self._timed_out
            self._timed_out.discard(msg.id)
            self._log.warning(
                "codex.late_response" if late else "codex.unknown_response", id=msg.id
            )
        elif isinstance(msg.error, RpcErrorBody):
            future.set_exception(CodexRpcError(msg.error.code, msg.error.message, msg.error.data))
        else:
            future.set_result(msg.result if isinstance(msg.result, msgspec.Raw) else _NULL)

    async def _handle(self, req: RpcRequest, handler: RequestHandler) -> None:
        try:
            result = await handler(req)
        except CodexRpcError as exc:
            await self._answer_error(req.id, req.method, exc.code, exc.message, exc.data)
        except Exception as exc:
            self._log.exception("codex.request_handler_failed", method=req.method, id=req.id)
            await self._answer_error(req.id, req.method, INTERNAL_ERROR, f"handler failed: {exc}")
        else:
            with contextlib.suppress(CodexExited):
                await self._send(RpcResponse(id=req.id, result=result))

    async def _answer_error(
        self, req_id: RequestId, method: str | None, code: int, message: str, data: Any = None
    ) -> None:
        error = RpcErrorBody(code=code, message=message, data=data)
        try:
            await self._send(RpcResponse(id=req_id, error=error))
        except CodexExited:
            self._log.warning("codex.answer_dropped", id=req_id, method=method, reason="exited")

    async def _watch(self, readers: list[asyncio.Task[None]]) -> None:
        assert self._proc is not None
        returncode = await self._proc.wait()
        # Let the readers drain what the process wrote before it died; a grandchild that kept
        # the pipes open must not keep us waiting.
        _, stuck = await asyncio.wait(readers, timeout=2.0)
        for task in stuck:
            task.cancel()
        self.exit = CodexExited(returncode, self.stderr_tail)
        self._log.info("codex.exited", returncode=returncode)
        for future in self._pending.values():
            if not future.done():
                future.set_exception(self.exit)
        self._pending.clear()
        for task in list(self._tasks):
            if task is not asyncio.current_task():
                task.cancel()
        self._exited.set()
        if self.on_exit is not None:
            try:
                self.on_exit(self.exit)
            except Exception:
                self._log.exception("codex.on_exit_failed")
