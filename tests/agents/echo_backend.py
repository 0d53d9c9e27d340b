"""A tiny agent backend that answers every message with its own text: the whole of what a new
backend needs, one module (this one) and one line of registration::

    register_backend("echo", "tests.agents.echo_backend:EchoBackend")
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import ClassVar

from actors import Registry
from piano.agents import (
    DAEMON_STOPPED,
    Backend,
    Conversation,
    DaemonSetup,
    Publish,
    ThreadDirectory,
    ThreadKey,
    Turn,
)
from piano.config import AgentConfig
from schemas import events as ev

_turns = itertools.count(1)


class EchoConversation(Conversation[Turn]):
    """Answers "echo: <text>" at once; a turn is over before it can be interrupted."""

    async def _begin(self, interaction: ev.Interaction) -> None:
        self.turn = Turn(interaction, f"echo-{next(_turns)}")
        self.emit(ev.TurnStarted(interaction=interaction, agent=self.key.agent, **self.meta()))
        answer = f"echo: {interaction.text}"
        item = ev.Item(id=f"{self.turn.turn_id}:answer", kind="agent_message", text=answer)
        self.emit(ev.ItemCompleted(item=item, **self.meta()))
        done = ev.TurnCompleted(status="completed", response=answer, **self.meta())
        await self._end_turn([done])

    async def _stop_turn(self, turn: Turn, why: str) -> bool:
        return False


class EchoBackend(Backend):
    """Every agent naming ``backend = "echo"`` echoes (a test's subclass may name another
    `conversation_class`, such as one whose turns wait for the test)."""

    conversation_class: ClassVar[type[EchoConversation]] = EchoConversation

    @classmethod
    def for_daemon(cls, setup: DaemonSetup) -> EchoBackend:
        return cls()

    def conversation(
        self,
        thread_id: str,
        key: ThreadKey,
        agent: AgentConfig,
        *,
        publish: Publish,
        directory: ThreadDirectory | None = None,
        conversations: Registry | None = None,
        recovering: str = DAEMON_STOPPED,
        clock: Callable[[], float] = time.time,
    ) -> EchoConversation:
        return self.conversation_class(
            thread_id,
            key,
            agent,
            publish=publish,
            directory=directory,
            conversations=conversations,
            recovering=recovering,
            clock=clock,
        )
