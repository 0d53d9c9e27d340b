"""`Toolbox`: a thread's tools, found or started on demand, for whoever calls on its behalf.

```python
toolbox = Toolbox(system, tools_config, publish=publish)
result = await toolbox.fetch("thread-1", "https://example.org/")          # FetchResult
page = await toolbox.browse("thread-1", Visit("https://example.org/"))   # PageInfo
ran = await toolbox.shell("thread-1", "ls -la")                          # CommandResult
await toolbox.send_message("thread-1", "Half-way there.")
```

Sessions belong to a thread: its browser is the actor registered as ``tools:browser:<thread>``
and its shell ``tools:jail:<thread>``, children of the ``tools:browsers`` / ``tools:jails``
dynamic supervisors, started here the first time the thread needs them (one at a time per
thread, so two concurrent first calls share one session). The names are the registry: a
session restarted by its supervisor after a crash is found again under the same name, and one
that closed when idle is started afresh by the next call.

Every failure reaches the caller as a `ToolError` whose message says what happened: a page
error or a crashed browser (`BrowserActionError`, `BrowserCrashed`), all session slots taken
(`SessionLimitReached`), a tool that is down or did not answer in time (`ToolUnavailable`).
The Toolbox holds no actor state of its own: it is safe to share and to recreate.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
import weakref
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import structlog

from actors import ActorExited, ActorRef, ActorSystem, ActorTimeout, is_normal_exit
from piano.tools._config import JailToolConfig, ToolsConfig
from piano.tools._errors import SessionLimitReached, ToolError, ToolUnavailable
from piano.tools._workspaces import workspace_of
from piano.tools.browser import BrowserAction, BrowserSession
from piano.tools.jail import CommandResult, JailSession, RunCommand
from piano.tools.webfetch import Fetch, FetchResult
from schemas.events import Notice, ThreadEvent
from supervisors import ChildSpec, ChildStartError, MaxChildren, start_child

__all__ = [
    "BROWSERS",
    "JAILS",
    "WEBFETCH",
    "Publish",
    "Toolbox",
    "browser_name",
    "jail_name",
]

log = structlog.get_logger(__name__)

BROWSERS = "tools:browsers"
JAILS = "tools:jails"
WEBFETCH = "tools:webfetch"

Publish = Callable[[list[ThreadEvent]], Awaitable[None] | None]
"""Delivers events to the surfaces: the daemon's `piano.events.publisher`, which takes a list."""


def browser_name(thread_id: str) -> str:
    return f"tools:browser:{thread_id}"


def jail_name(thread_id: str) -> str:
    return f"tools:jail:{thread_id}"


