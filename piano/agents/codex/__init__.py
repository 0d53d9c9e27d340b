"""The Codex agent backend: an agent's turns run in `codex app-server` (`piano.codex`).

An agent with ``backend = "codex"`` (the default) runs in a `ConversationThread`: a Codex
thread per conversation, started on its first message and resumed on a new Codex process, its
notifications translated into Piano's events (`schemas.events`). `CodexBackend` makes these
actors and holds what is Codex's alone (the `sessions` registry the Codex client routes by,
each thread's extra Codex configuration).

```python
backend = CodexBackend(sessions, codex_config=access.codex_thread_config)
actor = backend.conversation(thread_id, key, agent, publish=publish, directory=directory)
```
"""

from __future__ import annotations

from piano.agents.codex._backend import CodexBackend
from piano.agents.codex._thread import ConversationThread

__all__ = ["CodexBackend", "ConversationThread"]
