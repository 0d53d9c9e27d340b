"""Piano's configuration: one TOML file, decoded by msgspec, overridable from the environment.

```toml
[daemon]
state_dir = "~/.local/state/piano"      # database, codex home, console socket live here

[store]
backend = "sqlite"                       # or "postgres": a server several daemons may share
dsn_env = "PIANO_POSTGRES_DSN"           # postgres: the variable holding the DSN (never the file)
pool_size = 4

[codex]
binary = ""                              # default: the pinned .codex install, then PATH

[providers.local]                        # passed to codex as model_providers.local (a name codex
                                         # reserves, such as openai, as piano-openai)
base_url = "http://127.0.0.1:8080/v1"
env_key = "LOCAL_API_KEY"                # the secret itself comes from the environment

[agents.default]                         # backend = "codex" (default) or "openai"
model = "gpt-5.5"
provider = "local"
workspace = "~/piano-workspace"
sandbox = "workspace-write"              # read-only | workspace-write | danger-full-access
approval_policy = "on-request"           # untrusted | on-failure | on-request | never
busy = "queue"                           # queue | steer | interrupt: a message during a turn
turn_timeout = 600
```

Every error names the file, the key and the reason (``piano.toml: agents.default.busy: must be
one of interrupt, queue, steer; got 'wait'``; a misspelt key gets the nearest real one: ``no such
key; did you mean model?``). Every key, its default and an example: docs/configuration.md,
generated from these structs by `piano.configref`. `piano run` and `piano doctor` both load through
`load_config`, so what one refuses the other refuses, with the same one line. Beyond the types,
every number must be finite (``inf`` and ``nan`` are refused, not left to fail as a timeout
later), durations (`Seconds`) positive, a ``port`` a TCP port, a key known (a typo is named as
the key, not as its table), the socket paths short enough for a Unix socket, and the file UTF-8
TOML of a sane depth. Environment variables of the form
``PIANO__SECTION__KEY=value`` override keys (``PIANO__AGENTS__DEFAULT__MODEL=gpt-5.5``); values
are read as TOML when they parse (numbers, booleans, arrays) and as strings otherwise. Secrets
(API keys, bot tokens) are never written in the file: the file names the variable that holds
them (`env_key`, `token_env`). A ``[cluster]`` section (`ClusterConfig`, `piano.cluster`) runs the
daemon as one node of several sharing a PostgreSQL store and a RabbitMQ broker; without it Piano
is one process.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from actors import Secret
from piano.config._alerts import AlertsConfig
from piano.config._backends import BACKENDS
from piano.config._cluster import ClusterConfig, ClusterRabbitMQConfig, cluster_problems
from piano.config._codex import codex_dirs, codex_writable_roots, worktrees_root
from piano.config._errors import ConfigError, required_variable
from piano.config._openai import TOOL_GROUPS, OpenAIAgentConfig
from piano.config._schedules import ScheduleConfig, Timing, parse_every, parse_timing
from piano.config._telegram import Role, TelegramConfig, WebhookConfig
from piano.config._usage import (
    DAY,
    LimitsConfig,
    PriceConfig,
    UserLimits,
    day_start,
    until_reset,
)
from piano.config._web import WebConfig, WebEmbedConfig
from piano.media import MediaConfig
from piano.store import StoreLocation
from piano.tools import ToolsConfig

__all__ = [
    "BACKENDS",
    "DAY",
    "TOOL_GROUPS",
    "AgentConfig",
    "AlertsConfig",
    "ClusterConfig",
    "ClusterRabbitMQConfig",
    "CodexConfig",
    "Config",
    "ConfigError",
    "DaemonConfig",
    "LimitsConfig",
    "MetricsConfig",
    "OpenAIAgentConfig",
    "PriceConfig",
    "ProjectConfig",
    "ProviderConfig",
    "Role",
    "ScheduleConfig",
    "StoreConfig",
    "TelegramConfig",
    "Timing",
    "UsageConfig",
    "UserLimits",
    "WebConfig",
    "WebEmbedConfig",
    "WebhookConfig",
    "codex_dirs",
    "codex_writable_roots",
    "day_start",
    "load_config",
    "parse_every",
    "parse_timing",
    "until_reset",
    "worktrees_root",
]

ENV_PREFIX = "PIANO__"

Seconds = Annotated[float, msgspec.Meta(gt=0)]
"""A duration that must be positive (every float in a config must also be finite)."""

UNIX_SOCKET_PATH_MAX = 107
"""The longest path a Unix socket can be bound at on Linux (``sun_path`` less its NUL)."""


class DaemonConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    state_dir: str = "~/.local/state/piano"
    database: str = "piano.db"
    console_socket: str = "console.sock"
    chat_socket: str = "chat.sock"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "console"] = "json"
    shutdown_timeout: Seconds = 30.0


class StoreConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Where Piano's store lives: ``sqlite`` (the default: ``daemon.database`` under the state
    directory, nothing to install) or ``postgres`` (a server several daemons may share).

    The PostgreSQL DSN may hold a password, so it is never in the file: `dsn_env` names the
    environment variable that holds it (``postgresql://user:secret@host:5432/piano``), and it is
    redacted like every secret. `pool_size` is how many connections the daemon keeps open."""

    backend: Literal["sqlite", "postgres"] = "sqlite"
    """`sqlite` (`daemon.database`, embedded) or `postgres` (a server, DSN from `dsn_env`)."""
    dsn_env: str = "PIANO_POSTGRES_DSN"
    """The variable holding the PostgreSQL DSN (never the DSN itself: it may hold a password)."""
    pool_size: Annotated[int, msgspec.Meta(ge=1, le=64)] = 4
    """PostgreSQL connections the daemon's readers share (the writer has one of its own)."""
    connect_timeout: Seconds = 10.0
    """Seconds a connection to PostgreSQL may take before the store reports it unreachable."""

    def dsn(self, environ: Mapping[str, str] | None = None) -> str:
        """The PostgreSQL DSN from the environment; `ConfigError` (one line) if unset."""
        return required_variable(
            self.dsn_env,
            environ,
            key="store.dsn_env",
            what='backend = "postgres" reads the DSN',
            example="postgresql://user@host:5432/dbname",
        )


class CodexConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    binary: str = ""
    home: str = ""
    args: list[str] = msgspec.field(default_factory=lambda: ["--disable", "plugins"])
    request_timeout: Seconds = 60.0
    watchdog_interval: Seconds = 10.0
    """Seconds between the checks that codex still answers (see `piano.codex.CodexProcess`)."""
    watchdog_timeout: Seconds = 10.0
    """Seconds codex has to answer a check before it counts as hung and is restarted."""
    probe_timeout: Seconds = 10.0
    """Seconds a request to a provider may take when Piano asks it why a turn failed, and in
    ``piano doctor``."""
    restart_backoff: Seconds = 0.5
    restart_backoff_cap: Seconds = 30.0


class ProviderConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    base_url: str
    wire_api: Literal["responses", "chat"] = "responses"
    env_key: str | None = None
    request_max_retries: int | None = None
    stream_max_retries: int | None = None
    stream_idle_timeout_ms: int | None = None


class AgentConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A named configuration of an agent: its model, where it works and what it may do."""

    backend: str = "codex"
    """Which backend runs its turns, by its registered name (`piano.agents.BACKENDS`):
    ``codex`` or ``openai``."""
    model: str | None = None
    provider: str | None = None
    workspace: str = "~/piano-workspace"
    sandbox: Literal["read-only", "workspace-write", "danger-full-access"] = "workspace-write"
    approval_policy: Literal["untrusted", "on-failure", "on-request", "never"] = "on-request"
    instructions: str | None = None
    busy: Literal["queue", "steer", "interrupt"] = "queue"
    turn_timeout: Seconds = 600.0
    approval_timeout: Seconds = 300.0
    idle_timeout: Seconds = 600.0
    openai: OpenAIAgentConfig = msgspec.field(default_factory=OpenAIAgentConfig)
    """Options of the ``openai`` backend (the openai SDK against any compatible server)."""


class ProjectConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A project a conversation may choose to work in (``/project NAME``): a directory, often
    a git repository, where ``/branch NAME`` gives the conversation a worktree of its own."""

    path: str
    """The project's directory (``~`` expanded); it must exist when chosen. Conversations can
    only work in configured projects: no path is ever taken from a chat."""
    description: str = ""
    """One line shown next to the project's name in ``/project``."""


class MetricsConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The operator's endpoint: ``/health`` and Prometheus ``/metrics`` (`piano.metrics`)."""

    enabled: bool = False
    """Serve ``/health`` and ``/metrics``; independent of the web surface."""
    host: str = "127.0.0.1"
    """The address to listen on; loopback unless a scraper elsewhere must reach it."""
    port: int = 9470
    """The TCP port (0: any free one, logged as ``metrics.listening``)."""


class UsageConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The daily usage summary (`piano.usage.DailySummary`)."""

    daily_summary: bool = True
    """Post each day's turns, tokens and cost (per user and agent) to the owner's chat after
    00:00 UTC (a day without a turn is not posted)."""
    summary_surface: Literal["terminal", "telegram", "web"] = "terminal"
    """The surface of the owner's chat."""
    summary_chat: str = "default"
    """The owner's chat on that surface: `piano chat --conversation`'s name, a Telegram chat
    id, a web conversation."""


class Config(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    daemon: DaemonConfig = msgspec.field(default_factory=DaemonConfig)
    codex: CodexConfig = msgspec.field(default_factory=CodexConfig)
    store: StoreConfig = msgspec.field(default_factory=StoreConfig)
    tools: ToolsConfig = msgspec.field(default_factory=ToolsConfig)
    web: WebConfig = msgspec.field(default_factory=WebConfig)
    media: MediaConfig = msgspec.field(default_factory=MediaConfig)
    metrics: MetricsConfig = msgspec.field(default_factory=MetricsConfig)
    alerts: AlertsConfig = msgspec.field(default_factory=AlertsConfig)
    telegram: TelegramConfig | None = None
    """Present (a ``[telegram]`` section) to run the Telegram surface."""
    cluster: ClusterConfig | None = None
    """Present (a ``[cluster]`` section) to run as one node of a cluster (`piano.cluster`)."""
    providers: dict[str, ProviderConfig] = msgspec.field(default_factory=dict)
    prices: dict[str, PriceConfig] = msgspec.field(default_factory=dict)
    """Each model's prices (``[prices."gpt-5.5"]``), for the costs ``/usage`` shows."""
    limits: LimitsConfig = msgspec.field(default_factory=LimitsConfig)
    usage: UsageConfig = msgspec.field(default_factory=UsageConfig)
    agents: dict[str, AgentConfig] = msgspec.field(
        default_factory=lambda: {"default": AgentConfig()}
    )
    default_agent: str = "default"
    projects: dict[str, ProjectConfig] = msgspec.field(default_factory=dict)
    """The projects conversations may work in (``[projects.NAME]``; see `ProjectConfig`)."""
    schedules: dict[str, ScheduleConfig] = msgspec.field(default_factory=dict)
    """Prompts run on a timetable, each answer posted to a chat (`piano.schedules`)."""

    def secret_variables(self) -> list[str]:
        """The environment variables this configuration reads secrets from: every provider's
        key, the built-in OpenAI key (codex agents and the transcriber may fall back to it),
        the transcriber's own key, the web and Telegram tokens, the webhook secret and the
        MCP key, the PostgreSQL store's DSN and a cluster's AMQP URL (both may hold a password)."""
        names = [p.env_key for p in self.providers.values() if p.env_key]
        names += ["OPENAI_API_KEY", "CODEX_API_KEY"]
        names.append(self.media.transcription.api_key_env or "")
        names += [self.web.token_env, self.web.embed.token_env]
        if self.telegram is not None:
            names += [self.telegram.token_env, self.telegram.webhook.secret_env]
        names.append(self.tools.mcp.secret_env or "")
        if self.store.backend == "postgres":
            names.append(self.store.dsn_env)
        if self.cluster is not None:
            names.append(self.cluster.rabbitmq.url_env)
        return sorted({name for name in names if name})

    def secrets(self, environ: Mapping[str, str] | None = None) -> dict[str, Secret]:
        """The secrets set in `environ` for `secret_variables`, by variable, as `Secret`s
        (creating one registers its value with `actors.redact`, so the daemon's console, logs
        and dashboard never show it)."""
        environ = os.environ if environ is None else environ
        return {
            name: Secret(environ[name]) for name in self.secret_variables() if environ.get(name)
        }

    def state_path(self, name: str) -> Path:
        """A path under the state directory (absolute names are kept as they are)."""
        return Path(self.daemon.state_dir).expanduser() / Path(name).expanduser()

    def store_location(self) -> StoreLocation:
        """Where the store is: ``daemon.database`` (SQLite), or the PostgreSQL database whose
        DSN is in ``$store.dsn_env`` (`ConfigError`, one line, if that variable is unset)."""
        if self.store.backend == "postgres":
            return StoreLocation.postgres(
                self.store.dsn(),
                pool_size=self.store.pool_size,
                connect_timeout=self.store.connect_timeout,
            )
        return StoreLocation.sqlite(self.state_path(self.daemon.database))


def _apply_env(raw: dict[str, Any], environ: Mapping[str, str]) -> None:
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        path = [part.lower() for part in name[len(ENV_PREFIX) :].split("__") if part]
        if not path:
            continue
        target = raw
        for part in path[:-1]:
            node = target.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{name}: {'.'.join(path)} is not a table in the file")
            target = node
        try:
            target[path[-1]] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            target[path[-1]] = value


def _check(config: Config, source: str) -> None:
    openai_agents = {name for name, agent in config.agents.items() if agent.backend == "openai"}
    for name in sorted(openai_agents):
        if config.agents[name].model is None:
            raise ConfigError(f"{source}: agents.{name}.model: an openai agent needs a model")
        for problem in config.agents[name].openai.problems(name, openai_agents):
            raise ConfigError(f"{source}: {problem}")
    for name, agent in config.agents.items():
        if agent.backend not in BACKENDS:
            raise ConfigError(
                f"{source}: agents.{name}.backend: no backend named {agent.backend!r} "
                f"(backends: {', '.join(sorted(BACKENDS))})"
            )
        if agent.provider is not None and agent.provider not in config.providers:
            raise ConfigError(
                f"{source}: agents.{name}.provider: no provider named {agent.provider!r} "
                f"(providers: {', '.join(sorted(config.providers)) or 'none'})"
            )
        if (
            agent.backend == "codex"
            and agent.provider is not None
            and config.providers[agent.provider].wire_api == "chat"
        ):
            raise ConfigError(
                f"{source}: agents.{name}.provider: provider {agent.provider!r} has wire_api = "
                '"chat", which codex no longer supports: use "responses", or backend = "openai"'
            )
    if config.codex.restart_backoff > config.codex.restart_backoff_cap:
        raise ConfigError(
            f"{source}: codex.restart_backoff: {config.codex.restart_backoff} is more than "
            f"codex.restart_backoff_cap ({config.codex.restart_backoff_cap}): lower it"
        )
    for key in ("chat_socket", "console_socket"):
        socket = config.state_path(getattr(config.daemon, key))
        if len(os.fsencode(socket)) > UNIX_SOCKET_PATH_MAX:
            raise ConfigError(
                f"{source}: daemon.{key}: {socket} is longer than a Unix socket path may be "
                f"({UNIX_SOCKET_PATH_MAX} bytes): use a shorter name or daemon.state_dir"
            )
    _check_state_is_out_of_reach(config, source)
    _check_projects(config, source)
    transcriber = config.media.transcription.provider
    if transcriber is not None and transcriber not in config.providers:
        raise ConfigError(
            f"{source}: media.transcription.provider: no provider named {transcriber!r} "
            f"(providers: {', '.join(sorted(config.providers)) or 'none'})"
        )
    if config.cluster is not None:
        for problem in cluster_problems(config.cluster, config.store.backend):
            raise ConfigError(f"{source}: {problem}")
    if config.default_agent not in config.agents:
        raise ConfigError(
            f"{source}: default_agent: no agent named {config.default_agent!r} "
            f"(agents: {', '.join(sorted(config.agents)) or 'none'})"
        )
    for name, schedule in config.schedules.items():
        try:
            parse_timing(schedule.cron, schedule.every)
        except ValueError as exc:
            raise ConfigError(f"{source}: schedules.{name}: {exc}") from None
        if schedule.agent is not None and schedule.agent not in config.agents:
            raise ConfigError(
                f"{source}: schedules.{name}.agent: no agent named {schedule.agent!r} "
                f"(agents: {', '.join(sorted(config.agents))})"
            )
        if not schedule.prompt.strip():
            raise ConfigError(f"{source}: schedules.{name}.prompt: empty: say what to ask")


def _check_state_is_out_of_reach(config: Config, source: str) -> None:
    """Refuse Piano's state (database, codex's home) and the jails' root where an agent may
    write without asking: it could rewrite codex's config.toml or the database, or plant files
    in the jailed shells of other conversations. (Reading is hidden by another wall: codex runs
    in a mount namespace without them, see `piano.codex._namespace`.)"""

    state = [
        ("daemon.state_dir", config.state_path(".")),
        ("daemon.database", config.state_path(config.daemon.database)),
        ("codex.home", codex_dirs(config)[0]),
        ("tools.jail.workspace_root", Path(config.tools.jail.workspace_root).expanduser()),
    ]
    for key, path in state:
        for root_key, root in codex_writable_roots(config):
            if path.resolve().is_relative_to(root.resolve()):
                raise ConfigError(
                    f"{source}: {key}: {path} is inside {root_key} ({root}), which an agent "
                    f"may write without asking: move one out of the other"
                )


_PROJECT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def _check_projects(config: Config, source: str) -> None:
    """A project's name names a directory of worktrees; its path must be out of Piano's state
    and the jails (codex runs where those are hidden, and a conversation there could write
    them). Whether the path exists is checked when a conversation chooses it."""
    hidden = [
        ("daemon.state_dir", config.state_path(".")),
        ("tools.jail.workspace_root", Path(config.tools.jail.workspace_root).expanduser()),
    ]
    for name, project in config.projects.items():
        if not _PROJECT_NAME.fullmatch(name):
            raise ConfigError(
                f"{source}: projects.{name}: a project's name is letters, digits, '.', '_' "
                "and '-' (at most 64, not starting with a dot or dash): rename it"
            )
        path = Path(project.path).expanduser()
        if not path.is_absolute():
            raise ConfigError(
                f"{source}: projects.{name}.path: {project.path} is not an absolute path "
                "(or ~/...): write the whole path"
            )
        for key, root in hidden:
            if path.resolve().is_relative_to(root.resolve()):
                raise ConfigError(
                    f"{source}: projects.{name}.path: {path} is inside {key} ({root}), which "
                    "agents must not reach: choose a project directory outside it"
                )


def load_config(path: str | Path | None, environ: Mapping[str, str] | None = None) -> Config:
    """Read, override from the environment, decode and check; `ConfigError` on any problem."""
    environ = os.environ if environ is None else environ
    source = str(path) if path is not None else "(defaults)"
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{source}: no such file") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{source}: not valid TOML: {exc}") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"{source}: not UTF-8 text (byte {exc.start} is {exc.object[exc.start]:#04x}): "
                "save the file as UTF-8"
            ) from None
        except RecursionError:
            raise ConfigError(
                f"{source}: arrays or tables nested too deeply to read: flatten them"
            ) from None
        except OSError as exc:
            raise ConfigError(f"{source}: cannot be read: {exc.strerror}") from None
    _apply_env(raw, environ)
    for section, struct in (
        ("agents", AgentConfig),
        ("providers", ProviderConfig),
        ("projects", ProjectConfig),
        ("schedules", ScheduleConfig),
    ):
        entries = raw.get(section)
        if isinstance(entries, dict):
            for name, entry in entries.items():
                _convert(entry, struct, source, f"{section}.{name}.")
    config: Config = _convert(raw, Config, source, "")
    for key, problem in _number_problems(config, ""):
        raise ConfigError(f"{source}: {key}: {problem}")
    _check(config, source)
    return config