class Toolbox:
    """Resolves a thread's tool sessions and runs actions on them; see the module docs."""

    def __init__(
        self, system: ActorSystem, config: ToolsConfig, *, publish: Publish | None = None
    ) -> None:
        self.system = system
        self.config = config
        self.publish = publish
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    # -- the tools ------------------------------------------------------------------------------

    async def workspace(self, thread_id: str) -> Path:
        """The thread's workspace (created): its jail's /workspace, where long pages are saved
        — the project (or worktree) its conversation chose, if it chose one."""
        chosen = await self._chosen(thread_id)
        if chosen is not None:
            return chosen
        return await asyncio.to_thread(self.config.jail.make_workspace, thread_id)

    async def _chosen(self, thread_id: str) -> Path | None:
        try:
            chosen = await workspace_of(self.system, thread_id)
        except (ActorExited, ActorTimeout) as exc:
            why = f"where this conversation works is not known now: {exc}"
            raise ToolUnavailable(why) from None
        return None if chosen is None else chosen.path

    async def fetch(self, thread_id: str, url: str) -> FetchResult:
        """Fetch `url` for the thread; long content is saved in its workspace."""
        fetcher = self._running(WEBFETCH, "web fetch")
        workspace = await self.workspace(thread_id)
        timeout = self.config.webfetch.timeout + 30.0
        result: FetchResult = await self._call(
            fetcher, Fetch(url, workspace=workspace), timeout, "web fetch"
        )
        return result

    async def browse(self, thread_id: str, action: BrowserAction) -> Any:
        """Run one browser action in the thread's browser session (started if needed)."""
        timeout = self.config.browser.action_timeout
        for attempt in (1, 2):
            session = await self.browser_session(thread_id)
            try:
                return await self._call(session, action, timeout, "the browser")
            except _Gone:
                if attempt == 2:
                    raise ToolUnavailable("the browser session closed; try again") from None
        raise AssertionError("unreachable")

    async def shell(
        self, thread_id: str, command: str, timeout: float | None = None
    ) -> CommandResult:
        """Run `command` in the thread's jailed shell (started if needed)."""
        limit = self.config.jail.jail_config(thread_id).clamp_timeout(timeout) + 30.0
        for attempt in (1, 2):
            session = await self.jail_session(thread_id)
            try:
                result: CommandResult = await self._call(
                    session, RunCommand(command, timeout), limit, "the shell"
                )
                return result
            except _Gone:
                if attempt == 2:
                    raise ToolUnavailable("the shell session closed; try again") from None
        raise AssertionError("unreachable")

    async def send_message(self, thread_id: str, text: str) -> None:
        """Post `text` to the thread's surfaces now, as a `Notice` (level "info")."""
        if self.publish is None:
            raise ToolUnavailable("no surface is connected to post messages to")
        outcome = self.publish(
            [Notice(thread_id=thread_id, level="info", message=text, at=time.time())]
        )
        if inspect.isawaitable(outcome):
            await outcome

    # -- sessions -------------------------------------------------------------------------------

    async def browser_session(self, thread_id: str) -> ActorRef:
        """The thread's browser session, started if it has none."""
        config = self.config.browser
        return await self._session(
            browser_name(thread_id),
            BROWSERS,
            lambda: BrowserSession(thread_id, config),
            init_timeout=config.start_timeout,
            what="browser",
        )

    async def jail_session(self, thread_id: str) -> ActorRef:
        """The thread's jailed shell session, started if it has none. Its /workspace is the
        conversation's chosen project, else the thread's own directory; a session started
        before the conversation chose another is stopped first (its shell state goes)."""
        jail = self.config.jail
        if not jail.enabled:
            raise ToolUnavailable("the shell tool is disabled in this Piano")
        chosen = await self._chosen(thread_id)
        jail_config = jail.jail_config(thread_id, chosen)
        if chosen is None:
            await asyncio.to_thread(jail.make_workspace, thread_id)
        else:
            await asyncio.to_thread(_private_root, jail)
        running = self.system.whereis(jail_name(thread_id))
        if running is not None and running.alive:
            try:
                current = await running.call("workspace", timeout=10)
            except (ActorExited, ActorTimeout):
                current = None
            if current is not None and current != jail_config.workspace:
                log.info("tools.jail_moved", thread_id=thread_id)
                with contextlib.suppress(ActorExited, ActorTimeout):
                    await running.stop("normal", timeout=jail_config.start_timeout + 15.0)
        return await self._session(
            jail_name(thread_id),
            JAILS,
            lambda: JailSession(
                thread_id, jail_config, store=jail.store or None, idle_timeout=jail.idle_timeout
            ),
            init_timeout=jail_config.start_timeout + 5.0,
            what="shell",
        )

    async def _session(
        self,
        name: str,
        supervisor_name: str,
        start: Callable[[], Any],
        *,
        init_timeout: float,
        what: str,
    ) -> ActorRef:
        ref = self.system.whereis(name)
        if ref is not None and ref.alive:
            return ref
        lock = self._locks.get(name)
        if lock is None:
            lock = self._locks[name] = asyncio.Lock()
        async with lock:
            ref = self.system.whereis(name)
            if ref is not None and ref.alive:
                return ref
            supervisor = self._running(supervisor_name, what)
            spec = ChildSpec(
                name,
                start=start,
                restart="transient",
                name=name,
                init_timeout=init_timeout,
                shutdown=15.0,
            )
            try:
                started = await start_child(supervisor, spec)
            except MaxChildren:
                raise SessionLimitReached(
                    f"every {what} session is in use; one frees up when a thread's session "
                    "has been idle long enough"
                ) from None
            except ChildStartError as exc:
                raise ToolUnavailable(f"the {what} could not start: {exc.reason}") from None
            except (ActorExited, ActorTimeout) as exc:
                raise ToolUnavailable(f"the {what} supervisor did not answer: {exc}") from None
            assert started is not None
            log.info("tools.session_started", session=name)
            return started

    def _running(self, name: str, what: str) -> ActorRef:
        ref = self.system.whereis(name)
        if ref is None:
            raise ToolUnavailable(f"the {what} tool is not running")
        return ref

    async def _call(self, ref: ActorRef, message: object, timeout: float, what: str) -> Any:
        try:
            return await ref.call(message, timeout=timeout)
        except ToolError:
            raise
        except ActorTimeout:
            raise ToolUnavailable(f"{what} did not answer within {timeout:g}s") from None
        except ActorExited as exc:
            if is_normal_exit(exc.reason) or exc.reason == "noproc":
                raise _Gone from None
            if isinstance(exc.reason, ToolError):
                raise exc.reason from None
            message = f"{what} crashed: {exc.reason!r}; it is being restarted"
            raise ToolUnavailable(message) from None


def _private_root(jail: JailToolConfig) -> None:
    """The jails' root, owner-only: a project's jail keeps its driver's files there."""
    root = Path(jail.workspace_root).expanduser()
    root.mkdir(mode=0o700, parents=True, exist_ok=True)


class _Gone(Exception):
    """The session stopped (idle close) between being found and being called."""
