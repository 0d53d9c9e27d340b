"""Agent backends beside Codex (`piano.agents.openai`: the openai SDK against any compatible
server).

`OpenAIAgentConfig` is exported here, from a module that imports nothing but msgspec, so that
`piano.config` can name it in `AgentConfig` without an import cycle.
"""

from __future__ import annotations

from piano.agents._options import TOOL_GROUPS, OpenAIAgentConfig

__all__ = ["TOOL_GROUPS", "OpenAIAgentConfig"]
