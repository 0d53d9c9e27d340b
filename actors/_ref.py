"""Actor references (the pid), monitor references, and the caller handle given to `handle_call`.

An `ActorRef` is the only way to talk to an actor. It stays valid after the actor exits: calling
through it then raises `ActorExited` with the actor's exit reason, and casts and sends to it are
dropped silently, as sends to a dead pid are in Erlang.

A call carries a per-call future: the reply resolves it, a timeout fails it with `ActorTimeout`,
and the actor's exit fails it with `ActorExited`, whichever happens first. Because the future is
private to the call (like an OTP process alias), a reply that arrives after a timeout is dropped;
it is never delivered anywhere as a stray message.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections import deque
from typing import TYPE_CHECKING, Any, Final

from actors._reasons import NORMAL, SHUTDOWN, ActorExited, ActorTimeout, MailboxFull

if TYPE_CHECKING:
    from actors._actor import Actor

__all__ = ["NOREPLY", "ActorRef", "Caller", "MonitorRef"]

# Mailbox item kinds. Items are (kind, payload, extra) tuples.
CALL: Final = 0
CAST: Final = 1
INFO: Final = 2
SYSTEM: Final = 3
STOP: Final = 4

DEFAULT_CALL_TIMEOUT: Final = 5.0


class _NoReply:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NOREPLY"


NOREPLY: Final = _NoReply()
"""Return this from `handle_call` to reply later through `Caller.reply` (``{:noreply, state}``)."""


def check_timeout(timeout: float | None) -> None:
    """Refuse timeouts that are not a positive number of seconds (None means wait forever)."""
    if timeout is None:
        return
    if type(timeout) not in (int, float) or not timeout > 0 or math.isinf(timeout):
        raise ValueError(
            f"timeout must be a positive, finite number of seconds or None, got {timeout!r}"
        )


class Deadlines:
    """Timeouts of pending calls that share one timeout value, without a timer per call.

    Calls with the same timeout expire in the order they were made, so a FIFO of (deadline,
    future) with one armed timer for its head is enough. Entries whose call has completed are
    dropped lazily from the head, so in the steady state the queue holds only pending calls.
    """

    __slots__ = ("_handle", "_loop", "_message", "_queue", "timeout")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        timeout: float,
        message: str = "call to {ref!r} timed out after {timeout}s",
    ) -> None:
        self._loop = loop
        self.timeout = timeout
        self._message = message
        self._queue: deque[tuple[float, asyncio.Future[Any], ActorRef]] = deque()
        self._handle: asyncio.TimerHandle | None = None

    def add(self, fut: asyncio.Future[Any], ref: ActorRef) -> None:
        queue = self._queue
        while queue and queue[0][1].done():
            queue.popleft()
        deadline = self._loop.time() + self.timeout
        queue.append((deadline, fut, ref))
        if self._handle is None:
            self._handle = self._loop.call_at(deadline, self._expire)

    def _expire(self) -> None:
        self._handle = None
        queue = self._queue
        now = self._loop.time()
        while queue:
            deadline, fut, ref = queue[0]
            if not fut.done():
                if deadline > now:
                    self._handle = self._loop.call_at(deadline, self._expire)
                    return
                message = self._message.format(ref=ref, timeout=self.timeout)
                fut.set_exception(ActorTimeout(message))
            queue.popleft()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


class Caller:
    """Who is waiting for the reply to a call. `handle_call` receives it as its second argument."""

    __slots__ = ("_future",)

    def __init__(self, future: asyncio.Future[Any]) -> None:
        self._future = future

    def reply(self, value: object) -> None:
        """Send the reply. Only the first reply counts; one after the caller gave up is dropped."""
        if not self._future.done():
            self._future.set_result(value)

    def fail(self, error: BaseException) -> None:
        """Make the call raise `error` in the caller, without crashing this actor."""
        if not self._future.done():
            self._future.set_exception(error)

    @property
    def waiting(self) -> bool:
        """False once the caller has its answer or has given up (timed out or was cancelled)."""
        return not self._future.done()


_monitor_ids = itertools.count(1)


class MonitorRef:
    """Identifies one monitor; `Down.monitor` carries it, `Actor.demonitor` takes it."""

    __slots__ = ("_id", "target")

    def __init__(self, target: ActorRef) -> None:
        self._id = next(_monitor_ids)
        self.target = target

    def __repr__(self) -> str:
        return f"<MonitorRef #{self._id} on {self.target!r}>"


class ActorRef:
    """A reference to an actor: call, cast, send, stop, exit signals. Hashable, comparable."""

    __slots__ = ("_actor", "id")

    def __init__(self, actor: Actor, actor_id: int) -> None:
        self._actor = actor
        self.id = actor_id

    def __repr__(self) -> str:
        actor = self._actor
        name = f" {actor._name!r}" if actor._name is not None else ""
        return f"<ActorRef {type(actor).__name__}#{self.id}{name}>"

    def __hash__(self) -> int:
        return self.id

    def __eq__(self, other: object) -> bool:
        return self is other or (isinstance(other, ActorRef) and other._actor is self._actor)

    @property
    def name(self) -> str | None:
        """The registered name, if any."""
        return self._actor._name

    @property
    def alive(self) -> bool:
        return self._actor._exit_reason is None

    def call(
        self, message: object, timeout: float | None = DEFAULT_CALL_TIMEOUT
    ) -> asyncio.Future[Any]:
        """Send `message` to `handle_call`; await the result for the reply (``GenServer.call``).

        The awaitable raises `ActorTimeout` after `timeout` seconds (None waits forever), or
        `ActorExited` if the actor exits before replying. `ActorExited` (not alive) and
        `MailboxFull` (bounded mailbox full) are raised at once, before anything is sent.
        """
        actor = self._actor
        if actor._exit_reason is not None:
            raise ActorExited(self, actor._exit_reason)
        fut = actor._loop.create_future()
        if timeout is not None:
            try:
                deadlines = actor._system._deadlines[timeout]
            except (KeyError, TypeError):
                check_timeout(timeout)
                deadlines = actor._system._deadline_queue(timeout)
            deadlines.add(fut, self)
        mailbox = actor._mailbox
        if mailbox is None:
            mailbox = actor._mailbox = deque()
        elif actor.mailbox_limit is not None and len(mailbox) >= actor.mailbox_limit:
            fut.cancel()
            raise MailboxFull(f"mailbox of {self!r} is full ({actor.mailbox_limit} messages)")
        mailbox.append((CALL, message, Caller(fut)))
        if not actor._busy:
            actor._schedule()
        return fut

    def cast(self, message: object) -> None:
        """Send `message` to `handle_cast` without waiting (``GenServer.cast``)."""
        actor = self._actor
        if actor._exit_reason is not None:
            return
        mailbox = actor._mailbox
        if mailbox is None:
            mailbox = actor._mailbox = deque()
        elif actor.mailbox_limit is not None and len(mailbox) >= actor.mailbox_limit:
            raise MailboxFull(f"mailbox of {self!r} is full ({actor.mailbox_limit} messages)")
        mailbox.append((CAST, message, None))
        if not actor._busy:
            actor._schedule()

    def send(self, message: object) -> None:
        """Send a plain message, handled by `handle_info` (``send/2``)."""
        actor = self._actor
        if actor._exit_reason is None:
            actor._deliver(INFO, message, None)

    async def stop(
        self, reason: object = NORMAL, timeout: float | None = DEFAULT_CALL_TIMEOUT
    ) -> None:
        """Stop the actor after the messages already in its mailbox (``GenServer.stop``).

        Its `terminate(reason)` runs. Raises `ActorExited` if it is not alive, `ActorTimeout` if
        it has not exited after `timeout` seconds (it keeps running then, as in OTP).
        """
        actor = self._actor
        if actor._exit_reason is not None:
            raise ActorExited(self, actor._exit_reason)
        exited = self._exited(timeout)
        actor._deliver_system(STOP, reason, None)
        try:
            await exited
        except ActorTimeout:
            raise ActorTimeout(f"{self!r} did not stop within {timeout}s") from None

    def exit(self, reason: object = SHUTDOWN) -> None:
        """Send an exit signal (``Process.exit/2``); the sender is the current actor, if any.

        ``"kill"`` always ends the actor with reason ``"killed"``. Any other reason is turned into
        an `Exit` message if the actor traps exits; otherwise ``"normal"`` is ignored and every
        other reason ends the actor at once, without `terminate`.
        """
        from actors._actor import current_actor

        sender = current_actor()
        self._actor._signal(sender._ref if sender is not None else None, reason)

    async def join(self, timeout: float | None = None) -> object:
        """Wait until the actor has exited and return its exit reason.

        Raises `ActorTimeout` (a `TimeoutError`) if it is still alive after `timeout` seconds.
        """
        actor = self._actor
        if actor._exit_reason is not None:
            return actor._exit_reason
        return await self._exited(timeout)

    def _exited(self, timeout: float | None) -> asyncio.Future[object]:
        """A future resolved with the exit reason, failed with `ActorTimeout` after `timeout`.

        Timeouts share the per-timeout deadline queues of calls rather than a timer each.
        """
        actor = self._actor
        deadlines = None
        if timeout is not None:
            try:
                deadlines = actor._system._exit_deadlines[timeout]
            except (KeyError, TypeError):
                check_timeout(timeout)
                deadlines = actor._system._deadline_queue(timeout, exits=True)
        fut: asyncio.Future[object] = actor._loop.create_future()
        if deadlines is not None:
            deadlines.add(fut, self)
        if actor._exit_waiters is None:
            actor._exit_waiters = []
        actor._exit_waiters.append(fut)
        return fut
