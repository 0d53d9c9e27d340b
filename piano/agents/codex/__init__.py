"""The Codex agent backend: an agent's turns run in `codex app-server` (`piano.codex`).

An agent with ``backend = "codex"`` (the default) runs in a `ConversationThread`: a Codex
thread per conversation, started on its first message and resumed on a new Codex process, its
notifications translated into Piano's events (`schemas.events`). `CodexBackend` makes these
actors and holds what is Codex's alone (the `sessions` registry the Codex client routes by,
each thread's extra Codex configuration) and where each Codex thread's rollout is kept
(`RolloutStore`: `SqliteRollouts`, `PostgresRollouts`), so a thread survives a lost CODEX_HOME
and moves between nodes: see `piano.agents.codex._rollouts`.

```python
backend = CodexBackend(sessions, codex_config=access.codex_thread_config)
actor = backend.conversation(thread_id, key, agent, publish=publish, directory=directory)
```
"""

from __future__ import annotations

from piano.agents.codex._backend import CodexBackend
from piano.agents.codex._rollouts import (
    ROLLOUT_LOST,
    ROLLOUT_TABLES,
    MemoryRollouts,
    PostgresRollouts,
    RolloutError,
    RolloutHead,
    RolloutStale,
    RolloutStore,
    SqliteRollouts,
    relative_rollout_path,
    restore_rollout,
    save_rollout,
)
from piano.agents.codex._thread import ConversationThread

__all__ = [
    "ROLLOUT_LOST",
    "ROLLOUT_TABLES",
    "CodexBackend",
    "ConversationThread",
    "MemoryRollouts",
    "PostgresRollouts",
    "RolloutError",
    "RolloutHead",
    "RolloutStale",
    "RolloutStore",
    "SqliteRollouts",
    "relative_rollout_path",
    "restore_rollout",
    "save_rollout",
]
