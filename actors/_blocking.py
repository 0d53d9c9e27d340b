"""Actors from synchronous code: a system on a background thread, and blocking references.

```python
with run_in_thread() as actors:                 # an event loop on a background thread
    counter = actors.spawn(Counter(), name="counter")
    counter.cast(("add", 2))
    assert counter.call("get", timeout=5.0) == 2
# leaving the block shuts the system down and joins the loop's thread
```

`run_in_thread` starts an `ActorSystem` on its own event-loop thread (through AnyIO's blocking
portal) and yields a `BlockingSystem`. `BlockingRef` is an `ActorRef` for code that runs on
another thread than the system's loop (plain synchronous code, a `ThreadActor`'s handlers): the
same operations, each blocking until the loop has done it. So `cast` and `send` return once the
message is in the mailbox (a full bounded mailbox raises `MailboxFull` here), `call` returns the
reply, `stop` returns once the actor has exited.

Guarantees:
- Operations from one thread reach the loop in the order they were made.
- A blocking operation made on the loop's own thread would deadlock, so it raises `RuntimeError`
  instead; async code uses the `ActorRef` (`BlockingRef.ref`).
- Leaving `run_in_thread` stops every actor (as `ActorSystem.shutdown` does, thread actors'
  threads included) and joins the loop's thread: no thread is left behind, unless a thread
  actor's blocking call outlasts the shutdown timeout.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

from anyio.from_thread import BlockingPortal, start_blocking_portal

from actors._actor import Actor, _current, current_actor
from actors._reasons import NORMAL, SHUTDOWN
from actors._ref import DEFAULT_CALL_TIMEOUT, ActorRef, check_timeout
from actors._system import ActorSystem, SystemStatistics

__all__ = ["BlockingRef", "BlockingSystem", "run_in_thread", "run_on_loop"]


def run_on_loop(loop: asyncio.AbstractEventLoop, fn: Callable[..., Any], *args: Any) -> Any:
    """Run ``fn(*args)`` on `loop`'s thread, await its result if it is awaitable, and return it.

    Blocks the calling thread; exceptions are raised here. It runs as the calling thread's
    current actor (a thread actor), so exit signals sent from it name that actor as sender.
    """
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        raise RuntimeError(
            "a blocking actor operation on the event loop's own thread would deadlock; "
            "await the ActorRef instead"
        )
    if loop.is_closed():
        raise RuntimeError("the actor system's event loop is closed")
    done: concurrent.futures.Future[Any] = concurrent.futures.Future()
    sender = current_actor()

    def run() -> None:
        token = _current.set(sender)
        try:
            result = fn(*args)
            if inspect.isawaitable(result):
                asyncio.ensure_future(result).add_done_callback(partial(_copy_outcome, done))
            else:
                done.set_result(result)
        except BaseException as exc:
            done.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
        finally:
            _current.reset(token)

    loop.call_soon_threadsafe(run)
    return done.result()


def _copy_outcome(done: concurrent.futures.Future[Any], fut: asyncio.Future[Any]) -> None:
    if fut.cancelled():
        done.cancel()
    elif (error := fut.exception()) is not None:
        done.set_exception(error)
    else:
        done.set_result(fut.result())


class BlockingRef:
    """An `ActorRef` for synchronous code on another thread: every operation blocks until done."""

    __slots__ = ("_loop", "ref")

    def __init__(self, ref: ActorRef) -> None:
        self.ref = ref
        """The underlying async reference, for code running on the system's event loop."""
        self._loop = ref._actor._loop

    def __repr__(self) -> str:
        return f"<BlockingRef {self.ref!r}>"

    def __hash__(self) -> int:
        return hash(self.ref)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BlockingRef) and other.ref == self.ref

    @property
    def name(self) -> str | None:
        return self.ref.name

    @property
    def id(self) -> int:
        return self.ref.id

    @property
    def alive(self) -> bool:
        return self.ref.alive

    def call(self, message: object, timeout: float | None = DEFAULT_CALL_TIMEOUT) -> Any:
        """`ActorRef.call`, blocking: the reply, or `ActorTimeout` / `ActorExited` raised here."""
        if current_actor() is self.ref._actor:
            raise RuntimeError(f"{self.ref!r} cannot call itself: it would wait for itself")
        return run_on_loop(self._loop, self.ref.call, message, timeout)

    def cast(self, message: object) -> None:
        """`ActorRef.cast`; returns once the message is in the mailbox."""
        run_on_loop(self._loop, self.ref.cast, message)

    def send(self, message: object) -> None:
        """`ActorRef.send`; returns once the message is in the mailbox."""
        run_on_loop(self._loop, self.ref.send, message)

    def stop(self, reason: object = NORMAL, timeout: float | None = DEFAULT_CALL_TIMEOUT) -> None:
        """`ActorRef.stop`: returns once the actor has exited."""
        run_on_loop(self._loop, self.ref.stop, reason, timeout)

    def exit(self, reason: object = SHUTDOWN) -> None:
        """`ActorRef.exit`: send an exit signal."""
        run_on_loop(self._loop, self.ref.exit, reason)

    def join(self, timeout: float | None = None) -> object:
        """Wait until the actor has exited and return its exit reason."""
        return run_on_loop(self._loop, self.ref.join, timeout)


class BlockingSystem:
    """What `run_in_thread` yields: an `ActorSystem` driven from synchronous code."""

    __slots__ = ("portal", "system")

    def __init__(self, system: ActorSystem, portal: BlockingPortal) -> None:
        self.system = system
        """The async system, for code running on its event loop."""
        self.portal = portal
        """AnyIO's portal to the loop's thread: ``portal.call(async_fn, *args)``."""

    def spawn(
        self, actor: Actor, *, name: str | None = None, init_timeout: float | None = None
    ) -> BlockingRef:
        """`ActorSystem.spawn`, blocking until the actor's `init` has completed."""
        ref: ActorRef = self.portal.call(
            partial(self.system.spawn, actor, name=name, init_timeout=init_timeout)
        )
        return BlockingRef(ref)

    def whereis(self, name: str) -> BlockingRef | None:
        ref = self.portal.call(self.system.whereis, name)
        return BlockingRef(ref) if ref is not None else None

    def processes(self) -> list[BlockingRef]:
        return [BlockingRef(ref) for ref in self.portal.call(self.system.processes)]

    def statistics(self) -> SystemStatistics:
        return self.portal.call(self.system.statistics)

    def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` on the loop (awaiting it if it is a coroutine function)."""
        loop = self.system._loop
        assert loop is not None, "run_in_thread entered the system"
        return run_on_loop(loop, fn, *args)


@contextmanager
def run_in_thread(
    *,
    shutdown_timeout: float = 5.0,
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
) -> Iterator[BlockingSystem]:
    """Run an `ActorSystem` on a background event-loop thread for the duration of the block.

    `loop_factory` chooses the loop (e.g. ``actors.loop_factory("uvloop")``); None: asyncio's.
    """
    check_timeout(shutdown_timeout)
    options = {"loop_factory": loop_factory} if loop_factory is not None else None
    with start_blocking_portal("asyncio", options, name="actor-system") as portal:
        system = ActorSystem()
        portal.call(system.__aenter__)
        try:
            yield BlockingSystem(system, portal)
        finally:
            portal.call(system.shutdown, shutdown_timeout)
