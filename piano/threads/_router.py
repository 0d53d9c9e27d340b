"""`Threads`: finds or starts the actor of a conversation, under a dynamic supervisor.

A surface does not hold thread actors: it asks `Threads` (registered as `THREADS`) for the
actor of a `ThreadKey` each time (`open_conversation`: the calls it answers are the typed
messages of `piano.threads._client`), and `Threads` starts one on demand — with its ids taken from
the `ThreadDirectory` (the store, in the daemon) — if none is alive. Thread actors stop when
idle and are transient children, so a crashed thread is restarted and an idle one is not.

One conversation, one actor: the `conversations` registry (unique keys) is the truth of which
actor a conversation has. Each thread actor registers itself under its key when it starts —
also when its supervisor restarts it — and its entry goes when it exits, so `Threads` keeps no
table of its own that could forget a restarted actor. A start that finds the key taken is
ignored (the thread supervisor was restarting the old actor meanwhile), and the registered
actor is used. The registry belongs to the daemon, so a restarted `Threads` finds the living
actors. `recover` opens every conversation the directory shows something unfinished in, whose
actor then closes or runs it (see `piano.agents._conversation`): the daemon's start-up recovery.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from actors import NOREPLY, Actor, ActorRef, Caller, Registry
from piano.agents import DAEMON_STOPPED, Backend, Publish, ThreadDirectory, ThreadKey
from piano.store import StoreUnavailable
from piano.threads._client import (
    NewConversation,
    OpenConversation,
    RecoverConversations,
    UnknownAgent,
    WhichConversations,
    recover_conversations,
)
from supervisors import ChildSpec, start_child

if TYPE_CHECKING:
    from piano.config import Config

__all__ = ["RECOVERY", "THREADS", "THREAD_SUPERVISOR", "NotHere", "Recovery", "Threads"]

RESTARTED = "the conversation's actor stopped unexpectedly and was restarted"
"""Why a turn is interrupted when a conversation's actor is restarted after dying mid-turn."""

THREADS = "threads"
"""The registered name of the router, `Threads`."""
THREAD_SUPERVISOR = "thread_supervisor"
"""The registered name of the DynamicSupervisor of the conversations' actors."""
RECOVERY = "recovery"
"""The registered name of the daemon's start-up `Recovery`."""


class NotHere(Exception):
    """The conversation runs on another node of the cluster (its lease is held there)."""


Claim = Callable[[str, ThreadKey], Awaitable[object]]
"""Takes the lease of a conversation's thread (`piano.cluster`) before its actor starts here;
raises `NotHere` if another node runs it, `StoreUnavailable` if the lease cannot be taken now
(the caller then gets `NotHere` saying so)."""


