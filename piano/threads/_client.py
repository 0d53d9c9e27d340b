"""The client API of conversations: what surfaces, the console and tests call.

Two actors answer: the router, `Threads` (registered as `THREADS`), which finds or starts the
actor of a conversation (a `ThreadKey`), and that conversation's actor (a
`piano.agents.Conversation`, whatever its backend). Each operation is one function that sends
one frozen message and returns its typed answer, as `supervisors` does for supervisors:

| function                | to             | message                | answers                  |
|-------------------------|----------------|------------------------|--------------------------|
| `open_conversation`     | the router     | `OpenConversation`     | the conversation's actor |
| `take_over`             | the router     | `OpenConversation`     | the conversation's actor |
| `new_conversation`      | the router     | `NewConversation`      | the new thread's id      |
| `which_conversations`   | the router     | `WhichConversations`   | live actors by key       |
| `recover_conversations` | the router     | `RecoverConversations` | how many were reopened   |
| `post_message`          | a conversation | `PostMessage`          | an `Outcome`             |
| `decide`                | a conversation | `Decide`               | whether it was open      |
| `interrupt`             | a conversation | `Interrupt`            | whether a turn stops     |
| `conversation_status`   | a conversation | `GetStatus`            | `ConversationStatus`     |
| `list_models`           | a conversation | `ListModels`           | its `ModelChoice`s       |
| `configure`             | a conversation | `Configure`            | `ConversationStatus`     |

`send_message` is `open_conversation` then `post_message`, what a surface does with a user's
message. `take_over` is what a node does when a conversation moves to it (the cluster calls
it): the start-up recovery path, with the reason of the move.

**One timeout policy.** Every operation waits up to `TIMEOUT` (60 s) for its answer. Any of them
may queue behind the start of a turn in the same actor, and a turn's start may wait for Codex
to restart (bounded: `[codex] restart_backoff_cap`), and opening a conversation may start its
actor, which resumes its Codex thread: so a short timeout for "just a status" would fail
exactly when the daemon is recovering. `recover_conversations` opens every unfinished
conversation in turn, so it waits up to `RECOVER_TIMEOUT`. A timeout raises `TimeoutError`;
what was sent is still handled (a posted message that was recorded still runs).

Errors: `open_conversation` raises `UnknownAgent` (a `KeyError`) for a key whose agent is not
configured; `post_message` fails with `piano.agents.NotSaved` when the store refused the
message (it was not accepted). A router or conversation that stopped meanwhile raises
`actors.ActorExited`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, cast

from actors import ActorRef
from piano.agents import (
    Configure,
    ConversationStatus,
    Decide,
    GetStatus,
    Interrupt,
    ListModels,
    ModelChoice,
    PostMessage,
)
from piano.store import ConversationSettings
from schemas.events import Decision, Interaction, Outcome

if TYPE_CHECKING:
    from piano.agents import ThreadKey

__all__ = [
    "RECOVER_TIMEOUT",
    "TIMEOUT",
    "NewConversation",
    "OpenConversation",
    "RecoverConversations",
    "UnknownAgent",
    "WhichConversations",
    "configure",
    "conversation_status",
    "decide",
    "interrupt",
    "list_models",
    "new_conversation",
    "open_conversation",
    "post_message",
    "recover_conversations",
    "send_message",
    "take_over",
    "which_conversations",
]

TIMEOUT: Final = 60.0
"""Seconds every conversation operation waits for its answer (see the module documentation)."""

RECOVER_TIMEOUT: Final = 300.0
"""Seconds `recover_conversations` waits: it opens every unfinished conversation in turn."""


class UnknownAgent(KeyError):
    """A conversation's key names an agent the configuration does not have."""


@dataclass(frozen=True, slots=True)
class OpenConversation:
    """The actor of `key`'s conversation, started if none is alive. `recovering`: why a turn
    a previous actor left running was interrupted, if this start finds one (default: the
    daemon stopped)."""

    key: ThreadKey
    recovering: str | None = None


@dataclass(frozen=True, slots=True)
class NewConversation:
    """Start `key`'s conversation afresh: its actor stops, its thread is archived, and the
    next message opens a new thread. Answers the new thread's id."""

    key: ThreadKey


@dataclass(frozen=True, slots=True)
class WhichConversations:
    """Every live conversation actor, by key."""


