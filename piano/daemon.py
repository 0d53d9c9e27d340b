"""The Piano daemon: one application tree, started by ``piano run --config piano.toml``.

```
piano (Application, rest_for_one)
├── storage            Supervisor (one_for_one, 3 restarts in 30 s)
│   └── store          StoreWriter: the one SQLite writer
├── cluster            Supervisor (with a [cluster] section): membership, leases (piano.cluster)
├── events             Pipeline: thread events, partitioned by thread, to surfaces and store
├── codex_supervisor   Supervisor (one_for_one, 5 restarts in 30 s)
│   └── codex          CodexClient: the codex app-server process (restarted with back-off)
├── projects           Projects: which project (or git worktree) each conversation works in
├── tools              Supervisor: browser and jail sessions per thread, web fetch, and the
│                      MCP endpoint Codex calls them through (each thread has its own token)
├── thread_supervisor  DynamicSupervisor: one thread actor per conversation (Codex or OpenAI)
├── threads            Threads: finds or starts a conversation's thread
├── media              MediaService: closes the surfaces' transcription clients on shutdown
├── surfaces           Supervisor (one_for_one): the terminal chat socket, Telegram, the web
├── schedules          Schedules: runs the schedules' prompts, posts their answers to chats
├── recovery           Recovery: at start, closes or runs what a stopped daemon left unfinished
├── console            the console socket for ``piano console``
├── metrics            MetricsServer: /health and /metrics ([metrics] enabled)
└── alerts             Alerts: tells the owner, once per incident, when codex keeps failing, a
                       provider is down, the disk is nearly full or a supervisor gave up
```

rest_for_one because each child needs the ones before it: everything writes to the store,
threads need Codex, surfaces need threads. But the store and Codex each sit under a supervisor
of their own, so that a crash of either restarts it alone: the event pipeline retries its
writes while the store comes back, and thread actors monitor the Codex client (a running turn
ends interrupted, the next one resumes the thread on the new process). Only a child that
keeps failing past its supervisor's intensity escalates, and then rest_for_one restarts it and
everything after it. A surface that crashes restarts alone under `surfaces`.
Thread actors push their events into `events` (see `piano.events`), which delivers them to the
subscribed surfaces and writes them to the store in batches, in order per thread.
`schedules` comes after `surfaces` (it posts to their chats) and before `recovery`, so that
it has subscribed to its schedules' threads when a run a stopped daemon left is run again.
`recovery` comes after `surfaces` so that they have resubscribed to their threads: the turns a
stopped or killed daemon left running end ``interrupted`` ("the daemon stopped") and the
messages it accepted run, in order, each answer shown where its message came from.

Before the tree starts, `piano run` calls `secure_state`: umask 077, and group and other
permissions taken away from whatever daemon-owned path an earlier run left open. Every secret
the configuration reads is registered for redaction (`Config.secrets`), and log lines are
scrubbed of them.
"""

from __future__ import annotations

import logging
import os
import stat
import sys
from pathlib import Path
from typing import Any

import msgspec
import structlog

from actors import Actor, ActorRef, ActorSystem, Registry, redact
from actors.console import ConsoleServer
from piano.agents import Backend, DaemonSetup, backend_class
from piano.alerts import ALERTS, SIGNS, Alerts, Incidents
from piano.cluster import (
    claimer,
    cluster_child_spec,
    cluster_status,
    fanout_child_spec,
    fanout_publisher,
)
from piano.codex import CODEX, CodexClient
from piano.commands import Commands
from piano.config import Config, worktrees_root
from piano.events import EVENTS, event_pipeline, publisher, stored_publisher
from piano.mcp import McpAccess
from piano.mcp import child_spec as mcp_child_spec
from piano.media import Media, build_media
from piano.metrics import child_spec as metrics_child_spec
from piano.projects import Projects
from piano.schedules import SCHEDULES, PostgresSchedules, Schedules, SqliteSchedules
from piano.store import STORE, Fence, PostgresPool, StoreWriter
from piano.surfaces.telegram import TELEGRAM
from piano.surfaces.telegram import child_spec as telegram_child_spec
from piano.surfaces.terminal import SURFACE as TERMINAL_SURFACE
from piano.surfaces.terminal import TERMINAL, ChatServer
from piano.threads import (
    RECOVERY,
    THREAD_SUPERVISOR,
    THREADS,
    Recovery,
    StoreDirectory,
    ThreadKey,
    Threads,
    conversation_status,
    decide,
    interrupt,
    open_conversation,
    post_message,
    which_conversations,
)
from piano.tools import WORKSPACES, PostgresNotes, SqliteNotes
from piano.usage import USAGE_SUMMARY, DailySummary
from piano.web import WEB, record_errors
from piano.web import child_spec as web_child_spec
from supervisors import Application, Backoff, ChildSpec, DynamicSupervisor, Supervisor

