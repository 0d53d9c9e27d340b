"""`JailedShell`: a bubblewrap jail whose shell runs commands one by one, each in a fresh bash.

Guarantees:
- Commands run one at a time (an internal lock serialises `run`), each with its own random
  marker; stdout and stderr are read concurrently and returned separately, byte-exact, each
  capped at `output_cap_bytes` (the excess is drained and dropped, `*_truncated` set).
- The working directory and exported variables persist between commands, as long as the jail
  is not restarted; functions, aliases, traps, shell options and unexported variables do not
  (each command runs in a fresh bash: see `_protocol` for why), nor do processes: once a
  command has answered, everything it left
  running (background jobs, daemons, a fork bomb's remains) is SIGKILLed before anything else
  happens, so the jail's CPU, memory and process slots are the next command's alone and only
  the driver shell reads the next command. `exit 3` ends only its command. If the leftovers
  cannot be stopped within seconds the jail is restarted (`restart_reason=LEFTOVERS`). `run`
  starts the jail if needed.
- The per-command timeout is never more than `JailConfig.timeout` (`clamp_timeout`).
- No file the jail writes can carry a set-uid/set-gid bit: files the jail writes belong on the
  host to the jail's host uid. The seccomp filter (`_seccomp`, x86_64) refuses such modes;
  elsewhere the workspace is swept after every command (`_procs.strip_setid`).
- The jail's processes, bwrap included, get only `jail_environment` (never the driver's).
- A command that outlives its timeout gets the whole jail SIGKILLed (process group, pid
  namespace, cgroup); a fresh jail is started at once and the result says `timed_out` and
  `restart_reason=TIMEOUT`. A driver shell that dies during a command (killed by the command or
  a limit) gives `restart_reason=SHELL_EXITED` with its status; a shell found dead before a
  command gives `SHELL_DIED_BEFORE` (the command then ran in a fresh jail), and so does
  `CANCELLED` after a `run` was cancelled mid-command (its jail is killed). Either way the
  caller is told its shell state is gone. If the fresh jail cannot start, the next `run` raises
  `JailStartError`.
- Subscribers get each output chunk (`"stdout"`/`"stderr"`, bytes) while the command runs,
  within the same caps. The `on_command` hook receives every `CommandResult` (sync or async);
  if it raises, `run` raises too, so an unrecorded command never goes unnoticed.
- `close()` (also while a command runs: that `run` raises `JailClosedError`) kills everything
  in the jail and removes its cgroups. If the driver itself dies, `--die-with-parent` takes the
  jail down and the next driver sweeps the cgroups left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import Literal

import structlog

from piano.tools.jail._argv import bwrap_argv, find_bwrap, jail_environment, shell_copy
from piano.tools.jail._limits import JailLimits, LimitReport
from piano.tools.jail._procs import (
    JailTree,
    find_tree,
    nothing_left,
    stop_leftovers,
    strip_setid,
)
from piano.tools.jail._protocol import SHELL_INIT, StreamCollector, frame, new_marker
from piano.tools.jail._seccomp import filter_fd
from piano.tools.jail._types import (
    CommandResult,
    JailClosedError,
    JailConfig,
    JailStartError,
    RestartReason,
)

log = structlog.get_logger(__name__)

StreamName = Literal["stdout", "stderr"]
OutputCallback = Callable[[StreamName, bytes], None]
AuditHook = Callable[[CommandResult], Awaitable[None] | None]

_READ_SIZE = 65536
_CLOSE_GRACE = 1.0
_REAP_TIMEOUT = 5.0


def _has_exited(proc: asyncio.subprocess.Process) -> bool:
    """True if the jail process has ended, even if asyncio has not reaped it yet."""
    if proc.returncode is not None:
        return True
    try:
        info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return info is not None


class _Exchange:
    """One command's two collectors and how the exchange ended."""

    def __init__(self, stdout: StreamCollector, stderr: StreamCollector) -> None:
        self.stdout = stdout
        self.stderr = stderr
        self.eof = False


