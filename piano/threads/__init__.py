"""Conversation threads: one actor per conversation and agent, found or started on demand."""

from piano.threads._router import (
    THREAD_SUPERVISOR,
    THREADS,
    MemoryDirectory,
    ThreadDirectory,
    Threads,
    send_message,
)
from piano.threads._thread import ConversationThread, Decision, ThreadKey

__all__ = [
    "THREADS",
    "THREAD_SUPERVISOR",
    "ConversationThread",
    "Decision",
    "MemoryDirectory",
    "ThreadDirectory",
    "ThreadKey",
    "Threads",
    "send_message",
]
