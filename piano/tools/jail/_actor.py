"""`JailSession`: one thread's jailed shell as an actor, every command audited in the store.

```python
ref = await system.spawn(JailSession("thread-1", JailConfig(workspace=path), store=STORE))
result = await ref.call(RunCommand("make test", timeout=120), timeout=180)   # CommandResult
```

Guarantees (beyond `JailedShell`'s):
- commands of one session run one at a time, in the order they were sent;
- audit first, run second: a command runs only once its row (`BeginCommand`) has committed
  through the store writer registered as `store`; if that fails (no store running, a thread
  the store does not know) the call fails with `AuditFailed` and the command never runs. Its
  outcome (`RecordCommand`: exit code, timeout, restart, output heads) is committed before the
  call returns; if that fails the call fails with `AuditFailed` too. `store=None` turns the
  store audit off (logs only);
- a command whose caller goes away (its call timed out or was cancelled, e.g. the MCP client
  gave up) is killed within `_CALLER_CHECK` seconds, with the jail around it, and recorded
  with `restart_reason=ABANDONED`; the next command runs at once in a fresh jail and is told;
- a command that times out or kills its shell comes back as a normal result with
  `restart_reason` set: the jail was restarted and the shell's state (working directory,
  exported variables) is gone; a jail that cannot be (re)started crashes the session, its caller
  gets `ActorExited` with the `JailStartError`, and the supervisor starts it again;
- a session unused for `idle_timeout` seconds stops (``"normal"``) and its jail is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from actors import NOREPLY, Actor, Caller
from piano.store import STORE
from piano.tools._errors import ToolError
from piano.tools.jail._audit import BeginCommand, RecordCommand
from piano.tools.jail._shell import JailedShell
from piano.tools.jail._types import CommandResult, JailConfig, RestartReason

__all__ = ["AuditFailed", "JailSession", "RunCommand"]


_CALLER_CHECK = 0.25
"""Seconds between checks that the caller of the running command still waits for it."""


class AuditFailed(ToolError):
    """A command could not be recorded in the store (before it ran, or after: the message says)."""


@dataclass(frozen=True, slots=True)
class RunCommand:
    """Run `command` in the session's shell (`timeout` seconds, default and at most the
    jail's). Reply: `CommandResult`."""

    command: str
    timeout: float | None = None


class JailSession(Actor):
    """One thread's jailed shell; see the module documentation."""

    def __init__(
        self,
        thread_id: str,
        config: JailConfig,
        *,
        store: str | None = STORE,
        idle_timeout: float = 1800.0,
        audit_timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.thread_id = thread_id
        self.config = config
        self.store = store
        self.idle_timeout = idle_timeout
        self.audit_timeout = audit_timeout
        self.clock = clock
        self.session = f"{thread_id}/{secrets.token_hex(4)}"
        self.shell: JailedShell | None = None
        self.last_used = clock()
        self.commands = 0

    def describe(self) -> str:
        pid = self.shell.pid if self.shell is not None else None
        return f"jail of thread {self.thread_id}, {self.commands} commands, pid {pid}"

    async def init(self) -> None:
        self.trap_exits = True
        shell = JailedShell(self.config)
        await shell.start()
        self.shell = shell
        self.last_used = self.clock()
        self.send_after(self.idle_timeout, "idle")
        self.log.info("jail.session_started", thread_id=self.thread_id, session=self.session)

    async def handle_call(self, message: Any, caller: Caller) -> Any:
        if isinstance(message, RunCommand) and self.shell is not None:
            self.last_used = self.clock()
            self.commands += 1
            try:
                row = await self._store_call(
                    BeginCommand(self.thread_id, self.session, message.command),
                    "the command was not run: it could not be recorded",
                )
                result = await self._run(self.shell, message, caller)
                self._log_result(result)
                if row is not None:
                    await self._store_call(
                        RecordCommand(row, result), "the command ran but could not be recorded"
                    )
            except AuditFailed as exc:
                caller.fail(exc)
                return NOREPLY
            return result
        if message == "pid":
            return self.shell.pid if self.shell is not None else None
        if message == "workspace":
            return self.config.workspace
        return await super().handle_call(message, caller)

    async def _run(self, shell: JailedShell, message: RunCommand, caller: Caller) -> CommandResult:
        """Run the command while its caller waits; kill it (and the jail) once it does not."""
        started_at, t0 = time.time(), time.monotonic()
        run = asyncio.ensure_future(shell.run(message.command, message.timeout))
        while not run.done():
            await asyncio.wait({run}, timeout=_CALLER_CHECK)
            if run.done() or caller.waiting:
                continue
            run.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await run
            self.log.info("jail.command_abandoned", thread_id=self.thread_id)
            return CommandResult(
                command=message.command,
                exit_code=None,
                stdout=b"",
                stderr=b"",
                duration=time.monotonic() - t0,
                started_at=started_at,
                restart_reason=RestartReason.ABANDONED,
            )
        return run.result()

    async def handle_info(self, message: Any) -> None:
        if message != "idle":
            await super().handle_info(message)
            return None
        idle_for = self.clock() - self.last_used
        if idle_for >= self.idle_timeout:
            self.log.info("jail.idle_close", thread_id=self.thread_id, idle_for=idle_for)
            self.stop("normal")
        else:
            self.send_after(self.idle_timeout - idle_for, "idle")
        return None

    async def terminate(self, reason: object) -> None:
        shell, self.shell = self.shell, None
        if shell is not None:
            await shell.close()

    def _log_result(self, result: CommandResult) -> None:
        self.log.info(
            "jail.audit",
            thread_id=self.thread_id,
            session=self.session,
            exit_code=result.exit_code,
            timed_out=result.timed_out,
            restart=result.restart_reason.value if result.restart_reason else None,
        )

    async def _store_call(self, message: BeginCommand | RecordCommand, failure: str) -> Any:
        """`message`'s reply from the audit store (None when the audit is off)."""
        if self.store is None:
            return None
        store = self.system.whereis(self.store)
        if store is None:
            raise AuditFailed(f"{failure}: the audit store {self.store!r} is not running")
        try:
            return await store.call(message, timeout=self.audit_timeout)
        except Exception as exc:
            raise AuditFailed(f"{failure}: {exc}") from exc
