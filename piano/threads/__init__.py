"""Conversation threads: one actor per conversation and agent, found or started on demand.

Talk to them through the client functions (`open_conversation`, `send_message`,
`post_message`, `decide`, `interrupt`, `conversation_status`, `list_models`, `configure`,
`new_conversation`, `which_conversations`, `recover_conversations`): each sends one frozen
message and applies one timeout policy (`TIMEOUT`); see `piano.threads._client`.

`Threads` (registered as `THREADS`) starts a conversation's actor with the backend its
agent names (`piano.agents.Backend`). The directory, the conversation type and its messages
are `piano.agents`'s, re-exported here for the surfaces.
"""

from piano.agents import (
    Configure,
    Conversation,
    ConversationStatus,
    Decide,
    GetStatus,
    Interrupt,
    ListModels,
    MemoryDirectory,
    ModelChoice,
    ModelsUnavailable,
    NotSaved,
    PostMessage,
    StoreDirectory,
    ThreadDirectory,
    ThreadKey,
    Unfinished,
)
from piano.threads._client import (
    RECOVER_TIMEOUT,
    TIMEOUT,
    NewConversation,
    OpenConversation,
    RecoverConversations,
    UnknownAgent,
    WhichConversations,
    configure,
    conversation_status,
    decide,
    interrupt,
    list_models,
    new_conversation,
    open_conversation,
    post_message,
    recover_conversations,
    send_message,
    take_over,
    which_conversations,
)
from piano.threads._resume import resume_lines, web_link
from piano.threads._router import (
    RECOVERY,
    THREAD_SUPERVISOR,
    THREADS,
    Recovery,
    Threads,
)
from schemas.events import Decision, Outcome

__all__ = [
    "RECOVERY",
    "RECOVER_TIMEOUT",
    "THREADS",
    "THREAD_SUPERVISOR",
    "TIMEOUT",
    "Configure",
    "Conversation",
    "ConversationStatus",
    "Decide",
    "Decision",
    "GetStatus",
    "Interrupt",
    "ListModels",
    "MemoryDirectory",
    "ModelChoice",
    "ModelsUnavailable",
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
    "configure",
    "conversation_status",
    "decide",
    "interrupt",
    "list_models",
    "new_conversation",
    "open_conversation",
    "post_message",
    "recover_conversations",
    "resume_lines",
    "send_message",
    "take_over",
    "web_link",
    "which_conversations",
]
