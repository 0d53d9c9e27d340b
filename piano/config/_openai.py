"""The ``openai`` options of an agent whose ``backend = "openai"`` (a sub-table of the agent).

```toml
[agents.concierge]
backend = "openai"
model = "gpt-4.1-mini"
provider = "local"                      # base_url, wire_api and env_key come from here...

[agents.concierge.openai]
base_url = "http://127.0.0.1:8000/v1"   # ...unless given here
api = "chat"                            # responses | chat (servers with only Chat Completions)
api_key_env = "OPENAI_API_KEY"          # "" for servers that need no key
max_rounds = 8                          # model responses per user message
tools = ["web_fetch", "notes"]          # groups: web_fetch browser shell notes send_message
handoffs = ["archivist"]                # agents this one may hand the conversation to
```

An agent backend's options are configuration: this module is `piano.config`'s, and
`piano.agents` re-exports `OpenAIAgentConfig`.
"""

from __future__ import annotations

from typing import Final, Literal

import msgspec

from piano.tools import TOOL_GROUPS as _CATALOGUE_GROUPS

__all__ = ["TOOL_GROUPS", "OpenAIAgentConfig"]

TOOL_GROUPS: Final = _CATALOGUE_GROUPS
"""The tool groups an OpenAI agent may be given (`OpenAIAgentConfig.tools`): the catalogue's
(`piano.tools.TOOLS`)."""


class OpenAIAgentConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """How an agent talks to an OpenAI-compatible server; model, instructions, approval
    policy, busy policy and timeouts stay in the agent's own section.

    `base_url`, `api` and `api_key_env` default to the agent's provider (`base_url`,
    `wire_api`, `env_key`), then to OpenAI's API with ``OPENAI_API_KEY``. `max_retries` is how
    many times a 429, a 5xx or a refused connection is retried (waiting up to `retry_backoff`
    seconds, the ceiling doubling up to `retry_backoff_cap`, with full jitter: `actors.Backoff`;
    or what ``Retry-After`` says).
    `history_limit` caps the past messages sent with each request (the oldest are left out).
    """

    base_url: str | None = None
    api: Literal["responses", "chat"] | None = None
    api_key_env: str | None = None
    max_rounds: int = 10
    tools: list[str] = msgspec.field(default_factory=lambda: list(TOOL_GROUPS))
    handoffs: list[str] = msgspec.field(default_factory=list)
    max_retries: int = 4
    retry_backoff: float = 1.0
    retry_backoff_cap: float = 30.0
    request_timeout: float = 300.0
    max_output_tokens: int | None = None
    temperature: float | None = None
    history_limit: int = 200

    def problems(self, agent: str, openai_agents: set[str]) -> list[str]:
        """What is wrong with these options for `agent` (empty when they can be used);
        `openai_agents` are the names of the configuration's OpenAI agents (handoff targets)."""
        found = []
        if self.max_rounds < 1:
            found.append(f"agents.{agent}.openai.max_rounds: must be at least 1")
        if self.max_retries < 0:
            found.append(f"agents.{agent}.openai.max_retries: must not be negative")
        for tool in self.tools:
            if tool not in TOOL_GROUPS:
                found.append(
                    f"agents.{agent}.openai.tools: unknown tool {tool!r} "
                    f"(known: {', '.join(TOOL_GROUPS)})"
                )
        for target in self.handoffs:
            if target == agent or target not in openai_agents:
                found.append(
                    f"agents.{agent}.openai.handoffs: {target!r} is not another agent with "
                    'backend = "openai"'
                )
        return found