__all__ = [
    "CODEX_SUPERVISOR",
    "CONSOLE",
    "LOG_SETTINGS",
    "MEDIA",
    "STORAGE",
    "SURFACES",
    "ConsoleService",
    "MediaService",
    "Reloader",
    "build_application",
    "configure_logging",
    "console_helpers",
    "secure_state",
    "systemd_unit",
]

log = structlog.get_logger("piano.daemon")

# The registered names of the tree's own supervisors and services (each child's id too). The
# other children's names are their owners': STORE (piano.store), EVENTS (piano.events), CODEX
# (piano.codex), TOOLS (piano.mcp), THREAD_SUPERVISOR, THREADS and RECOVERY (piano.threads),
# and each surface's (piano.surfaces.terminal.TERMINAL, piano.web.WEB, ...).
STORAGE = "storage"
"""The supervisor of the store writer, so that it restarts alone."""
CODEX_SUPERVISOR = "codex_supervisor"
"""The supervisor of the Codex client, so that it restarts alone (with back-off)."""
MEDIA = "media"
"""`MediaService`."""
SURFACES = "surfaces"
"""The supervisor of the surfaces."""
CONSOLE = "console"
"""`ConsoleService`, the ``piano console`` socket."""


class ConsoleService(Actor):
    """Serves the console socket for the life of the tree; its sessions have Piano's
    conversation helpers (`console_helpers`) beside the runtime's."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.server: ConsoleServer | None = None

    def describe(self) -> str:
        return f"console socket {self.path}"

    async def init(self) -> None:
        self.trap_exits = True
        self.server = ConsoleServer(self.system, self.path, console_helpers(self.system))
        await self.server.start()

    async def terminate(self, reason: object) -> None:
        if self.server is not None:
            await self.server.close()


def console_helpers(system: ActorSystem) -> dict[str, Any]:
    """The console's conversation helpers: the client API of `piano.threads` (the same calls
    the surfaces make), plus ``conversations()`` (every live conversation actor by key) and
    ``conversation(surface, conversation, agent)`` (its actor, started if need be)."""

    def router() -> ActorRef:
        threads = system.whereis(THREADS)
        if threads is None:
            raise LookupError("the thread router is not running")
        return threads

    async def conversations() -> dict[ThreadKey, ActorRef]:
        """Every live conversation actor, by key."""
        return await which_conversations(router())

    async def conversation(surface: str, conversation: str, agent: str = "default") -> ActorRef:
        """The actor of a conversation, started if it is not alive."""
        return await open_conversation(router(), ThreadKey(surface, conversation, agent))

    async def cluster() -> list[str]:
        """The cluster as `piano status` shows it (members, partitions, leases)."""
        return await cluster_status(system)

    return {
        "cluster_status": cluster,
        "conversations": conversations,
        "conversation": conversation,
        "ThreadKey": ThreadKey,
        "conversation_status": conversation_status,
        "decide": decide,
        "interrupt": interrupt,
        "post_message": post_message,
    }


class MediaService(Actor):
    """Owns the surfaces' shared `Media` and closes its HTTP clients when the tree stops
    (after the surfaces, which are started after it)."""

    def __init__(self, media: Media) -> None:
        self.media = media

    def describe(self) -> str:
        return "voice transcription, images and files for the surfaces"

    async def init(self) -> None:
        self.trap_exits = True

    async def terminate(self, reason: object) -> None:
        await self.media.close()


class _LogSettings:
    """The level and the renderer every log line goes through, changeable while running
    (structlog caches each logger's processors on first use, so a reload changes these
    objects rather than structlog's configuration)."""

    def __init__(self) -> None:
        self.level = logging.INFO
        self.render: Any = structlog.processors.JSONRenderer()

    def apply(self, config: Config) -> None:
        self.level = getattr(logging, config.daemon.log_level.upper())
        self.render = (
            structlog.processors.JSONRenderer()
            if config.daemon.log_format == "json"
            else structlog.dev.ConsoleRenderer()
        )

    def gate(self, logger: Any, method_name: str, event_dict: Any) -> Any:
        """Drop a line below the current level."""
        if _LEVELS.get(method_name, logging.INFO) < self.level:
            raise structlog.DropEvent
        return event_dict

    def renderer(self, logger: Any, method_name: str, event_dict: Any) -> str:
        """The line, every registered secret scrubbed from it (crash reports show state)."""
        return redact(self.render(logger, method_name, event_dict))


_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "exception": logging.ERROR,
    "critical": logging.CRITICAL,
}
LOG_SETTINGS = _LogSettings()
"""The running daemon's log level and format (`configure_logging`; SIGHUP changes them)."""


