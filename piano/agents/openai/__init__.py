"""The OpenAI agent backend: agents on the openai SDK, against OpenAI's API or any
OpenAI-compatible server (vLLM, llama.cpp, Ollama), beside Codex.

An agent with ``backend = "openai"`` runs in an `OpenAIThread` instead of Codex's
`ConversationThread`: same calls, same events (`schemas.events`), same busy policy, approvals
and idle stop, so surfaces, the pipeline and the store need no special case. It speaks the
Responses API or Chat Completions (``api``), streams its answer, calls Piano's tools (web
fetch, browser, jailed shell, notes, send_message) in a bounded loop of model rounds, retries
429 and 5xx with visible ``retrying`` notices, and fails a turn explicitly on a bad key, an
unknown model or a truncated stream. Agents hand conversations to each other (`handoff`).

```python
backend = OpenAIBackend(config.agents, options, providers=config.providers,
                        tools=config.tools, notes=SqliteNotes(db), history=SqliteHistory(db))
actor = backend.conversation(thread_id, key, agent, publish=publish, directory=directory)
```

Modules: `_config` (endpoint), `_backend` (the actor), `_turn` (rounds and tools),
`_responses` / `_chat` (the two wire APIs), `_tools` (the catalogue's function tools),
`_handoff`, `_history`; the notes are piano.tools' (`SqliteNotes`),
This package imports neither piano.config nor
piano.threads when loaded.
"""

from __future__ import annotations

from piano.agents.openai._backend import OpenAIBackend, OpenAIThread
from piano.agents.openai._config import Endpoint, EndpointError, MissingKey, resolve_endpoint
from piano.agents.openai._history import (
    HISTORY_TABLES,
    History,
    MemoryHistory,
    Message,
    PostgresHistory,
    SqliteHistory,
    ToolCall,
)
from piano.agents.openai._round import ModelFailed, StreamTruncated
from piano.agents.openai._tools import (
    APPROVAL_PROPERTIES,
    ToolRunner,
    ToolSpec,
    function_tool,
    needs_approval,
    tool_specs,
)
from piano.config import TOOL_GROUPS, OpenAIAgentConfig

__all__ = [
    "APPROVAL_PROPERTIES",
    "HISTORY_TABLES",
    "TOOL_GROUPS",
    "Endpoint",
    "EndpointError",
    "History",
    "MemoryHistory",
    "Message",
    "MissingKey",
    "ModelFailed",
    "OpenAIAgentConfig",
    "OpenAIBackend",
    "OpenAIThread",
    "PostgresHistory",
    "SqliteHistory",
    "StreamTruncated",
    "ToolCall",
    "ToolRunner",
    "ToolSpec",
    "function_tool",
    "needs_approval",
    "resolve_endpoint",
    "tool_specs",
]
