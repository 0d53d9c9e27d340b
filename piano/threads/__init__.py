"""Conversation threads: one actor per conversation and agent, found or started on demand.

Talk to them through the client functions (`open_conversation`, `send_message`,
`post_message`, `decide`, `interrupt`, `conversation_status`, `new_conversation`,
`which_conversations`, `recover_conversations`): each sends one frozen message and applies
one timeout policy (`TIMEOUT`); see `piano.threads._client`.
"""

from piano.agents._conversation import Conversation, NotSaved
from piano.agents._messages import ConversationStatus, Decide, GetStatus, Interrupt, PostMessage
from piano.threads._client import (
    RECOVER_TIMEOUT,
    TIMEOUT,
    NewConversation,
    OpenConversation,
    RecoverConversations,
    UnknownAgent,
    WhichConversations,
    conversation_status,
    decide,
    interrupt,
    new_conversation,
    open_conversation,
    post_message,
    recover_conversations,
    send_message,
    which_conversations,
)
from piano.threads._directory import (
    MemoryDirectory,
    StoreDirectory,
    ThreadDirectory,
    ThreadKey,
    Unfinished,
)
from piano.threads._router import (
    RECOVERY,
    THREAD_SUPERVISOR,
    THREADS,
    Recovery,
    Threads,
)
from piano.threads._thread import ConversationThread
from schemas.events import Decision, Outcome

__all__ = [
    "RECOVERY",
    "RECOVER_TIMEOUT",
    "THREADS",
    "THREAD_SUPERVISOR",
    "TIMEOUT",
    "Conversation",
    "ConversationStatus",
    "ConversationThread",
    "Decide",
    "Decision",
    "GetStatus",
    "Interrupt",
    "MemoryDirectory",
    "NewConversation",
    "NotSaved",
    "OpenConversation",
    "Outcome",
    "PostMessage",
    "RecoverConversations",
    "Recovery",
    "StoreDirectory",
    "ThreadDirectory",
    "ThreadKey",
    "Threads",
    "Unfinished",
    "UnknownAgent",
    "WhichConversations",
    "conversation_status",
    "decide",
    "interrupt",
    "new_conversation",
    "open_conversation",
    "post_message",
    "recover_conversations",
    "send_message",
    "which_conversations",
]
