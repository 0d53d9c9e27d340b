"""Conversation threads: one actor per conversation and agent, found or started on demand."""

from piano.agents._conversation import Conversation, Decision
from piano.threads._directory import (
    STORE,
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
    send_message,
)
from piano.threads._thread import ConversationThread

__all__ = [
    "RECOVERY",
    "STORE",
    "THREADS",
    "THREAD_SUPERVISOR",
    "Conversation",
    "ConversationThread",
    "Decision",
    "MemoryDirectory",
    "Recovery",
    "StoreDirectory",
    "ThreadDirectory",
    "ThreadKey",
    "Threads",
    "Unfinished",
    "send_message",
]