class Threads(Actor):
    """Route conversations to their thread actors; see the module documentation. In a
    cluster, `claim` takes a thread's lease before its actor starts on this node."""

    def __init__(
        self,
        config: Config,
        directory: ThreadDirectory,
        publish: Publish,
        backends: Mapping[str, Backend],
        clock: Callable[[], float] | None = None,
        conversations: Registry | None = None,
        claim: Claim | None = None,
    ) -> None:
        self.config = config
        self.claim = claim
        self.directory = directory
        self.publish = publish
        self.backends = dict(backends)
        self.conversations = conversations or Registry(keys="unique")
        self.clock = clock

    def describe(self) -> str:
        return f"{self.conversations.count()} live threads"

    def _live(self, key: ThreadKey) -> ActorRef | None:
        found = self.conversations.lookup(key)
        return found[0][0] if found else None

    async def handle_call(self, message: Any, caller: Caller) -> Any:
        match message:
            case OpenConversation(key=key, recovering=recovering):
                try:
                    return await self._open(key, recovering)
                except (UnknownAgent, NotHere) as exc:  # not a crash
                    caller.fail(exc)
                    return NOREPLY
            case NewConversation(key=key):
                old = self._live(key)
                if old is not None:
                    await old.stop("normal")
                return await self.directory.new_thread(key)
            case WhichConversations():
                return {
                    key: ref
                    for key, ref, _ in self.conversations.entries()
                    if isinstance(key, ThreadKey)
                }
            case RecoverConversations():
                try:
                    keys = await self.directory.unfinished_conversations()
                except StoreUnavailable as exc:  # a PostgreSQL store not reachable yet
                    self.log.warning("threads.recovery_deferred", error=str(exc))
                    return None
                for key in keys:
                    try:
                        await self._open(key)
                    except NotHere as exc:  # another node's to recover
                        self.log.info("threads.recovery_elsewhere", key=repr(key), why=str(exc))
                    except Exception as exc:  # one conversation's failure is not the others'
                        self.log.error("threads.recovery_failed", key=repr(key), error=repr(exc))
                return len(keys)
        return await super().handle_call(message, caller)

    async def _open(self, key: ThreadKey, recovering: str | None = None) -> ActorRef:
        ref = self._live(key)
        if ref is not None:
            return ref
        agent = self.config.agents.get(key.agent)
        if agent is None:
            raise UnknownAgent(f"no agent named {key.agent!r}")
        backend = self.backends.get(agent.backend)
        if backend is None:
            raise RuntimeError(
                f"agent {key.agent!r} needs the {agent.backend!r} backend, which is not running"
            )
        thread_id, _ = await self.directory.thread_for(key)
        if self.claim is not None:
            try:
                await self.claim(thread_id, key)
            except StoreUnavailable as exc:
                raise NotHere(f"this node cannot take the conversation now: {exc}") from None
        options: dict[str, Any] = {} if self.clock is None else {"clock": self.clock}
        starts = itertools.count()

        def start() -> Actor:
            """The conversation's actor; a restart recovers what its predecessor left."""
            first = next(starts) == 0
            return backend.conversation(
                thread_id,
                key,
                agent,
                publish=self.publish,
                directory=self.directory,
                conversations=self.conversations,
                recovering=(recovering or DAEMON_STOPPED) if first else RESTARTED,
                **options,
            )

        spec = ChildSpec(("thread", thread_id), start=start, restart="transient", shutdown=10.0)
        supervisor = self.system.whereis(THREAD_SUPERVISOR)
        if supervisor is None:
            raise RuntimeError("the thread supervisor is not running")
        await start_child(supervisor, spec)
        ref = self._live(key)  # this start's, or the restarted one's if it won (start ignored)
        if ref is None:
            raise RuntimeError(f"the actor of {key} stopped as it started")
        return ref


class Recovery(Actor):
    """The daemon's start-up recovery, a one-shot step placed after the surfaces (so they have
    subscribed to their threads and show what it does): it has `Threads` open every
    conversation left with unfinished interactions, whose actors close the turns a stopped or
    killed daemon left running and run the messages it accepted. It then stays, idle, so that
    `describe` tells what it did; it runs again whenever the tree restarts it. While the store
    cannot be reached (a PostgreSQL server down at start) it tries again, after 1 s, then
    doubling up to `RETRY_CAP` seconds."""

    RETRY_CAP = 30.0

    def __init__(self) -> None:
        self.recovered: int | None = None
        self.retry = 1.0

    def describe(self) -> str:
        if self.recovered is None:
            return "recovering conversations left unfinished"
        return f"recovered {self.recovered} conversations left unfinished"

    def init(self) -> None:
        self.ref.send("recover")

    async def handle_info(self, message: Any) -> Any:
        if message == "recover":
            threads = self.system.whereis(THREADS)
            if threads is None:
                raise RuntimeError("the thread router is not running")
            recovered = await recover_conversations(threads)
            if recovered is None:
                self.send_after(self.retry, "recover")
                self.retry = min(self.retry * 2, self.RETRY_CAP)
                return None
            self.recovered = recovered
            self.log.info("threads.recovered", conversations=self.recovered)
            return None
        return await super().handle_info(message)
