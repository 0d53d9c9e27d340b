"""Adopt an existing pykka actor, so that it can be linked, monitored and supervised.

```python
pykka_ref = Player.start()                          # a pykka actor started elsewhere
ref = await system.spawn(PykkaActorProxy(pykka_ref))
await ref.call({"command": "play"})                  # -> pykka_ref.ask(...)
ref.cast({"command": "pause"})                      # -> pykka_ref.tell(...)
```

A `PykkaActorProxy` is an ordinary actor that forwards every call to the pykka actor as an `ask`,
and every cast and plain message as a `tell`, in mailbox order. A supervisor that should restart
the pykka actor starts a fresh one in its child factory:
``lambda: PykkaActorProxy(Player.start())``.

Guarantees:
- The proxy owns the pykka actor: when the proxy exits, for any reason, the pykka actor is asked
  to stop (after the messages already in its inbox); `ActorRef.stop` on the proxy returns once
  pykka reports it stopped.
- When the pykka actor stops on its own (it stopped itself or crashed; pykka does not say which),
  the proxy exits with reason `PykkaActorStopped`: links and monitors see it, and a supervisor
  restarts it as it would restart a crash.
- An exception raised by the pykka actor while answering an ask fails that call only, with the
  exception, and both actors keep running: that is pykka's semantics for ``ask``.
- Calls pending when the proxy exits fail with `ActorExited`.
- One thread per proxy waits for the pykka actor to stop (pykka offers no other notification);
  it ends when the pykka actor stops, and `ActorSystem.shutdown` waits for it.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from typing import Any

import pykka
from pykka._envelope import Envelope

from actors._actor import Actor
from actors._reasons import ActorExited
from actors._ref import NOREPLY, Caller
from actors._system import ActorSystem
from actors._thread import PykkaActorStopped, post

__all__ = ["PykkaActorProxy"]


class _Reply(pykka.Future[Any]):
    """The pykka future an ask is answered through; it hands the answer to the loop."""

    def __init__(self, proxy: PykkaActorProxy, caller: Caller) -> None:
        super().__init__()
        self._proxy = proxy
        self._caller = caller

    def set(self, value: Any = None) -> None:
        post(self._proxy._loop, self._proxy._answer, self._caller, value, None)

    def set_exception(self, exc_info: Any = None) -> None:
        error = (exc_info or sys.exc_info())[1]
        post(self._proxy._loop, self._proxy._answer, self._caller, None, error)


def _watch(
    stopped: threading.Event, loop: asyncio.AbstractEventLoop, proxy: PykkaActorProxy
) -> None:
    stopped.wait()
    post(loop, proxy._pykka_stopped)


class PykkaActorProxy(Actor):
    """An actor standing for a running pykka actor; see the module documentation."""

    __slots__ = ("_pending", "_stopped", "_watcher")

    _pending: set[Caller]
    _stopped: asyncio.Future[None] | None
    _watcher: threading.Thread | None

    def __init__(self, pykka_ref: pykka.ActorRef[Any]) -> None:
        self.pykka_ref = pykka_ref

    async def init(self) -> None:
        pykka_ref = self.pykka_ref
        if not pykka_ref.is_alive():
            raise PykkaActorStopped(str(pykka_ref))
        stopped: asyncio.Future[None] = self._loop.create_future()
        self._stopped = stopped
        background = self._system._background
        background.add(stopped)
        stopped.add_done_callback(background.discard)
        watcher = self._watcher = threading.Thread(
            target=_watch,
            args=(pykka_ref.actor_stopped, self._loop, self),
            name=f"pykka-watch:{pykka_ref.actor_class.__name__}#{self._ref.id}",
            daemon=True,
        )
        watcher.start()

    def handle_call(self, message: Any, caller: Caller) -> Any:
        if not self.pykka_ref.is_alive():
            self._pykka_stopped()
            caller.fail(ActorExited(self._ref, self._exit_reason or self._stop_reason()))
            return NOREPLY
        self._pending.add(caller)
        self.pykka_ref.actor_inbox.put(Envelope(message, reply_to=_Reply(self, caller)))
        return NOREPLY

    def handle_cast(self, message: Any) -> Any:  # plain functions: cheaper than coroutines
        self._tell(message)

    def handle_info(self, message: Any) -> Any:
        self._tell(message)

    async def terminate(self, reason: object) -> None:
        self.pykka_ref.stop(block=False)
        if self._stopped is not None:
            await asyncio.shield(self._stopped)

    # -- engine ---------------------------------------------------------------------------------

    def _tell(self, message: Any) -> None:
        try:
            self.pykka_ref.tell(message)
        except pykka.ActorDeadError:
            self._pykka_stopped()

    def _answer(self, caller: Caller, value: Any, error: BaseException | None) -> None:
        self._pending.discard(caller)
        if isinstance(error, pykka.ActorDeadError):
            caller.fail(ActorExited(self._ref, self._exit_reason or self._stop_reason()))
        elif error is not None:
            caller.fail(error)
        else:
            caller.reply(value)

    def _stop_reason(self) -> PykkaActorStopped:
        return PykkaActorStopped(str(self.pykka_ref))

    def _pykka_stopped(self) -> None:
        """The pykka actor has stopped (on the loop; from the watcher, or noticed in passing)."""
        watcher = self._watcher
        if watcher is not None and not self.pykka_ref.is_alive():
            watcher.join()  # it posted this as its last act: joining takes an instant
            self._watcher = None
        if self._stopped is not None and not self._stopped.done():
            self._stopped.set_result(None)
        if self._exit_reason is None and not self._exiting:
            reason = self._stop_reason()
            self.log.warning("actor.pykka_actor_stopped", reason=str(reason))
            self._die(reason)

    def _bind(
        self, system: ActorSystem, ref_id: int, name: str | None, parent: Actor | None
    ) -> None:
        super()._bind(system, ref_id, name, parent)
        self._pending = set()
        self._stopped = None
        self._watcher = None

    def _die(self, reason: object) -> None:
        super()._die(reason)
        if self._pending:
            error = ActorExited(self._ref, reason)
            for caller in self._pending:
                caller.fail(error)
            self._pending.clear()
        if self._stopped is not None:
            self.pykka_ref.stop(block=False)
