"""Thread actors: actors whose callbacks run on a thread of their own, for blocking libraries.

A `ThreadActor` is an `Actor` whose callbacks are plain synchronous methods. They run one at a time,
in mailbox order, on the actor's own thread (a pykka `ThreadingActor`), so they may block (selenium,
sqlite3, a blocking SDK) without stalling the event loop. Everything else is an ordinary actor on
the loop: the `ActorRef`, links, monitors, exit signals, names, timers, introspection, supervision.

```python
class Browser(ThreadActor):
    def init(self) -> None:                        # on the thread; spawn returns after it
        self.driver = webdriver.Chrome()

    def handle_call(self, message, caller):        # blocks this actor's thread only
        match message:
            case ("title", url):
                self.driver.get(url)
                return self.driver.title
        return super().handle_call(message, caller)

    def terminate(self, reason) -> None:           # on the thread, before it ends
        self.driver.quit()

ref = await system.spawn(Browser())
title = await ref.call(("title", "http://127.0.0.1:8000/"), timeout=30)
```

How it works: each callback a subclass defines is wrapped when the class is created. Called by
the runtime on the event loop, the wrapper hands the call to the actor's thread and awaits its
result there, so the loop side handles one message at a time exactly as an async actor awaiting
its handler does. Called on the actor's own thread (``super().handle_call(...)``), it is the plain
method. Async callbacks are refused when the class is created.

Guarantees:
- `init` runs on the new thread before `spawn` returns; if it raises, `spawn` raises
  `StartFailed` and the thread ends. All callbacks run on that one thread (thread-bound objects
  such as a sqlite3 connection are safe) and the state lives in attributes, as for any actor;
  introspection reads it between callbacks, while the thread is idle.
- A handler that raises crashes the actor as an async handler does: crash report, `terminate` (on
  the thread), pending calls fail with `ActorExited`, links and monitors get the reason.
- Stopping runs `terminate` on the thread, and `ActorRef.stop` returns once the thread has ended.
- An exit signal or ``"kill"`` marks the actor dead at once (links, monitors, pending calls), but
  cannot interrupt Python code running on a thread: the thread finishes its current callback and
  then ends, without `terminate`. `ActorSystem.shutdown` waits for such threads until its timeout.
- From the thread, talk to other actors through `BlockingRef(ref)`. `link`, `unlink`, `monitor`,
  `demonitor`, `send_after` and `stop` work from the thread as they are; for anything else on the
  loop (e.g. `spawn_link`), use ``self.on_loop(self.spawn_link, child)``. A `Caller` kept for a
  later reply may be answered from the thread.
- If the pykka actor is stopped behind the runtime's back (``pykka.ActorRegistry.stop_all()``),
  the actor exits with `PykkaActorStopped`.

To supervise an existing pykka actor instead, wrap its reference in a `PykkaActorProxy`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import threading
from collections.abc import Callable
from typing import Any, Final

import pykka

from actors._actor import Actor, _current, _short, _unknown
from actors._blocking import run_on_loop
from actors._reasons import ActorError
from actors._ref import NOREPLY, ActorRef, Caller, MonitorRef
from actors._system import ActorSystem
from actors._timers import Timer

__all__ = ["PykkaActorStopped", "ThreadActor"]

_CALLBACKS: Final = ("init", "handle_call", "handle_cast", "handle_info", "terminate")


class PykkaActorStopped(ActorError):
    """Exit reason of an actor whose pykka actor stopped without the runtime asking for it.

    The pykka actor stopped itself, crashed inside pykka, or ``pykka.ActorRegistry.stop_all()``
    stopped it; pykka does not tell which. `pykka_actor` names it.
    """

    def __init__(self, pykka_actor: str) -> None:
        super().__init__(pykka_actor)
        self.pykka_actor = pykka_actor

    def __str__(self) -> str:
        return f"pykka actor {self.pykka_actor} stopped on its own"


def post(loop: asyncio.AbstractEventLoop, fn: Callable[..., object], *args: Any) -> None:
    """From another thread: run ``fn(*args)`` on `loop` soon; dropped if the loop is closed."""
    with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
        loop.call_soon_threadsafe(fn, *args)


def _settle(fut: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if fut.done():
        return
    if error is None:
        fut.set_result(result)
    else:
        fut.set_exception(error)


class _Job:
    """One callback to run on the actor's thread; its outcome goes back to a loop future."""

    __slots__ = ("args", "fn", "future", "loop")

    def __init__(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        future: asyncio.Future[Any],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.fn = fn
        self.args = args
        self.future = future
        self.loop = loop

    def run(self) -> None:
        try:
            result = self.fn(*self.args)
        except Exception as exc:
            post(self.loop, _settle, self.future, None, exc)
        except BaseException as exc:
            # SystemExit or KeyboardInterrupt on this thread: a crash of this actor, never a
            # reason to stop the event loop (or, through pykka, every pykka actor).
            error = RuntimeError(f"{exc!r} raised on an actor's thread")
            error.__cause__ = exc
            post(self.loop, _settle, self.future, None, error)
        else:
            post(self.loop, _settle, self.future, result, None)


class _Host(pykka.ThreadingActor):
    """The pykka actor that owns a ThreadActor's thread and runs its jobs in order."""

    def __init__(self, owner: ThreadActor) -> None:
        super().__init__()
        self._owner = owner

    def _start_actor_loop(self) -> None:
        owner = self._owner
        thread = threading.Thread(
            target=self._run,
            name=f"actor:{type(owner).__name__}#{owner._ref.id}",
            daemon=self.use_daemon_thread,
        )
        owner._thread = thread
        thread.start()

    def _run(self) -> None:
        owner = self._owner
        owner._thread_ident = threading.get_ident()
        _current.set(owner)
        try:
            self._actor_loop()
        finally:
            post(owner._loop, owner._thread_ended)

    def on_receive(self, message: Any) -> None:
        message.run()


class _ThreadCaller(Caller):
    """A `Caller` that may be answered from the actor's thread."""

    __slots__ = ("_loop",)

    def __init__(self, future: asyncio.Future[Any], loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(future)
        self._loop = loop

    def reply(self, value: object) -> None:
        post(self._loop, Caller.reply, self, value)

    def fail(self, error: BaseException) -> None:
        post(self._loop, Caller.fail, self, error)


class ThreadActor(Actor):
    """Base class of actors whose synchronous callbacks run on their own thread.

    See the module documentation. Override `init`, `handle_call`, `handle_cast`, `handle_info`
    and `terminate` as plain methods; `format_status` runs on the loop, as for any actor.
    """

    __slots__ = ("_ended", "_host", "_thread", "_thread_ident")

    _ended: asyncio.Future[None] | None
    _host: pykka.ActorRef[_Host] | None
    _thread: threading.Thread | None
    _thread_ident: int | None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _wrap_callbacks(cls)

    # -- callbacks (on the actor's thread) ----------------------------------------------------

    def init(self) -> Any:
        """Set up on the thread before `spawn` returns. Raise to refuse to start."""

    def handle_call(self, message: Any, caller: Caller) -> Any:
        """Answer a call: the return value is the reply, unless it is `NOREPLY`."""
        self.log.warning("actor.unknown_call", message=_short(message))
        caller.fail(_unknown(self, message))
        return NOREPLY

    def handle_cast(self, message: Any) -> Any:
        """Handle a cast."""
        self.log.warning("actor.unknown_cast", message=_short(message))

    def handle_info(self, message: Any) -> Any:
        """Handle any other message: sends, `Down`, trapped `Exit` signals, timer messages."""
        self.log.warning("actor.unexpected_info", message=_short(message))

    def terminate(self, reason: object) -> Any:
        """Clean up on the thread before it ends (see `Actor.terminate` for when it runs)."""

    # -- the actor's own API, usable from its thread ------------------------------------------

    @property
    def thread(self) -> threading.Thread | None:
        """The actor's thread (None before `init`)."""
        return self._thread

    def on_loop(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` on the event loop (awaited if it is a coroutine) and return its result.

        For runtime operations the thread cannot do itself, e.g.
        ``child = self.on_loop(self.spawn_link, Worker())``. Blocks this actor's thread.
        """
        return run_on_loop(self._loop, fn, *args)

    def link(self, other: ActorRef) -> None:
        if self._is_own_thread():
            return self.on_loop(super().link, other)  # type: ignore[no-any-return]
        return super().link(other)

    def unlink(self, other: ActorRef) -> None:
        if self._is_own_thread():
            return self.on_loop(super().unlink, other)  # type: ignore[no-any-return]
        return super().unlink(other)

    def monitor(self, other: ActorRef) -> MonitorRef:
        if self._is_own_thread():
            return self.on_loop(super().monitor, other)  # type: ignore[no-any-return]
        return super().monitor(other)

    def demonitor(self, monitor: MonitorRef, *, flush: bool = True) -> None:
        if self._is_own_thread():
            demonitor = functools.partial(super().demonitor, flush=flush)
            return self.on_loop(demonitor, monitor)  # type: ignore[no-any-return]
        return super().demonitor(monitor, flush=flush)

    def send_after(self, delay: float, message: object, dest: ActorRef | None = None) -> Timer:
        if self._is_own_thread():
            return self.on_loop(super().send_after, delay, message, dest)  # type: ignore[no-any-return]
        return super().send_after(delay, message, dest)

    # -- engine (on the event loop) -----------------------------------------------------------

    def _is_own_thread(self) -> bool:
        return threading.get_ident() == self._thread_ident

    def _bind(
        self, system: ActorSystem, ref_id: int, name: str | None, parent: Actor | None
    ) -> None:
        super()._bind(system, ref_id, name, parent)
        self._ended = None
        self._host = None
        self._thread = None
        self._thread_ident = None

    async def _start_thread(self, init: Callable[..., Any]) -> None:
        ended: asyncio.Future[None] = self._loop.create_future()
        self._ended = ended
        background = self._system._background
        background.add(ended)
        ended.add_done_callback(background.discard)
        self._host = _Host.start(self)
        await self._run_on_thread(init)

    async def _run_on_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        host = self._host
        assert host is not None, "the thread is started by init"
        fut: asyncio.Future[Any] = self._loop.create_future()
        try:
            host.tell(_Job(fn, (self, *args), fut, self._loop))
        except pykka.ActorDeadError:
            raise PykkaActorStopped(str(host)) from None
        return await fut

    async def _terminate_on_thread(self, terminate: Callable[..., Any], reason: object) -> None:
        try:
            await self._run_on_thread(terminate, reason)
        finally:
            self._stop_thread()
        if self._ended is not None:
            await asyncio.shield(self._ended)

    def _stop_thread(self) -> None:
        """Ask the thread to end once its current callback returns (pykka handles the inbox
        in order, and the loop side sends no job while one is running)."""
        if self._host is not None:
            self._host.stop(block=False)

    def _die(self, reason: object) -> None:
        super()._die(reason)
        self._stop_thread()

    def _thread_ended(self) -> None:
        thread = self._thread
        if thread is not None:
            thread.join()  # it has posted this as its last act: joining takes an instant
        if self._ended is not None and not self._ended.done():
            self._ended.set_result(None)
        if self._exit_reason is None and not self._exiting:
            reason = PykkaActorStopped(str(self._host))
            self.log.warning("actor.thread_stopped", reason=str(reason))
            self._die(reason)


def _wrap_callbacks(cls: type[ThreadActor]) -> None:
    """Make the callbacks `cls` defines run on the actor's thread when the runtime calls them."""
    for name in _CALLBACKS:
        fn = cls.__dict__.get(name)
        if fn is None:
            continue
        if not inspect.isfunction(fn) or inspect.iscoroutinefunction(fn):
            raise TypeError(
                f"{cls.__qualname__}.{name} must be a plain method: a ThreadActor's callbacks "
                "run on its thread (use Actor for async callbacks)"
            )
        setattr(cls, name, _DISPATCHERS[name](fn))


def _dispatch_init(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def init(self: ThreadActor) -> Any:
        if self._is_own_thread():
            return fn(self)
        return self._start_thread(fn)

    return init


def _dispatch_call(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def handle_call(self: ThreadActor, message: Any, caller: Caller) -> Any:
        if self._is_own_thread():
            return fn(self, message, caller)
        return self._run_on_thread(fn, message, _ThreadCaller(caller._future, self._loop))

    return handle_call


def _dispatch_message(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def handle(self: ThreadActor, message: Any) -> Any:
        if self._is_own_thread():
            return fn(self, message)
        return self._run_on_thread(fn, message)

    return handle


def _dispatch_terminate(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def terminate(self: ThreadActor, reason: object) -> Any:
        if self._is_own_thread():
            return fn(self, reason)
        return self._terminate_on_thread(fn, reason)

    return terminate


_DISPATCHERS: Final[dict[str, Callable[[Callable[..., Any]], Callable[..., Any]]]] = {
    "init": _dispatch_init,
    "handle_call": _dispatch_call,
    "handle_cast": _dispatch_message,
    "handle_info": _dispatch_message,
    "terminate": _dispatch_terminate,
}

_wrap_callbacks(ThreadActor)
