"""Conversation threads: one actor per conversation and agent, found or started on demand."""

from piano.agents._conversation import Conversation, Decision
from piano.threads._directory import (
    STORE,
    MemoryDirectory,
    StoreDirectory,
    ThreadDirectory,
    ThreadKey,
)
from piano.threads._router import THREAD_SUPERVISOR, THREADS, Threads, send_message
from piano.threads._thread import ConversationThread

__all__ = [
    "STORE",
    "THREADS",
    "THREAD_SUPERVISOR",
    "Conversation",
    "ConversationThread",
    "Decision",
    "MemoryDirectory",
    "StoreDirectory",
    "ThreadDirectory",
    "ThreadKey",
    "Threads",
    "send_message",
]
