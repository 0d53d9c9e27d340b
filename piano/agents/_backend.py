"""`Backend`: one way of running an agent's turns, chosen by name (``[agents.X] backend``).

Every backend makes the same kind of actor, a `Conversation`, so `piano.threads.Threads`,
surfaces, the pipeline and the store never ask which backend runs a conversation: `Threads`
looks up ``agent.backend`` in the backends it was given and asks that one for the actor. This
is AnyIO's shape: front code dispatches to a backend loaded by name, every backend implementing
one abstract interface.

Backends are registered by name in `BACKENDS` (`piano.config`'s, so that the configuration
checks an agent's ``backend`` without importing any) as ``"module:attribute"`` strings, imported
only when a configuration uses them (`backend_class`), so loading `piano.agents` loads neither
Codex's client nor the openai SDK. A new backend is one module defining a `Backend` subclass
and one line of registration:

```python
register_backend("echo", "my_package.echo:EchoBackend")
```

The daemon builds each backend its agents name with `Backend.for_daemon(setup)`; tests and
scripts construct backends directly.
"""

from __future__ import annotations

import importlib
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from actors import Registry
from piano.agents._conversation import DAEMON_STOPPED, Conversation, Publish
from piano.agents._directory import ThreadDirectory, ThreadKey
from piano.config import BACKENDS
from piano.store import PostgresPool
from piano.tools import Notes

if TYPE_CHECKING:
    from piano.config import AgentConfig, Config

__all__ = [
    "BACKENDS",
    "Backend",
    "DaemonSetup",
    "UnknownBackend",
    "backend_class",
    "register_backend",
]


class UnknownBackend(KeyError):
    """No backend is registered under a name (the message names the known ones)."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True, slots=True)
class DaemonSetup:
    """What the daemon hands every backend it builds (`Backend.for_daemon`).

    `database` is the store's SQLite file, for a backend's own tables; `sessions` is the
    registry the Codex client routes Codex's notifications through (Codex thread id → actor);
    `notes` is the one connection to the agents' notes (Codex reaches them over MCP);
    `codex_config` gives a Codex thread its extra configuration (its MCP server entry);
    `pool` is set when the store is PostgreSQL: a backend's own tables are there, not in
    `database`.
    """

    config: Config
    database: Path
    sessions: Registry
    notes: Notes
    codex_config: Callable[[str], dict[str, Any]] | None = None
    pool: PostgresPool | None = None


class Backend(ABC):
    """Runs the turns of the agents whose ``backend`` is its name, each conversation in an
    actor of its own (a `Conversation`).

    Guaranteed to `Threads`: `conversation` only constructs the actor (no I/O: it runs inside
    a supervisor's start), and may be called again for the same conversation when its
    supervisor restarts it; the actor then recovers what its predecessor left open (see
    `Conversation`).
    """

    @classmethod
    @abstractmethod
    def for_daemon(cls, setup: DaemonSetup) -> Backend:
        """This backend as the daemon runs it, for `setup.config`'s agents."""

    @abstractmethod
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
    ) -> Conversation[Any]:
        """The actor of conversation `key` (Piano's thread `thread_id`) with `agent`.

        `publish` takes its thread events; `directory` is where it records messages and finds
        what a predecessor left unfinished; `conversations` is the registry it registers
        itself in under `key`; `recovering` is why a turn it finds left running was
        interrupted.
        """

    @classmethod
    def missing_key(
        cls, agent: AgentConfig, config: Config, environ: Mapping[str, str]
    ) -> str | None:
        """Why `agent`'s API key cannot be found in `environ` (the variable named), or None
        when it is there or none is needed; ``piano doctor`` asks every agent's backend."""
        return None

    def problems(self) -> list[str]:
        """Configuration errors this backend finds in its agents; empty when usable."""
        return []


def register_backend(name: str, target: str) -> None:
    """Register the backend class at `target` (``"module:attribute"``) as `name`; replaces
    an earlier registration of that name."""
    module, sep, attribute = target.partition(":")
    if not sep or not module or not attribute:
        raise ValueError(f"a backend is registered as 'module:attribute', not {target!r}")
    BACKENDS[name] = target


def backend_class(name: str) -> type[Backend]:
    """The backend class registered as `name`, imported now if it was not yet.

    Raises `UnknownBackend` for a name nobody registered, and `TypeError` if the registration
    points at something that is not a `Backend` subclass.
    """
    target = BACKENDS.get(name)
    if target is None:
        raise UnknownBackend(
            f"no agent backend named {name!r} (known: {', '.join(sorted(BACKENDS))})"
        )
    module, _, attribute = target.partition(":")
    found = getattr(importlib.import_module(module), attribute)
    if not (isinstance(found, type) and issubclass(found, Backend)):
        raise TypeError(f"backend {name!r} ({target}) is not a Backend subclass")
    return found
