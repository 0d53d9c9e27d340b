"""`CodexBackend`: agents whose turns run in `codex app-server` (``backend = "codex"``).

It holds what only Codex's conversations share: the `sessions` registry through which the
Codex client (`piano.codex.CodexClient`, started by the daemon beside it) routes each Codex
thread's notifications and approval requests to its conversation's actor, and `codex_config`,
the extra Codex configuration each thread starts with (its own MCP server entry, whose token
names the thread), and `rollouts`, where each Codex thread's rollout file is kept so that the
thread survives losing CODEX_HOME and can move to another node (`piano.agents.codex._rollouts`;
the store's database in the daemon). Each conversation is a `ConversationThread`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from actors import Registry
from piano.agents._backend import Backend, DaemonSetup
from piano.agents._conversation import DAEMON_STOPPED, Publish
from piano.agents._directory import ThreadDirectory, ThreadKey
from piano.agents.codex._rollouts import PostgresRollouts, RolloutStore, SqliteRollouts
from piano.agents.codex._thread import ConversationThread

if TYPE_CHECKING:
    from piano.config import AgentConfig, Config

__all__ = ["CodexBackend"]


class CodexBackend(Backend):
    """Codex's conversations; see the module documentation.

    `sessions` must be the registry the Codex client was given (unique keys: a Codex thread
    has one actor). `codex_config(thread_id)`, when given, is merged into each thread's
    ``thread/start`` and ``thread/resume``. `rollouts`, when given, keeps each thread's
    rollout (without it a thread lives only in the local CODEX_HOME).
    """

    def __init__(
        self,
        sessions: Registry,
        *,
        codex_config: Callable[[str], dict[str, Any]] | None = None,
        rollouts: RolloutStore | None = None,
    ) -> None:
        self.sessions = sessions
        self.codex_config = codex_config
        self.rollouts = rollouts

    @classmethod
    def for_daemon(cls, setup: DaemonSetup) -> CodexBackend:
        """Codex's conversations with their rollouts in the store's database."""
        rollouts: RolloutStore = (
            SqliteRollouts(setup.database) if setup.pool is None else PostgresRollouts(setup.pool)
        )
        return cls(setup.sessions, codex_config=setup.codex_config, rollouts=rollouts)

    @classmethod
    def missing_key(
        cls, agent: AgentConfig, config: Config, environ: Mapping[str, str]
    ) -> str | None:
        """Codex reads the key of the agent's provider from its ``env_key``."""
        provider = config.providers.get(agent.provider) if agent.provider else None
        if provider is not None and provider.env_key and not environ.get(provider.env_key):
            return f"{provider.env_key} (provider {agent.provider}) is not set"
        return None

    def conversation(
        self,
        thread_id: str,
        key: ThreadKey,
        agent: AgentConfig,
        *,
        publish: Publish,
        directory: ThreadDirectory | None = None,
        conversations: Registry | None = None,
        recovering: str = DAEMON_STOPPED,
        clock: Callable[[], float] = time.time,
    ) -> ConversationThread:
        """A `ConversationThread`; its Codex thread id comes from `directory` when it first
        needs Codex, so a restarted actor resumes the thread its predecessor started."""
        return ConversationThread(
            thread_id,
            key,
            agent,
            publish=publish,
            sessions=self.sessions,
            directory=directory,
            codex_config=self.codex_config,
            rollouts=self.rollouts,
            conversations=conversations,
            recovering=recovering,
            clock=clock,
        )
