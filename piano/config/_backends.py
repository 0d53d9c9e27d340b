"""`BACKENDS`: the agent backends a configuration may name, each with where it is implemented.

The registry is configuration data, so that `load_config` refuses an agent naming an unknown
backend without importing any backend: name → ``"module:attribute"`` of a
`piano.agents.Backend` subclass, which `piano.agents.backend_class` imports on first use.
`piano.agents.register_backend` adds one (a new backend is one module plus that one line).
"""

from __future__ import annotations

from typing import Final

__all__ = ["BACKENDS"]

BACKENDS: Final[dict[str, str]] = {
    "codex": "piano.agents.codex:CodexBackend",
    "openai": "piano.agents.openai:OpenAIBackend",
}
"""Backend name → ``"module:attribute"`` of its `Backend` subclass, imported on first use."""