class StorePool(Actor):
    """Owns the PostgreSQL store's shared connections (the OpenAI notes and histories) and
    closes them when the tree stops, after everything that uses them."""

    def __init__(self, pool: PostgresPool) -> None:
        self.pool = pool

    def describe(self) -> str:
        return f"PostgreSQL connections of the features' tables at {self.pool.location}"

    async def init(self) -> None:
        self.trap_exits = True

    async def terminate(self, reason: object) -> None:
        await self.pool.close()


def configure_logging(config: Config) -> None:
    """structlog for a daemon: JSON lines (or readable console lines), one level filter; the
    standard library's warnings and errors to stderr too; every line scrubbed of secrets.
    The level and format can change later (`LOG_SETTINGS.apply`, what SIGHUP does)."""
    LOG_SETTINGS.apply(config)
    renderer = LOG_SETTINGS.renderer
    structlog.configure(
        processors=[
            SIGNS.observe,  # before the level filter: alerts count what any level hides
            LOG_SETTINGS.gate,
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.format_exc_info,
            record_errors,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    # the libraries' standard logging (aiohttp, uvicorn, the MCP SDK, ...) rendered the same
    # way, scrubbed the same way: every line the daemon writes is structured, tracebacks too
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.stdlib.add_logger_name,
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso"),
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    logging.basicConfig(handlers=[handler], level=logging.WARNING, force=True)


RELOADABLE = ("daemon.log_level", "daemon.log_format")
"""The keys SIGHUP applies to the running daemon; every other change waits for a restart."""


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flat(item, f"{prefix}{key}."))
        return flat or {prefix.rstrip("."): value}
    return {prefix.rstrip("."): value}


class Reloader:
    """What SIGHUP does: read the configuration file again and apply what can change while
    running (`RELOADABLE`: the log level and format). Every other key that changed is named
    in a warning (``daemon.reload_needs_restart``) and takes effect at the next start. A file
    that no longer loads is refused (``daemon.reload_refused``, its one-line error) and the
    daemon goes on with the configuration it has."""

    def __init__(self, path: str | None, config: Config) -> None:
        self.path = path
        self.config = config

    def __call__(self) -> None:
        from piano.config import ConfigError, load_config

        try:
            new = load_config(self.path)
        except ConfigError as exc:
            log.error("daemon.reload_refused", error=str(exc))
            return
        old_keys = _flat(msgspec.to_builtins(self.config))
        new_keys = _flat(msgspec.to_builtins(new))
        changed = sorted(
            k
            for k in old_keys.keys() | new_keys.keys()
            if old_keys.get(k, None) != new_keys.get(k, None)
        )
        applied = [key for key in changed if key in RELOADABLE]
        later = [key for key in changed if key not in RELOADABLE]
        self.config = msgspec.structs.replace(
            self.config,
            daemon=msgspec.structs.replace(
                self.config.daemon,
                log_level=new.daemon.log_level,
                log_format=new.daemon.log_format,
            ),
        )
        log.info("daemon.reloaded", applied=applied)  # in the format it had
        LOG_SETTINGS.apply(self.config)
        if later:
            log.warning("daemon.reload_needs_restart", keys=later)


def systemd_unit(config_path: Path, config: Config) -> str:
    """A systemd unit running ``piano run --config config_path`` with this Python: restarted
    on failure (a tree that gave up exits 1), stopped with SIGTERM and given the tree's
    shutdown timeout plus a margin, reloaded (``systemctl reload``) with SIGHUP. Secrets come
    from an optional owner-only environment file, never from the unit."""
    stop = int(config.daemon.shutdown_timeout) + 15
    return f"""[Unit]
Description=Piano agent daemon
After=network-online.target
Wants=network-online.target

[Service]
Type=exec
WorkingDirectory={Path(__file__).resolve().parents[1]}
ExecStart={sys.executable} -m piano.cli run --config {config_path}
ExecReload=/bin/kill -HUP $MAINPID
EnvironmentFile=-%h/.config/piano/env
Restart=on-failure
RestartSec=2
KillSignal=SIGTERM
TimeoutStopSec={stop}
UMask=0077

[Install]
WantedBy=default.target
"""


WEB_TOKENS = "web-tokens.json"
"""The web surface's saved token rotations (digests only), in the state directory."""

OWNER_ONLY_UMASK = 0o077
"""The daemon's umask: everything it (and codex, which inherits it) creates is owner-only."""


def secure_state(config: Config) -> None:
    """Make the daemon's files owner-only, before anything is started.

    Sets the umask to 077 for the process (codex and every other child inherit it), creates
    the state directory 0700, and takes group and other permissions away from what an earlier
    version or another umask left open: the state directory, the database and its journal
    files, the web token file, codex's home and TMPDIR, and each agent's and the jails'
    workspaces (conversations, rollouts and users' files live there). Each path it changes is
    logged (``daemon.mode_fixed``) with its old and new mode.
    """
    from piano.codex import codex_dirs

    os.umask(OWNER_ONLY_UMASK)
    state = config.state_path(".")
    state.mkdir(mode=0o700, parents=True, exist_ok=True)
    database = config.state_path(config.daemon.database)
    paths = [
        state,
        *codex_dirs(config),
        database,
        *(database.with_name(database.name + suffix) for suffix in ("-wal", "-shm")),
        config.state_path(WEB_TOKENS),
        Path(config.tools.jail.workspace_root).expanduser(),
        *(Path(agent.workspace).expanduser() for agent in config.agents.values()),
    ]
    for path in paths:
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except FileNotFoundError:
            continue
        if mode & 0o077:
            path.chmod(mode & 0o700)
            log.warning(
                "daemon.mode_fixed", path=str(path), was=f"{mode:04o}", now=f"{mode & 0o700:04o}"
            )


def build_application(config: Config) -> Application:
    """The daemon's tree for `config` (see the module documentation). Every secret the
    configuration reads is registered for redaction first (`Config.secrets`)."""
    config.secrets()  # each value registered for redaction as it becomes a Secret
    state = config.state_path(".")
    state.mkdir(parents=True, exist_ok=True)
    database = config.state_path(config.daemon.database)
    sessions = Registry(keys="unique")
    conversations = Registry(keys="unique")  # the daemon's, so it outlives a restarted Threads
    subscriptions = Registry(keys="duplicate")
    application: Application
    location = config.store_location()
    pool = location.pool() if location.backend == "postgres" else None
    # one connection (SQLite) or pool (PostgreSQL): Codex's (over MCP) and OpenAI agents' notes
    notes: SqliteNotes | PostgresNotes = (
        SqliteNotes(database) if pool is None else PostgresNotes(pool)
    )

    schedule_book: SqliteSchedules | PostgresSchedules = (
        SqliteSchedules(database) if pool is None else PostgresSchedules(pool)
    )

    def store() -> ActorRef | None:
        return application.system.whereis(STORE) if application.system else None

    threads_directory = StoreDirectory(
        store,
        location,
        config.agents,
        settle=stored_publisher(lambda: application.system),
        limits=config.limits,
    )

    publish = publisher(lambda: application.system)

    def conversation_of(thread_id: str) -> tuple[str, str, str] | None:
        record = threads_directory.reader.thread(thread_id)
        return None if record is None else (record.surface, record.conversation, record.agent)

    chat_socket = str(config.state_path(config.daemon.chat_socket))
    console_socket = str(config.state_path(config.daemon.console_socket))
    media = (
        build_media(config.media, config.agents, config.providers) if config.media.enabled else None
    )
    access = McpAccess.from_config(config.tools.mcp)
    codex_config = access.codex_thread_config if config.tools.mcp.enabled else None
    setup = DaemonSetup(config, database, sessions, notes, codex_config, pool)
    backends: dict[str, Backend] = {
        name: backend_class(name).for_daemon(setup)
        for name in sorted({"codex", *(agent.backend for agent in config.agents.values())})
    }
    web_address = (config.web.host, config.web.port) if config.web.enabled else None
    commands = Commands(config)
    surfaces = [
        ChildSpec(
            TERMINAL_SURFACE,
            start=lambda: ChatServer(
                chat_socket,
                subscriptions,
                threads_directory,
                config.default_agent,
                web=web_address,
                commands=commands,
            ),
            name=TERMINAL,
        )
    ]
    if config.web.enabled:
        surfaces.append(
            web_child_spec(
                config.web,
                subscriptions=subscriptions,
                directory=threads_directory,
                store_path=location,
                default_agent=config.default_agent,
                media=media,
                tokens_path=str(config.state_path(WEB_TOKENS)),
                commands=commands,
                prices=config.prices,
            )
        )
    if config.telegram is not None and config.telegram.enabled:
        surfaces.append(
            telegram_child_spec(
                config.telegram,
                subscriptions=subscriptions,
                directory=threads_directory,
                store_path=location,
                default_agent=config.default_agent,
                agents=sorted(config.agents),
                media=media,
                web=web_address,
                commands=commands,
                alert_chats=config.alerts.telegram_chats or None,
            )
        )
    incidents = Incidents(config.alerts)  # the daemon's: they outlive a restarted `alerts`
    alert_surfaces = {"telegram": TELEGRAM, "terminal": TERMINAL, "web": WEB}

    def alerts() -> Alerts:
        return Alerts(config, incidents, to=[alert_surfaces[name] for name in config.alerts.to])

    # a cluster's node writes only the threads it holds a lease of (piano.cluster)
    fence = Fence(config.cluster.node()) if config.cluster is not None else None
    store_spec = ChildSpec(
        STORE,
        start=lambda: StoreWriter(database if pool is None else location.opener(fence)),
        name=STORE,
        shutdown=30.0,
    )
    codex_spec = ChildSpec(
        CODEX,
        start=lambda: CodexClient(config, sessions),
        name=CODEX,
        backoff=Backoff(initial=config.codex.restart_backoff, cap=config.codex.restart_backoff_cap),
        shutdown=10.0,
        init_timeout=60.0,
    )
    fanout = fanout_child_spec(config.cluster, subscriptions, location) if config.cluster else None
    children = [
        ChildSpec(
            STORAGE,
            start=lambda: Supervisor([store_spec], max_restarts=3, max_seconds=30),
            name=STORAGE,
            type="supervisor",
        ),
        *(
            [
                cluster_child_spec(
                    config.cluster,
                    location.dsn,
                    fence,
                    conversations,
                    connect_timeout=config.store.connect_timeout,
                )
            ]
            if config.cluster is not None and fence is not None
            else []
        ),
        *(
            [ChildSpec("store_pool", start=lambda: StorePool(pool), name="store_pool")]
            if pool
            else []
        ),
        ChildSpec(
            EVENTS,
            start=lambda: event_pipeline(
                subscriptions,
                store,
                committed=fanout_publisher(lambda: application.system) if fanout else None,
            ),
            name=EVENTS,
            type="supervisor",
        ),
        ChildSpec(
            CODEX_SUPERVISOR,
            start=lambda: Supervisor([codex_spec], max_restarts=5, max_seconds=30),
            name=CODEX_SUPERVISOR,
            type="supervisor",
        ),
        ChildSpec(
            WORKSPACES,
            start=lambda: Projects(
                config.projects,
                state=state,
                worktrees=worktrees_root(config),
                key_of=conversation_of,
            ),
            name=WORKSPACES,
        ),
        mcp_child_spec(config.tools, access, publish=publish, notes=notes),
        ChildSpec(
            THREAD_SUPERVISOR, start=DynamicSupervisor, name=THREAD_SUPERVISOR, type="supervisor"
        ),
        ChildSpec(
            THREADS,
            start=lambda: Threads(
                config,
                threads_directory,
                publish,
                backends,
                conversations=conversations,
                claim=claimer(lambda: application.system) if config.cluster else None,
            ),
            name=THREADS,
        ),
        *([ChildSpec(MEDIA, start=lambda: MediaService(media), name=MEDIA)] if media else []),
        ChildSpec(SURFACES, start=lambda: Supervisor(surfaces), type="supervisor", name=SURFACES),
        ChildSpec(
            SCHEDULES,
            start=lambda: Schedules(
                config, schedule_book, threads_directory, subscriptions, publish
            ),
            name=SCHEDULES,
        ),
        ChildSpec(RECOVERY, start=Recovery, name=RECOVERY),
        *(
            [
                ChildSpec(
                    USAGE_SUMMARY,
                    start=lambda: DailySummary(config, threads_directory, publish),
                    name=USAGE_SUMMARY,
                )
            ]
            if config.usage.daily_summary
            else []
        ),
        ChildSpec(CONSOLE, start=lambda: ConsoleService(console_socket), name=CONSOLE),
        *([metrics_child_spec(config.metrics)] if config.metrics.enabled else []),
        *([ChildSpec(ALERTS, start=alerts, name=ALERTS)] if config.alerts.enabled else []),
        *([fanout] if fanout else []),  # last: nothing depends on it, so it restarts alone
    ]
    application = Application(
        children,
        name="piano",
        strategy="rest_for_one",
        max_restarts=5,
        max_seconds=30,
        shutdown_timeout=config.daemon.shutdown_timeout,
    )
    return application
