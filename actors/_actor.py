"""The `Actor` base class: a gen_server for asyncio.

Subclass `Actor`, keep your state in attributes, and override the callbacks you need:

```python
class Counter(Actor):
    def __init__(self, start: int = 0) -> None:   # arguments; runs in the spawner
        self.count = start

    async def init(self) -> None:                  # async set-up; spawn returns after it
        self.log.info("counting", start=self.count)

    async def handle_call(self, message, caller):  # request/reply: the return value is the reply
        match message:
            case "get":
                return self.count
        return await super().handle_call(message, caller)

    async def handle_cast(self, message):          # fire-and-forget
        match message:
            case ("add", n):
                self.count += n

ref = await system.spawn(Counter(10))
ref.cast(("add", 5))
assert await ref.call("get") == 15
```

Guarantees:
- One message at a time, in mailbox order; messages between one sender and one actor stay in
  the order they were sent (FIFO per pair, as on the BEAM).
- `init` completes before `spawn` returns; if it raises, `spawn` raises `StartFailed` and the
  actor never ran.
- An idle actor holds no task: a message schedules one callback that drains the mailbox. A
  handler that never suspends runs inside that callback; one that awaits something is finished
  on a task, which lasts until the mailbox is empty again.
- When a handler raises, the actor crashes: one structured crash report is logged (reason,
  traceback, the message, a state summary), `terminate(reason)` runs, every pending call fails
  with `ActorExited`, links get the exit signal and monitors a `Down` message.
- Handlers may be plain functions (`def handle_cast`) or coroutines; plain ones are cheaper.
- Callbacks run on the event loop's thread; a handler that blocks blocks everything. Use a
  `ThreadActor` for blocking libraries. A handler that never awaits cannot be killed until it
  returns; one that awaits is cancelled by ``"kill"``.
- The default callbacks differ from GenServer's on purpose. Elixir's default `handle_call` and
  `handle_cast` raise, crashing the server (and a `handle_call` with no matching clause crashes
  it too); its default `handle_info` logs and drops. Piano's default `handle_call` fails the
  *caller* with `UnknownMessage` and logs ``actor.unknown_call``; its `handle_cast` logs
  ``actor.unknown_cast`` and drops the cast; `handle_info` logs ``actor.unexpected_info`` and
  drops it, as Elixir's. In every case the actor keeps running with its state. Why: the mistake
  is the sender's (a typo, a stale message from an older version, a console session), so the
  caller is told where it can act, and one bad message does not restart a stateful actor and
  the subtree linked to it. An override that ends in ``await super().handle_call(...)`` gets
  the same. To get OTP's behaviour, raise in your own fallback clause.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import deque
from collections.abc import Callable
from types import CoroutineType
from typing import TYPE_CHECKING, Any, ClassVar

from actors._logging import get_logger
from actors._reasons import (
    KILL,
    KILLED,
    NOPROC,
    NORMAL,
    ActorExited,
    Down,
    Exit,
    MailboxFull,
    is_normal_exit,
)
from actors._ref import CALL, CAST, INFO, NOREPLY, STOP, SYSTEM, ActorRef, Caller, MonitorRef

if TYPE_CHECKING:
    from actors._registry import Registry
    from actors._system import ActorSystem
    from actors._timers import Timer

__all__ = ["Actor", "current_actor"]

_current: contextvars.ContextVar[Actor | None] = contextvars.ContextVar("actor", default=None)

_SLICE = 0.001
"""Seconds a busy actor may keep handling messages before it yields to the loop (fairness, like
reductions): long enough that yielding (one loop iteration) costs little beside the work, short
enough that other actors wait about a millisecond. A handler that awaits yields anyway."""

_CHUNK = 64
"""Messages handled between two looks at the clock."""


def current_actor() -> Actor | None:
    """The actor whose callback is running, or None outside any actor."""
    return _current.get()


def _is(reason: object, atom: str) -> bool:
    return type(reason) is str and reason == atom


class Actor:
    """Base class of async actors. See the module documentation for the lifecycle."""

    __slots__ = (
        "__dict__",
        "__weakref__",
        "_attention",
        "_busy",
        "_deferred",
        "_exit_reason",
        "_exit_waiters",
        "_exiting",
        "_handled",
        "_inflight",
        "_lingering",
        "_links",
        "_log",
        "_loop",
        "_mailbox",
        "_monitors",
        "_name",
        "_parent",
        "_ref",
        "_registrations",
        "_stop_request",
        "_suspended",
        "_system",
        "_task",
        "_timers",
        "_tracing",
        "_wakeup",
        "_watchers",
        "trap_exits",
    )

    _system: ActorSystem
    _loop: asyncio.AbstractEventLoop
    _ref: ActorRef
    _name: str | None
    _parent: Actor | None
    _mailbox: deque[tuple[int, Any, Any]] | None
    _busy: bool
    _task: asyncio.Task[None] | None
    _wakeup: asyncio.Future[bool] | None
    _lingering: bool
    _inflight: tuple[int, Any, Any] | None
    _deferred: list[Caller] | None
    _exit_reason: object
    _exiting: bool
    _stop_request: tuple[object] | None
    _suspended: bool
    _tracing: bool | Callable[[str], object]
    _attention: bool
    _handled: int
    _links: set[ActorRef] | None
    _monitors: dict[MonitorRef, Actor] | None
    _watchers: dict[MonitorRef, Actor] | None
    _timers: set[Timer] | None
    _exit_waiters: list[asyncio.Future[object]] | None
    _registrations: list[tuple[Registry, object]] | None
    _log: Any
    trap_exits: bool

    mailbox_limit: ClassVar[int | None] = None
    """Bound on queued calls, casts and sends; past it they raise `MailboxFull` in the sender and
    are not enqueued. Runtime messages (exit signals, `Down`, timers, stop) are never refused."""

    # -- callbacks ---------------------------------------------------------------------------

    # Each callback may be written as `async def` or as a plain `def`. The defaults here are
    # plain methods returning a coroutine, so `await super().handle_call(...)` works from an
    # async override and both kinds of override type-check.

    def init(self) -> Any:
        """Set up before `spawn` returns. Raise to refuse to start; raise `Ignore` to not start."""
        return _done(None)

    def handle_call(self, message: Any, caller: Caller) -> Any:
        """Answer a call: the return value is the reply, unless it is `NOREPLY`."""
        self.log.warning("actor.unknown_call", message=_short(message))
        caller.fail(_unknown(self, message))
        return _done(NOREPLY)

    def handle_cast(self, message: Any) -> Any:
        """Handle a cast."""
        self.log.warning("actor.unknown_cast", message=_short(message))
        return _done(None)

    def handle_info(self, message: Any) -> Any:
        """Handle any other message: sends, `Down`, trapped `Exit` signals, timer messages."""
        self.log.warning("actor.unexpected_info", message=_short(message))
        return _done(None)

    def terminate(self, reason: object) -> Any:
        """Clean up before exiting. Runs on stop and after a crash, and on exit signals only
        while trapping exits (the signal from the parent, e.g. a supervisor's shutdown)."""
        return _done(None)

    def format_status(self, state: dict[str, Any]) -> dict[str, Any]:
        """Shape the state shown in introspection and crash reports (e.g. redact secrets)."""
        return state

    # -- what observers read (outside the mailbox) ---------------------------------------------

    # Both are read by other code at any moment, not through the mailbox: they must be quick,
    # synchronous and side-effect free, and may run while one of this actor's handlers is
    # suspended at an await. Read them through `actors.describe(ref)` and
    # `actors.statistics(ref)`, which also catch what they raise.

    def describe(self) -> str | None:
        """One line saying what this actor is and does now, for people: the console's
        `tree()` and the web dashboard show it after the actor's class. None (the default):
        nothing to add."""
        return None

    def statistics(self) -> object | None:
        """A frozen snapshot of this actor's counters, for programs (as Trio's
        ``statistics()``): a pipeline's `PipelineStatistics`, a stage's `StageStatistics`, a
        supervisor's `SupervisorStatistics`. None (the default): it keeps none."""
        return None

    # -- the actor's own API -------------------------------------------------------------------

    @property
    def ref(self) -> ActorRef:
        return self._ref

    @property
    def system(self) -> ActorSystem:
        return self._system

    @property
    def log(self) -> Any:
        """A structlog logger bound to this actor's name and id."""
        log = self._log
        if log is None:
            log = self._log = get_logger("actors").bind(
                actor=self._name or type(self).__name__, actor_id=self._ref.id
            )
        return log

    def stop(self, reason: object = NORMAL) -> None:
        """Stop after the current callback returns (a call's reply is sent first)."""
        self._stop_request = (reason,)
        self._attention = True

    async def spawn(
        self, actor: Actor, *, name: str | None = None, init_timeout: float | None = None
    ) -> ActorRef:
        """Start `actor` with this actor as its parent (``GenServer.start``)."""
        return await self._system._start(actor, name, self, None, init_timeout)

    async def spawn_link(
        self, actor: Actor, *, name: str | None = None, init_timeout: float | None = None
    ) -> ActorRef:
        """Start `actor` linked to this one (``GenServer.start_link``)."""
        return await self._system._start(actor, name, self, self, init_timeout)

    async def spawn_monitor(
        self, actor: Actor, *, name: str | None = None, init_timeout: float | None = None
    ) -> tuple[ActorRef, MonitorRef]:
        """Start `actor` and monitor it, atomically (``spawn_monitor``)."""
        ref = await self._system._start(actor, name, self, None, init_timeout)
        return ref, self.monitor(ref)

    def link(self, other: ActorRef) -> None:
        """Link both ways: when either exits abnormally the other gets the exit signal.

        Linking to an actor that is not alive raises `ActorExited` (reason ``"noproc"``), or
        delivers ``Exit(other, "noproc")`` while trapping exits.
        """
        target = other._actor
        if target is self:
            return
        if target._exit_reason is not None:
            if not self.trap_exits:
                raise ActorExited(other, NOPROC)
            self._deliver_runtime(Exit(other, NOPROC))
            return
        if self._links is None:
            self._links = set()
        if target._links is None:
            target._links = set()
        self._links.add(other)
        target._links.add(self._ref)

    def unlink(self, other: ActorRef) -> None:
        """Remove the link, if any, both ways."""
        if self._links is not None:
            self._links.discard(other)
        if other._actor._links is not None:
            other._actor._links.discard(self._ref)

    def monitor(self, other: ActorRef) -> MonitorRef:
        """Receive ``Down(monitor, other, reason)`` when `other` exits (at once if it is dead)."""
        mref = MonitorRef(other)
        target = other._actor
        if target._exit_reason is not None:
            self._deliver_runtime(Down(mref, other, NOPROC))
            return mref
        if self._monitors is None:
            self._monitors = {}
        if target._watchers is None:
            target._watchers = {}
        self._monitors[mref] = target
        target._watchers[mref] = self
        return mref

    def demonitor(self, monitor: MonitorRef, *, flush: bool = True) -> None:
        """Stop monitoring; with `flush`, also drop its `Down` message if already queued."""
        target = self._monitors.pop(monitor, None) if self._monitors else None
        if target is not None and target._watchers is not None:
            target._watchers.pop(monitor, None)
        mailbox = self._mailbox
        if flush and mailbox:
            kept = [
                item
                for item in mailbox
                if not (type(item[1]) is Down and item[1].monitor is monitor)
            ]
            mailbox.clear()
            mailbox.extend(kept)

    def send_after(self, delay: float, message: object, dest: ActorRef | None = None) -> Timer:
        """Send `message` to `dest` (default: this actor) after `delay` seconds.

        The timer belongs to this actor: it is cancelled when this actor exits.
        """
        from actors._timers import start_timer

        return start_timer(self, delay, message, dest or self._ref)

    # -- engine ----------------------------------------------------------------------------------

    def _bind(
        self, system: ActorSystem, ref_id: int, name: str | None, parent: Actor | None
    ) -> None:
        if getattr(self, "_system", None) is not None:
            raise RuntimeError(f"{type(self).__name__} instance was already spawned once")
        assert system._loop is not None
        self._system = system
        self._loop = system._loop
        self._ref = ActorRef(self, ref_id)
        self._name = name
        self._parent = parent
        self._mailbox = None
        self._busy = True
        self._task = None
        self._wakeup = None
        self._lingering = False
        self._inflight = None
        self._deferred = None
        self._exit_reason = None
        self._exiting = False
        self._stop_request = None
        self._suspended = False
        self._tracing = False
        self._attention = False
        self._handled = 0
        self._links = None
        self._monitors = None
        self._watchers = None
        self._timers = None
        self._exit_waiters = None
        self._registrations = None
        self._log = None
        self.trap_exits = False

    def _deliver(self, kind: int, payload: object, extra: object) -> None:
        mailbox = self._mailbox
        if mailbox is None:
            mailbox = self._mailbox = deque()
        elif self.mailbox_limit is not None and len(mailbox) >= self.mailbox_limit:
            raise MailboxFull(f"mailbox of {self._ref!r} is full ({self.mailbox_limit} messages)")
        mailbox.append((kind, payload, extra))
        if not self._busy:
            self._schedule()

    def _deliver_runtime(self, message: object) -> None:
        """Deliver an info message that is never refused (Down, Exit, timers)."""
        self._deliver_system(INFO, message, None)

    def _deliver_system(self, kind: int, payload: object, extra: object) -> None:
        if self._exit_reason is not None:
            return
        if self._mailbox is None:
            self._mailbox = deque()
        self._mailbox.append((kind, payload, extra))
        if not self._busy:
            self._schedule()

    def _take_system(self) -> tuple[int, Any, Any] | None:
        """While suspended: the first system message in the mailbox, if any."""
        mailbox = self._mailbox
        if mailbox is not None:
            for index, item in enumerate(mailbox):
                if item[0] >= SYSTEM:
                    del mailbox[index]
                    return item
        return None

    def _invoke_special(self, kind: int, payload: Any, extra: Any) -> Any:
        """Handle an item that is neither a call nor a cast."""
        if kind == INFO:
            if (
                type(payload) is Exit
                and self.trap_exits
                and self._parent is not None
                and payload.sender is self._parent._ref
            ):
                self.stop(payload.reason)
                return None
            return self.handle_info(payload)
        if kind == STOP:
            self.stop(payload)
            return None
        try:
            extra.set_result(payload(self))
        except Exception as exc:
            extra.set_exception(exc)
        return None

    def _attend(self) -> None:
        self._attention = (
            self._exiting
            or self._stop_request is not None
            or self._suspended
            or self._tracing is not False
        )

    def _schedule(self) -> None:
        """A message arrived while idle: wake the lingering task, or start one."""
        self._busy = True
        wakeup = self._wakeup
        if wakeup is not None:
            self._wakeup = None
            wakeup.set_result(True)
        else:
            self._task = self._loop.create_task(self._drain())

    async def _linger(self) -> bool:
        """Idle: wait briefly for the next message on this task. False means let the task go."""
        self._busy = False
        wakeup = self._wakeup = self._loop.create_future()
        self._system._lingering(self)
        return await wakeup  # type: ignore[no-any-return]

    async def _drain(self) -> None:
        """Handle messages until the mailbox stays empty.

        This is the hot path, written flat on purpose: the inner loop handles ordinary messages;
        one flag (`_attention`) sends it to the outer loop for every rare condition (exiting,
        stop requested, suspended, tracing).
        """
        _current.set(self)
        mailbox = self._mailbox
        while True:
            if self._attention:
                if self._exiting:
                    return
                if self._stop_request is not None:
                    await self._exit(self._stop_request[0])
                    return
                item = (
                    self._take_system()
                    if self._suspended
                    else (mailbox.popleft() if mailbox else None)
                )
                if item is None:
                    if not await self._linger():
                        self._release()
                        return
                    continue
                if self._tracing:
                    self._trace(
                        "actor.trace.in", kind=_KIND_NAMES[item[0]], message=_short(item[1])
                    )
                if not await self._handle(item):
                    return
                continue
            if not mailbox:
                # `_linger`, inlined: this runs after every burst of messages.
                self._busy = False
                wakeup = self._wakeup = self._loop.create_future()
                if not self._lingering:
                    self._system._lingering(self)
                if not await wakeup:
                    self._release()
                    return
                continue
            handled = 0
            deadline = 0.0
            result: Any
            while True:
                budget = _CHUNK
                while mailbox and budget and not self._attention:
                    kind, payload, extra = item = mailbox.popleft()
                    budget -= 1
                    try:
                        if kind == CAST:
                            result = self.handle_cast(payload)
                        elif kind == CALL:
                            result = self.handle_call(payload, extra)
                        else:
                            result = self._invoke_special(kind, payload, extra)
                        if type(result) is CoroutineType:
                            self._inflight = item
                            result = await result
                            self._inflight = None
                    except (Exception, asyncio.CancelledError) as exc:
                        self._handled += handled + _CHUNK - budget
                        if self._exit_reason is None:
                            await self._crash(exc, item)
                        return
                    if kind == CALL:
                        if result is NOREPLY:
                            self._defer(extra)
                        else:
                            fut = extra._future
                            if not fut.done():
                                fut.set_result(result)
                handled += _CHUNK - budget
                if budget:
                    break
                now = self._loop.time()
                if not deadline:
                    deadline = now + _SLICE
                elif now >= deadline:
                    break
            self._handled += handled
            if not budget:
                await asyncio.sleep(0)

    def _trace(self, event: str, **fields: str) -> None:
        """One trace line: to the sink that asked (`trace(ref, sink=...)`), else the log."""
        sink = self._tracing
        if callable(sink):
            detail = " ".join(f"{key}={value}" for key, value in fields.items())
            try:
                sink(f"{self._ref!r} {event.rpartition('.')[2]} {detail}")
            except Exception:  # a closed console: tracing ends, the actor goes on
                self._tracing = False
                self._attend()
        else:
            self.log.info(event, **fields)

    async def _handle(self, item: tuple[int, Any, Any]) -> bool:
        """Handle one message on the slow path; False if the actor is exiting."""
        self._handled += 1
        kind, payload, extra = item
        result: Any
        try:
            if kind == CAST:
                result = self.handle_cast(payload)
            elif kind == CALL:
                result = self.handle_call(payload, extra)
            else:
                result = self._invoke_special(kind, payload, extra)
            if type(result) is CoroutineType:
                self._inflight = item
                result = await result
                self._inflight = None
        except (Exception, asyncio.CancelledError) as exc:
            if self._exit_reason is None:
                await self._crash(exc, item)
            return False
        if kind == CALL:
            if result is NOREPLY:
                self._defer(extra)
            else:
                if self._tracing:
                    self._trace("actor.trace.out", reply=_short(result))
                extra.reply(result)
        return True

    def _defer(self, caller: Caller) -> None:
        """Remember a caller answered later (NOREPLY), so that it fails if the actor exits."""
        deferred = self._deferred
        if deferred is None:
            deferred = self._deferred = []
        elif len(deferred) >= 32:
            deferred[:] = [waiting for waiting in deferred if waiting.waiting]
        deferred.append(caller)

    def _release(self) -> None:
        """The drain task ends: an idle actor keeps neither a task nor an empty mailbox."""
        if self._task is asyncio.current_task(self._loop):
            self._task = None
            if not self._mailbox:
                self._mailbox = None

    async def _crash(self, exc: BaseException, item: tuple[int, Any, Any]) -> None:
        """Report the crash and exit. A crashed call fails in `_die`, after `terminate`, with
        the final exit reason (as an OTP caller learns of it from its monitor)."""
        kind, payload, _ = item
        self._inflight = item if kind == CALL else None
        self.log.error(
            "actor.crashed",
            reason=repr(exc),
            kind=_KIND_NAMES[kind],
            message=_short(payload),
            state=_short(self._status_state()),
            exc_info=exc,
        )
        await self._exit(exc)

    def _status_state(self) -> dict[str, Any]:
        try:
            return self.format_status(dict(vars(self)))
        except Exception as exc:
            return {"format_status_failed": repr(exc)}

    async def _exit(self, reason: object) -> None:
        """Run `terminate(reason)`, then exit (on the actor's task)."""
        self._exiting = self._attention = True
        if type(self).terminate is not Actor.terminate:
            try:
                result = self.terminate(reason)
                if type(result) is CoroutineType:
                    await result
            except (Exception, asyncio.CancelledError) as exc:
                if self._exit_reason is not None:
                    return
                self.log.error("actor.terminate_failed", reason=repr(exc), exc_info=exc)
                reason = exc
        self._die(reason)

    def _signal(self, sender: ActorRef | None, reason: object) -> None:
        """Receive an exit signal (from a link, or `ActorRef.exit`)."""
        if self._exit_reason is not None:
            return
        if _is(reason, KILL):
            self._die(KILLED)
        elif self.trap_exits:
            self._deliver_runtime(Exit(sender, reason))
        elif _is(reason, NORMAL):
            if sender is self._ref:
                self._die(NORMAL)
        else:
            self._die(reason)

    def _die(self, reason: object) -> None:
        """Exit now: notify links and monitors, fail pending calls, release everything."""
        if self._exit_reason is not None:
            return
        exiting = self._exiting
        self._exit_reason = reason
        self._exiting = self._attention = True
        self._busy = True
        task, self._task = self._task, None
        self._wakeup = None
        if task is not None and (not exiting or task is not asyncio.current_task(self._loop)):
            # Killed (or stopped by a signal) from anywhere, its own handler included: the
            # handler's task stops at its next await. Only `_exit`, which ends the task itself
            # right after this, keeps it.
            task.cancel()
        if self._timers:
            for timer in list(self._timers):
                timer.cancel()
        inflight, self._inflight = self._inflight, None
        if inflight is not None and inflight[0] == CALL:
            inflight[2].fail(ActorExited(self._ref, reason))
        deferred, self._deferred = self._deferred, None
        if deferred:
            for caller in deferred:
                caller.fail(ActorExited(self._ref, reason))
        mailbox, self._mailbox = self._mailbox, None
        if mailbox:
            error = ActorExited(self._ref, reason)
            for kind, _, extra in mailbox:
                if kind == CALL:
                    extra.fail(error)
                elif kind == SYSTEM and not extra.done():
                    extra.set_exception(error)
        self._system._forget(self)
        if self._registrations:
            registrations: list[tuple[Registry, object]] = self._registrations
            for registry, key in registrations:
                registry._drop(key, self._ref)
        ref = self._ref
        if self._links:
            call_soon = self._loop.call_soon
            for other in self._links:
                other_links = other._actor._links
                if other_links is not None:
                    other_links.discard(ref)
                receiver = other._actor
                if receiver.trap_exits:
                    receiver._deliver_runtime(Exit(ref, reason))
                else:
                    call_soon(receiver._signal, ref, reason)
            self._links = None
        if self._watchers:
            for mref, watcher in self._watchers.items():
                if watcher._monitors is not None:
                    watcher._monitors.pop(mref, None)
                watcher._deliver_runtime(Down(mref, ref, reason))
            self._watchers = None
        if self._monitors:
            for mref, target in self._monitors.items():
                if target._watchers is not None:
                    target._watchers.pop(mref, None)
            self._monitors = None
        if self._exit_waiters:
            for fut in self._exit_waiters:
                if not fut.done():
                    fut.set_result(reason)
            self._exit_waiters = None
        if not is_normal_exit(reason) and not isinstance(reason, BaseException):
            self.log.info("actor.exited", reason=_short(reason))


async def _done(value: Any) -> Any:
    return value


_KIND_NAMES = {CALL: "call", CAST: "cast", INFO: "info", SYSTEM: "system", STOP: "stop"}


def _short(value: object, limit: int = 500) -> str:
    try:
        text = repr(value)
    except Exception as exc:
        text = f"<unrepresentable: {exc!r}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _unknown(actor: Actor, message: object) -> Exception:
    from actors._reasons import UnknownMessage

    return UnknownMessage(f"{actor._ref!r} has no handle_call clause for {_short(message, 200)}")