_UNKNOWN = re.compile(r"Object contains unknown field `(.+)`")


def _convert(raw: Any, struct: type[Any], source: str, prefix: str) -> Any:
    try:
        return msgspec.convert(raw, struct)
    except msgspec.ValidationError as exc:
        where, _, key = str(exc).rpartition(" - at `$")
        key = key.rstrip("`").lstrip(".")
        if not where:
            where, key = str(exc), ""
        unknown = _UNKNOWN.fullmatch(where)
        if unknown:  # name the key itself, not the table holding it
            key = f"{key}.{unknown[1]}" if key else unknown[1]
        named = prefix + key if key else prefix.rstrip(".") or "config"
        where = _explain(named.split("."), where, unknown is not None)
        raise ConfigError(f"{source}: {named}: {where}") from None
    except RecursionError:
        raise ConfigError(f"{source}: nested too deeply to check: flatten it") from None


_GOT = re.compile(r"Invalid enum value (.+)|Expected `.+`, got `(.+)`")


def _explain(path: list[str], where: str, unknown: bool) -> str:
    """msgspec's complaint in the reader's terms: the nearest real key for an unknown one, and
    the valid values of a key that takes one of a set."""
    from piano.config.reference import choices, suggest

    if unknown:
        near = suggest(path[:-1], path[-1])
        return "no such key" + (
            f"; did you mean {near}?" if near else " (docs/configuration.md lists every key)"
        )
    valid = choices(path)
    got = _GOT.fullmatch(where)
    if valid is not None and got is not None:
        return f"must be one of {', '.join(valid)}; got {got[1] or got[2]}"
    return where


def _number_problems(value: Any, key: str) -> list[tuple[str, str]]:
    """What is wrong with the numbers anywhere in a decoded config: every float must be finite
    (``inf`` and ``nan`` fail later, as a timeout or a sleep), and a ``port`` a TCP port."""
    if isinstance(value, msgspec.Struct):
        items = [(name, getattr(value, name)) for name in value.__struct_fields__]
    elif isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list | tuple):
        items = [(str(index), item) for index, item in enumerate(value)]
    elif isinstance(value, float) and not math.isfinite(value):
        return [(key, f"must be a finite number, got {value}")]
    elif isinstance(value, int) and key.rpartition(".")[2] == "port" and not 0 <= value <= 65535:
        return [(key, f"must be a TCP port from 0 (any free one) to 65535, got {value}")]
    else:
        return []
    return [
        problem
        for name, item in items
        for problem in _number_problems(item, f"{key}.{name}" if key else str(name))
    ]