class JailedShell:
    """A persistent jailed bash. Use `async with JailedShell(config) as shell:` or start/close."""

    def __init__(self, config: JailConfig, *, on_command: AuditHook | None = None) -> None:
        self._config = config
        self._on_command = on_command
        self._subscribers: list[OutputCallback] = []
        self._lock = asyncio.Lock()
        self._proc: asyncio.subprocess.Process | None = None
        self._limits: JailLimits | None = None
        self._tree: JailTree | None = None
        self._setid_filtered = False
        self._carry: dict[StreamName, bytes] = {"stdout": b"", "stderr": b""}
        self._started = False
        self._closed = False
        self._abandoned = False

    @property
    def config(self) -> JailConfig:
        return self._config

    @property
    def limits(self) -> LimitReport | None:
        """How memory and process limits are enforced for the current jail (None if down)."""
        return self._limits.report if self._limits is not None else None

    @property
    def cgroup_dirs(self) -> tuple[Path, ...]:
        """The current jail's cgroup directories (empty under the rlimit fallback)."""
        return self._limits.cgroup_dirs if self._limits is not None else ()

    @property
    def pid(self) -> int | None:
        """Host pid of the jail's outer bwrap process, while it runs."""
        return self._proc.pid if self._proc is not None else None

    async def __aenter__(self) -> JailedShell:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def subscribe(self, callback: OutputCallback) -> Callable[[], None]:
        """Receive output chunks while commands run; returns a function that unsubscribes."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._subscribers.remove(callback)

        return unsubscribe

    async def start(self) -> None:
        """Start the jail and wait until its shell answers. Idempotent."""
        async with self._lock:
            if self._closed:
                raise JailClosedError("the jailed shell was closed")
            if self._proc is None:
                await self._spawn()
            self._started = True

    async def restart(self) -> None:
        """Kill the jail (and everything in it) and start a fresh one: shell state is lost."""
        async with self._lock:
            if self._closed:
                raise JailClosedError("the jailed shell was closed")
            await self._teardown(graceful=False)
            await self._spawn()

    async def close(self) -> None:
        """Stop the jail, kill whatever runs in it and remove its cgroups. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._lock.locked():
            self._kill()
        async with self._lock:
            await self._teardown(graceful=True)

    async def run(self, command: str, timeout: float | None = None) -> CommandResult:
        """Run `command` in the shell and return its result (see the module guarantees).

        `timeout` (seconds, default `JailConfig.timeout`) is not a cancel scope: when it
        expires the jail itself is killed and restarted, which only the driver can do.
        """
        limit = self._config.clamp_timeout(timeout)
        payload_marker = new_marker()
        payload = frame(command, payload_marker)
        async with self._lock:
            if self._closed:
                raise JailClosedError("the jailed shell was closed")
            reason: RestartReason | None = None
            dead = self._proc is None or _has_exited(self._proc)
            if self._abandoned:
                reason = RestartReason.CANCELLED
            elif dead and self._started:
                reason = RestartReason.SHELL_DIED_BEFORE
            if self._abandoned or dead:
                await self._teardown(graceful=False)
                await self._spawn()
                self._started = True
            started_at = time.time()
            t0 = time.monotonic()
            try:
                exchange = await self._exchange(payload, payload_marker, limit)
            except asyncio.CancelledError:
                self._kill()
                self._abandoned = True
                raise
            if self._closed:
                raise JailClosedError("the jailed shell was closed while the command ran")
            duration = time.monotonic() - t0
            if exchange is None:
                reason = RestartReason.SHELL_DIED_BEFORE
                await self._teardown(graceful=False)
                await self._spawn()
                exchange = await self._exchange(payload, payload_marker, limit)
                if exchange is None:
                    raise JailStartError("the jail's shell died before reading the command")
            exit_code = exchange.stdout.status
            timed_out = not exchange.eof and exit_code is None
            if timed_out or exchange.eof:
                reason = RestartReason.TIMEOUT if timed_out else RestartReason.SHELL_EXITED
                exit_code = None if timed_out else await self._exit_status()
                await self._after_failure(reason)
            elif not await self._stop_leftovers():
                reason = reason or RestartReason.LEFTOVERS
                await self._after_failure(RestartReason.LEFTOVERS)
            await self._strip_setid()
            result = CommandResult(
                command=command,
                exit_code=exit_code,
                stdout=bytes(exchange.stdout.kept),
                stderr=bytes(exchange.stderr.kept),
                stdout_truncated=exchange.stdout.truncated,
                stderr_truncated=exchange.stderr.truncated,
                timed_out=timed_out,
                duration=duration,
                started_at=started_at,
                restart_reason=reason,
            )
            log.info(
                "jail.command",
                command_len=len(command),
                exit_code=exit_code,
                duration=round(result.duration, 4),
                timed_out=timed_out,
                restart=reason.value if reason else None,
            )
        if self._on_command is not None:
            outcome = self._on_command(result)
            if inspect.isawaitable(outcome):
                await outcome
        return result

    async def _stop_leftovers(self) -> bool:
        """Kill whatever the command left running in the jail; False if that did not settle."""
        tree = self._tree
        if tree is None:
            return False
        if nothing_left(tree, self.cgroup_dirs):
            return True
        killed = await asyncio.to_thread(stop_leftovers, tree, self.cgroup_dirs)
        if killed:
            log.info("jail.leftovers_killed", processes=killed)
        return killed is not None

    async def _strip_setid(self) -> None:
        """Clear set-id bits the command put on workspace files (nothing of the jail runs),
        where the seccomp filter could not forbid them in the first place."""
        if self._setid_filtered:
            return
        changed = await asyncio.to_thread(strip_setid, self._config.workspace)
        if changed:
            log.warning("jail.setid_stripped", files=len(changed))

    async def _exchange(self, payload: bytes, marker: bytes, limit: float) -> _Exchange | None:
        """Send one framed command and collect both streams; None if the shell is gone."""
        proc = self._proc
        assert proc is not None
        assert proc.stdin is not None
        assert proc.stdout is not None
        assert proc.stderr is not None
        cap = self._config.output_cap_bytes
        exchange = _Exchange(
            StreamCollector(marker, cap, self._sink("stdout"), status_line=True),
            StreamCollector(marker, cap, self._sink("stderr"), status_line=False),
        )
        try:
            proc.stdin.write(payload)
            await proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            return None
        readers = (
            self._collect(proc.stdout, exchange.stdout, "stdout"),
            self._collect(proc.stderr, exchange.stderr, "stderr"),
        )
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(limit):
                eofs = await asyncio.gather(*readers)
                exchange.eof = any(eofs)
        return exchange

    async def _collect(
        self, stream: asyncio.StreamReader, collector: StreamCollector, name: StreamName
    ) -> bool:
        """Read `stream` until the collector is done; True if the stream ended first."""
        carry, self._carry[name] = self._carry[name], b""
        if carry:
            collector.feed(carry)
        while not collector.done:
            data = await stream.read(_READ_SIZE)
            if not data:
                collector.feed_eof()
                return True
            collector.feed(data)
        self._carry[name] = collector.carry
        return False

    def _sink(self, name: StreamName) -> Callable[[bytes], None]:
        def deliver(data: bytes) -> None:
            for callback in list(self._subscribers):
                try:
                    callback(name, data)
                except Exception:
                    log.exception("jail.subscriber_failed", stream=name)

        return deliver

    async def _spawn(self) -> None:
        """Start a fresh jail (limits, bwrap, bash) and wait for its first answer."""
        config = self._config
        bwrap = find_bwrap()
        config.workspace.mkdir(mode=0o700, parents=True, exist_ok=True)
        _warn_if_reachable(config)
        limits = JailLimits.create(config)
        self._limits = limits
        self._carry = {"stdout": b"", "stderr": b""}
        self._abandoned = False
        seccomp = filter_fd()
        self._setid_filtered = seccomp is not None
        try:
            shell = await asyncio.to_thread(shell_copy, config)
            argv = limits.prefix + bwrap_argv(bwrap, config, shell, seccomp)
            self._proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
                env=jail_environment(config),
                cwd="/",
                pass_fds=() if seccomp is None else (seccomp,),
            )
            if seccomp is not None:
                os.close(seccomp)
                seccomp = None
            marker = new_marker()
            exchange = await self._exchange(
                SHELL_INIT.encode() + frame(":", marker), marker, config.start_timeout
            )
        except BaseException:
            if seccomp is not None:
                os.close(seccomp)
            await self._teardown(graceful=False)
            raise
        self._tree = None if exchange is None else find_tree(self._proc.pid, limits.cgroup_dirs)
        if exchange is None or exchange.stdout.status != 0 or self._tree is None:
            detail = b""
            if exchange is not None:
                detail = bytes(exchange.stderr.kept).strip()
            await self._teardown(graceful=False)
            raise JailStartError(
                f"the jail did not start: {detail.decode('utf-8', 'replace') or 'no answer'}"
            )
        log.info("jail.started", pid=self._proc.pid, limits=str(limits.report))

    async def _exit_status(self) -> int:
        """The jail's exit status once its streams have ended (shell status, or 128+signal)."""
        proc = self._proc
        assert proc is not None
        if not await _reap(proc, _CLOSE_GRACE):
            self._kill()
            await _reap(proc, _REAP_TIMEOUT)
        code = proc.returncode if proc.returncode is not None else -signal.SIGKILL
        return code if code >= 0 else 128 - code

    async def _after_failure(self, reason: RestartReason) -> None:
        """Kill what is left of the jail and, unless closing, start a fresh one."""
        await self._teardown(graceful=False)
        if self._closed:
            return
        try:
            await self._spawn()
        except Exception:
            log.exception("jail.restart_failed", reason=reason.value)

    def _kill(self) -> None:
        """SIGKILL the jail: its process group, then whatever remains in its cgroups."""
        if self._proc is not None and self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._proc.pid, signal.SIGKILL)
        if self._limits is not None:
            self._limits.kill_all()

    async def _teardown(self, *, graceful: bool) -> None:
        """Stop the current jail (gently if asked: EOF on stdin first) and free its cgroups."""
        proc, self._proc = self._proc, None
        self._tree = None
        if proc is not None:
            if graceful and proc.returncode is None and proc.stdin is not None:
                proc.stdin.close()
                await _reap(proc, _CLOSE_GRACE)
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
            if self._limits is not None:
                self._limits.kill_all()
            if not await _reap(proc, _REAP_TIMEOUT):
                log.error("jail.not_reaped", pid=proc.pid)
        if self._limits is not None:
            await self._limits.remove()
            self._limits = None


def _warn_if_reachable(config: JailConfig) -> None:
    """Log when users other than the jail's could reach the workspace through its parent."""
    if config.host_uid is not None:
        return
    with contextlib.suppress(OSError):
        if config.workspace.resolve().parent.stat().st_mode & 0o077:
            log.warning(
                "jail.workspace_reachable",
                parent=str(config.workspace.resolve().parent),
                hint="make the workspace's parent directory owner-only (chmod 700)",
            )


async def _drain(stream: asyncio.StreamReader | None) -> None:
    if stream is not None:
        while await stream.read(_READ_SIZE):
            pass


async def _reap(proc: asyncio.subprocess.Process, seconds: float) -> bool:
    """Wait until the jail process has exited and its pipes are closed, dropping unread output.

    asyncio's `wait()` only returns once every pipe is closed, and a pipe whose reader is paused
    (unread output of a flood) never reports its end: so the pipes are drained meanwhile.
    """
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await asyncio.gather(proc.wait(), _drain(proc.stdout), _drain(proc.stderr))
            return True
    return False
