"""Timers: deliver a message to an actor after a delay (``Process.send_after``).

A timer belongs to the actor that started it and is cancelled when that actor exits, so a
dead actor never leaves callbacks behind on the event loop. The message arrives in `handle_info`
of the destination, after the messages already in its mailbox.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from actors._ref import ActorRef, check_timeout

if TYPE_CHECKING:
    from actors._actor import Actor

__all__ = ["Timer"]


class Timer:
    """A pending `send_after`. `cancel()` it to stop the message."""

    __slots__ = ("_handle", "_owner", "dest", "message")

    def __init__(self, owner: Actor, dest: ActorRef, message: object) -> None:
        self._owner = owner
        self.dest = dest
        self.message = message
        self._handle: asyncio.TimerHandle | None = None

    def __repr__(self) -> str:
        state = "pending" if self.pending else "done"
        return f"<Timer {state} {self.message!r} -> {self.dest!r}>"

    @property
    def pending(self) -> bool:
        return self._handle is not None

    def remaining(self) -> float:
        """Seconds until it fires; 0.0 once it has fired or was cancelled."""
        if self._handle is None:
            return 0.0
        return max(0.0, self._handle.when() - self._owner._loop.time())

    def cancel(self) -> bool:
        """Cancel it. True if it was still pending, i.e. the message will not be sent."""
        handle, self._handle = self._handle, None
        if handle is None:
            return False
        handle.cancel()
        timers = self._owner._timers
        if timers is not None:
            timers.discard(self)
        return True

    def _fire(self) -> None:
        self._handle = None
        timers = self._owner._timers
        if timers is not None:
            timers.discard(self)
        self.dest._actor._deliver_runtime(self.message)


def start_timer(owner: Actor, delay: float, message: object, dest: ActorRef) -> Timer:
    if delay != 0:
        check_timeout(delay)
    if owner._exit_reason is not None:
        raise RuntimeError(f"{owner._ref!r} has exited; it cannot start timers")
    timer = Timer(owner, dest, message)
    timer._handle = owner._loop.call_later(delay, timer._fire)
    if owner._timers is None:
        owner._timers = set()
    owner._timers.add(timer)
    return timer
