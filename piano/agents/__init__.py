"""Agents: what runs a conversation's turns, one `Backend` per kind, chosen by name.

Every conversation (a chat, a topic, with one agent) is an actor, a `Conversation`: the same
calls, events, busy policy, approvals and idle stop whatever runs its turns. A `Backend` makes
these actors; the backends sit side by side and are registered by name in `BACKENDS`, each
imported only when a configuration names it (`backend_class`):

- ``"codex"`` — `piano.agents.codex.CodexBackend`: turns in `codex app-server`;
- ``"openai"`` — `piano.agents.openai.OpenAIBackend`: the openai SDK against any
  OpenAI-compatible server.

`piano.threads.Threads` picks an agent's backend by its ``backend`` setting. A new backend is
one module with a `Backend` subclass plus `register_backend(name, "module:Class")`.

The messages a conversation's actor answers (`PostMessage`, `Decide`, `Interrupt`,
`GetStatus`, `ListModels`, `Configure`) are here; `piano.threads` has the client functions
that send them. Where conversations' ids and unfinished work live (`ThreadDirectory`,
`ThreadKey`) is here too, because every conversation's actor reads and records them;
`piano.threads` re-exports them for surfaces. `OpenAIAgentConfig` is `piano.config`'s (the
configuration is the layer below every backend), re-exported here.
"""

from __future__ import annotations

from piano.agents._backend import (
    BACKENDS,
    Backend,
    DaemonSetup,
    UnknownBackend,
    backend_class,
    register_backend,
)
from piano.agents._conversation import (
    DAEMON_STOPPED,
    Conversation,
    ModelsUnavailable,
    NotSaved,
    Publish,
    Turn,
    stopped_because,
)
from piano.agents._directory import (
    MemoryDirectory,
    StoreDirectory,
    ThreadDirectory,
    ThreadKey,
    Unfinished,
)
from piano.agents._messages import (
    Configure,
    ConversationStatus,
    Decide,
    GetStatus,
    Interrupt,
    ListModels,
    ModelChoice,
    PostMessage,
)
from piano.config import TOOL_GROUPS, OpenAIAgentConfig

__all__ = [
    "BACKENDS",
    "DAEMON_STOPPED",
    "TOOL_GROUPS",
    "Backend",
    "Configure",
    "Conversation",
    "ConversationStatus",
    "DaemonSetup",
    "Decide",
    "GetStatus",
    "Interrupt",
    "ListModels",
    "MemoryDirectory",
    "ModelChoice",
    "ModelsUnavailable",
    "NotSaved",
    "OpenAIAgentConfig",
    "PostMessage",
    "Publish",
    "StoreDirectory",
    "ThreadDirectory",
    "ThreadKey",
    "Turn",
    "Unfinished",
    "UnknownBackend",
    "backend_class",
    "register_backend",
    "stopped_because",
]