@dataclass(frozen=True, slots=True)
class RecoverConversations:
    """Open every conversation the store shows something unfinished in (the daemon's start-up
    recovery). Answers how many."""


async def open_conversation(threads: ActorRef, key: ThreadKey) -> ActorRef:
    """The actor of `key`'s conversation, started if it is not alive (one per conversation).

    Raises `UnknownAgent` if no agent is named ``key.agent``.
    """
    ref: ActorRef = await threads.call(OpenConversation(key), timeout=TIMEOUT)
    return ref


async def take_over(threads: ActorRef, key: ThreadKey, why: str) -> ActorRef:
    """`key`'s conversation moved to this node (its previous owner died or let it go): its
    actor, started here if it is not alive. A new actor recovers as at start-up (see
    `piano.agents.Conversation`): a turn the previous owner left ``in_progress`` ends
    ``interrupted`` with `why` (e.g. "the node running this conversation stopped"), which its
    user sees on their surface, and the messages it accepted and never ran run here, in order,
    the user told. Its Codex thread's rollout is written back from the store into this node's
    CODEX_HOME and the same thread resumed when it next runs a turn (rebuilt under a new id,
    the user told, if the rollout is gone everywhere: `piano.agents.codex`).

    Raises `UnknownAgent` if no agent is named ``key.agent``.
    """
    ref: ActorRef = await threads.call(OpenConversation(key, recovering=why), timeout=TIMEOUT)
    return ref


async def new_conversation(threads: ActorRef, key: ThreadKey) -> str:
    """Start `key`'s conversation afresh (``/new``); the new thread's id."""
    thread_id: str = await threads.call(NewConversation(key), timeout=TIMEOUT)
    return thread_id


async def which_conversations(threads: ActorRef) -> dict[ThreadKey, ActorRef]:
    """Every live conversation actor, by its conversation's key."""
    live: dict[ThreadKey, ActorRef] = await threads.call(WhichConversations(), timeout=TIMEOUT)
    return live


async def recover_conversations(threads: ActorRef) -> int | None:
    """Open every conversation left unfinished; how many there were (None: the store cannot
    be reached now, try again later)."""
    count: int | None = await threads.call(RecoverConversations(), timeout=RECOVER_TIMEOUT)
    return count


def post_message(conversation: ActorRef, interaction: Interaction) -> asyncio.Future[Outcome]:
    """Post a user's message to its conversation's actor; the future answers its `Outcome`.

    The message is in the actor's mailbox when this returns (before any await), so a surface
    may mark its update handled at once and leave the answer to arrive; awaiting the future
    fails with `piano.agents.NotSaved` if the store refused the message.
    """
    return cast("asyncio.Future[Outcome]", conversation.call(PostMessage(interaction), TIMEOUT))


async def send_message(threads: ActorRef, key: ThreadKey, interaction: Interaction) -> Outcome:
    """Deliver a user's message to `key`'s conversation (opened if needed): its `Outcome`."""
    return await post_message(await open_conversation(threads, key), interaction)


async def decide(
    conversation: ActorRef, approval_id: str, decision: Decision, by: str | None
) -> bool:
    """Answer an open approval; False if it is no longer open (decided, expired, withdrawn)."""
    decided: bool = await conversation.call(Decide(approval_id, decision, by), timeout=TIMEOUT)
    return decided


async def interrupt(conversation: ActorRef) -> bool:
    """Interrupt the running turn; False if none is running."""
    stopping: bool = await conversation.call(Interrupt(), timeout=TIMEOUT)
    return stopping


async def conversation_status(conversation: ActorRef) -> ConversationStatus:
    """The conversation's state now."""
    status: ConversationStatus = await conversation.call(GetStatus(), timeout=TIMEOUT)
    return status


async def list_models(conversation: ActorRef) -> tuple[ModelChoice, ...]:
    """The models the conversation's agent may use (``/model``); fails with
    `piano.agents.ModelsUnavailable` when its provider cannot say now."""
    choices: tuple[ModelChoice, ...] = await conversation.call(ListModels(), timeout=TIMEOUT)
    return choices


async def configure(conversation: ActorRef, settings: ConversationSettings) -> ConversationStatus:
    """Make `settings` the conversation's model and effort (kept in the store); its status
    after. Fails with `piano.agents.NotSaved` when the store refused them."""
    status: ConversationStatus = await conversation.call(Configure(settings), timeout=TIMEOUT)
    return status
