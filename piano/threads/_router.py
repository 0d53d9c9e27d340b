"""`Threads`: finds or starts the actor of a conversation, under a dynamic supervisor.

A surface does not hold thread actors: it asks `Threads` (registered as ``"threads"``) for the
actor of a `ThreadKey` each time, and `Threads` starts one on demand — with its ids taken from
the `ThreadDirectory` (the store, in the daemon) — if none is alive. Thread actors stop when
idle and are transient children, so a crashed thread is restarted and an idle one is not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from actors import Actor, ActorRef, Caller, Down, Registry
from piano.threads._directory import ThreadDirectory, ThreadKey
from piano.threads._thread import ConversationThread, Publish
from schemas.events import Interaction
from supervisors import ChildSpec, start_child

if TYPE_CHECKING:
    from piano.agents.openai import OpenAIBackend
    from piano.config import Config

__all__ = ["THREADS", "THREAD_SUPERVISOR", "Threads", "send_message"]

THREADS = "threads"
THREAD_SUPERVISOR = "thread_supervisor"


class Threads(Actor):
    """Route conversations to their thread actors; see the module documentation."""

    def __init__(
        self,
        config: Config,
        directory: ThreadDirectory,
        publish: Publish,
        sessions: Registry,
        clock: Callable[[], float] | None = None,
        codex_config: Callable[[str], dict[str, Any]] | None = None,
        openai: OpenAIBackend | None = None,
    ) -> None:
        self.config = config
        self.directory = directory
        self.publish = publish
        self.sessions = sessions
        self.live: dict[ThreadKey, ActorRef] = {}
        self.clock = clock
        self.codex_config = codex_config
        self.openai = openai

    def describe(self) -> str:
        return f"{len(self.live)} live threads"

    async def handle_call(self, message: Any, caller: Caller) -> Any:
        match message:
            case ("open", ThreadKey() as key):
                return await self._open(key)
            case ("new", ThreadKey() as key):
                old = self.live.pop(key, None)
                if old is not None and old.alive:
                    await old.stop("normal")
                return await self.directory.new_thread(key)
            case "live":
                return dict(self.live)
        return await super().handle_call(message, caller)

    async def _open(self, key: ThreadKey) -> ActorRef:
        ref = self.live.get(key)
        if ref is not None and ref.alive:
            return ref
        agent = self.config.agents.get(key.agent)
        if agent is None:
            raise KeyError(f"no agent named {key.agent!r}")
        make: Any = ConversationThread
        if agent.backend == "openai":
            if self.openai is None:
                raise RuntimeError(f"agent {key.agent!r} needs the openai backend, not configured")
            make = self.openai.thread_actor
        thread_id, codex_thread_id = await self.directory.thread_for(key)
        options: dict[str, Any] = {} if self.clock is None else {"clock": self.clock}
        spec = ChildSpec(
            ("thread", thread_id),
            start=lambda: make(
                thread_id,
                key,
                agent,
                publish=self.publish,
                sessions=self.sessions,
                codex_thread_id=codex_thread_id,
                directory=self.directory,
                codex_config=self.codex_config,
                **options,
            ),
            restart="transient",
            shutdown=10.0,
        )
        supervisor = self.system.whereis(THREAD_SUPERVISOR)
        if supervisor is None:
            raise RuntimeError("the thread supervisor is not running")
        started = await start_child(supervisor, spec)
        assert started is not None
        self.live[key] = started
        self.monitor(started)
        return started

    def handle_info(self, message: Any) -> Any:
        if isinstance(message, Down):
            for key, ref in list(self.live.items()):
                if ref == message.actor:
                    del self.live[key]
            return None
        return super().handle_info(message)


async def send_message(threads: ActorRef, key: ThreadKey, interaction: Interaction) -> str:
    """Deliver a user message to its conversation: "started", "queued", "steered" or
    "interrupting"."""
    thread: ActorRef = await threads.call(("open", key), timeout=60)
    result: str = await thread.call(("message", interaction), timeout=60)
    return result
