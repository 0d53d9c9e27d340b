"""`piano doctor`: check what Piano needs on this machine, and say how to fix what is missing.

Each check prints one line, ``ok`` or ``FAIL``, with what it found and, on failure, the fix.
The exit status is 0 when every check passed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import structlog

from piano.config import Config, ConfigError, load_config

__all__ = ["Check", "run_checks"]

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        status = "ok  " if self.ok else "FAIL"
        fix = f"\n      fix: {self.fix}" if not self.ok and self.fix else ""
        return f"{status} {self.name}: {self.detail}{fix}"


def _version(command: list[str]) -> str | None:
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    output = (result.stdout or result.stderr).strip().splitlines()
    return output[0] if result.returncode == 0 and output else None


def check_codex(config: Config | None) -> Check:
    from piano.codex import find_codex_binary

    pinned_file = REPO / "scripts" / "codex-version"
    pinned = pinned_file.read_text().strip() if pinned_file.exists() else None
    try:
        binary = (
            Path(config.codex.binary) if config is not None and config.codex.binary else None
        ) or find_codex_binary()
    except Exception as exc:
        return Check("codex", False, str(exc), "run scripts/bootstrap (installs @openai/codex)")
    version = _version([str(binary), "--version"])
    if version is None:
        return Check("codex", False, f"{binary} does not run", "run scripts/bootstrap")
    if pinned and pinned not in version:
        return Check(
            "codex",
            False,
            f"{binary} is {version}, Piano is pinned to {pinned}",
            f"npm install --prefix .codex @openai/codex@{pinned} (or scripts/bootstrap)",
        )
    return Check("codex", True, f"{version} at {binary}")


def check_codex_starts(config: Config) -> Check:
    """Start ``codex app-server`` as the daemon would (providers, args, CODEX_HOME) and
    complete the handshake: codex refuses some configurations only when it starts."""
    from piano.codex import CodexError, codex_process

    async def start() -> None:
        process = codex_process(config)
        try:
            await asyncio.wait_for(process.start(), 60)
        finally:
            await process.close()

    try:
        asyncio.run(start())
    except (CodexError, OSError, TimeoutError) as exc:
        reason = " ".join(str(exc).split()).split(" Stack backtrace:")[0]
        return Check(
            "codex start",
            False,
            reason[:500],
            "fix what codex names above in [providers] or [codex] args of the config",
        )
    return Check("codex start", True, "app-server starts and answers with this config")


def check_provider_keys(config: Config, environ: Mapping[str, str] = os.environ) -> Check:
    """Every agent's API key variable is set: for a codex agent its provider's `env_key`, for
    an openai agent what its endpoint resolves to (`api_key_env`, else the provider's). Else
    the first turn fails with a missing-variable error."""
    from piano.agents import backend_class

    missing: set[str] = set()
    for name, agent in config.agents.items():
        problem = backend_class(agent.backend).missing_key(agent, config, environ)
        if problem is not None:
            missing.add(f"agents.{name}: {problem}")
    if missing:
        return Check(
            "api keys", False, "; ".join(sorted(missing)), "export the variables named above"
        )
    return Check("api keys", True, "every agent's key variable is set")


def check_providers(config: Config, environ: Mapping[str, str] = os.environ) -> list[Check]:
    """One real request to each configured provider (as codex or the openai backend would
    make it, with its key), and what it answered: a provider that cannot be reached or answers
    with an error fails every turn, and codex alone would not say which address or why."""
    from piano.codex import probe_provider

    async def probe_all() -> list[Check]:
        checks = []
        for name, provider in sorted(config.providers.items()):
            model = next((a.model for a in config.agents.values() if a.provider == name), None)
            answer = await probe_provider(
                provider, model, environ=environ, timeout=config.codex.probe_timeout
            )
            fix = f"start the provider, or fix providers.{name} (base_url, env_key) in the config"
            checks.append(Check(f"provider {name}", answer.ok, answer.detail, fix))
        return checks

    return asyncio.run(probe_all())


def check_surface_tokens(config: Config, environ: Mapping[str, str] = os.environ) -> Check:
    """An enabled surface's token variable is set: without it the daemon refuses to start."""
    needed = []
    if config.telegram is not None and config.telegram.enabled:
        needed.append(("telegram", config.telegram.token_env))
    if config.web.enabled:
        needed.append(("web", config.web.token_env))
    missing = [
        f"{variable} ([{surface}])" for surface, variable in needed if not environ.get(variable)
    ]
    if missing:
        return Check(
            "surface tokens",
            False,
            f"not set: {', '.join(missing)}; the daemon will not start",
            "export the variables named above",
        )
    return Check("surface tokens", True, f"{len(needed)} enabled surface(s) with a token")


def check_command(name: str, command: list[str], package: str) -> Check:
    if shutil.which(command[0]) is None:
        return Check(name, False, f"{command[0]} not found", f"apt-get install {package}")
    version = _version(command)
    if version is None:
        return Check(
            name, False, f"{command[0]} does not run", f"apt-get install --reinstall {package}"
        )
    return Check(name, True, version)


def check_bwrap() -> Check:
    found = check_command("bubblewrap", ["bwrap", "--version"], "bubblewrap")
    if not found.ok:
        return found
    probe = subprocess.run(
        ["bwrap", "--ro-bind", "/", "/", "--unshare-all", "true"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if probe.returncode != 0:
        return Check(
            "bubblewrap",
            False,
            f"{found.detail}, but a jail cannot start: {probe.stderr.strip()}",
            "allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1) "
            "or run the daemon as root",
        )
    return Check("bubblewrap", True, f"{found.detail}, a jail starts")


def check_config(path: str | None) -> tuple[Check, Config | None]:
    try:
        config = load_config(path)
    except ConfigError as exc:
        return Check("config", False, str(exc), "fix the key named above"), None
    agents = ", ".join(sorted(config.agents))
    return Check("config", True, f"{path or '(defaults)'}: agents {agents}"), config


def check_state(config: Config) -> Check:
    from piano.codex import codex_dirs

    state = config.state_path(".")
    try:
        state.mkdir(mode=0o700, parents=True, exist_ok=True)
        probe = state / ".doctor"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        return Check(
            "state",
            False,
            f"daemon.state_dir: {state} is not writable: {exc.strerror}",
            "set daemon.state_dir to a directory you can write",
        )
    home, tmp = codex_dirs(config)
    if tmp.resolve().is_relative_to(home.resolve()):
        return Check("state", False, f"codex's TMPDIR {tmp} is inside CODEX_HOME", "set codex.home")
    return Check("state", True, f"{state} writable, CODEX_HOME {home}")


def check_database(config: Config, environ: Mapping[str, str] = os.environ) -> Check:
    if config.store.backend == "postgres":
        return check_postgres(config, environ)
    from piano.store import (
        SCHEMA_VERSION,
        SchemaTooNew,
        StoreError,
        open_connection,
        owner_versions,
    )

    path = config.state_path(config.daemon.database)
    if not path.exists():
        return Check("database", True, f"{path} will be created (schema v{SCHEMA_VERSION})")
    try:
        connection = open_connection(path)
        version = connection.execute("PRAGMA user_version").fetchall()[0][0]
        integrity = connection.execute("PRAGMA quick_check").fetchall()[0][0]
        owners = owner_versions(connection)
        connection.close()
    except SchemaTooNew as exc:
        return Check(
            "database", False, str(exc), "upgrade Piano, or point daemon.database elsewhere"
        )
    except (StoreError, OSError) as exc:
        return Check(
            "database", False, f"{path}: {exc}", "restore it from a backup or move it away"
        )
    if integrity != "ok":
        return Check("database", False, f"{path}: {integrity}", "restore it from a backup")
    tables = ", ".join(f"{owner} v{n}" for owner, n in sorted(owners.items()))
    return Check(
        "database",
        True,
        f"{path}: schema v{version}{f' ({tables})' if tables else ''}, integrity ok",
    )


def check_postgres(config: Config, environ: Mapping[str, str] = os.environ) -> Check:
    """The PostgreSQL store: the DSN set, the server reachable, its version (15 or newer),
    and each owner's schema version (older: the daemon migrates it; newer: refused)."""
    from piano.store import (
        PG_SCHEMA_VERSIONS,
        StoreUnavailable,
        connect_pg,
        pg_problem,
        pg_versions,
        safe_dsn,
    )

    try:
        dsn = config.store.dsn(environ)
    except ConfigError as exc:
        return Check("database", False, str(exc), f"export {config.store.dsn_env}=postgresql://…")
    where = safe_dsn(dsn)

    async def probe() -> tuple[int, dict[str, int]]:
        connection = await connect_pg(dsn, timeout=config.store.connect_timeout)
        try:
            return connection.info.server_version, await pg_versions(connection)
        finally:
            await connection.close()

    try:
        server, versions = asyncio.run(probe())
    except StoreUnavailable as exc:
        return Check(
            "database",
            False,
            str(exc),
            f"start the server, create the database, or correct ${config.store.dsn_env}",
        )
    except Exception as exc:  # a server that answers but refuses the queries
        return Check("database", False, f"{where}: {pg_problem(exc)}", "check the role's rights")
    major = server // 10000
    if major < 15:
        return Check(
            "database", False, f"{where}: PostgreSQL {major} is too old", "use PostgreSQL 15+"
        )
    newer = {o: v for o, v in versions.items() if v > PG_SCHEMA_VERSIONS.get(o, v)}
    if newer:
        return Check(
            "database",
            False,
            f"{where}: schema {newer} is newer than this Piano's {PG_SCHEMA_VERSIONS}",
            "upgrade Piano, or point the DSN at another database",
        )
    state = (
        "schema up to date"
        if versions == PG_SCHEMA_VERSIONS
        else f"schema {versions} (the daemon migrates it to {PG_SCHEMA_VERSIONS})"
    )
    return Check("database", True, f"{where}: PostgreSQL {major}, {state}")


def check_broker(config: Config, environ: Mapping[str, str] = os.environ) -> Check:
    """A cluster's RabbitMQ broker (`[cluster.rabbitmq]`): its URL set, and a connection
    opened and closed (the URL's password never shown)."""
    from urllib.parse import urlsplit

    assert config.cluster is not None
    rabbitmq = config.cluster.rabbitmq
    try:
        url = rabbitmq.url(environ)
    except ConfigError as exc:
        return Check("broker", False, str(exc), f"export {rabbitmq.url_env}=amqp://…")
    parts = urlsplit(url)
    where = f"{parts.scheme}://{parts.hostname}:{parts.port or 5672}{parts.path or '/'}"

    async def probe() -> None:
        import aio_pika

        connection = await aio_pika.connect(url, timeout=rabbitmq.confirm_timeout)
        await connection.close()

    try:
        asyncio.run(probe())
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return Check(
            "broker",
            False,
            f"cannot connect to RabbitMQ at {where}: {reason}",
            f"start the broker, or correct ${rabbitmq.url_env}",
        )
    return Check("broker", True, f"RabbitMQ at {where} answers")


def run_checks(config_path: str | None, emit: Callable[[str], None] = print) -> int:
    """Run every check, emitting one line each; returns the exit status. The log of what the
    checks start (codex) is kept to errors: the check lines say what matters."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    config_check, config = check_config(config_path)
    checks: list[Callable[[], Check | list[Check]]] = [
        lambda: config_check,
        lambda: check_codex(config),
        check_bwrap,
        lambda: check_command("chromium", ["chromium", "--version"], "chromium"),
        lambda: check_command("chromedriver", ["chromedriver", "--version"], "chromium-driver"),
    ]
    if config is not None:
        checks += [
            lambda: check_state(config),
            lambda: check_database(config),
            lambda: check_codex_starts(config),
            lambda: check_provider_keys(config),
            lambda: check_surface_tokens(config),
            lambda: check_providers(config),
        ]
        if config.cluster is not None:
            checks.append(lambda: check_broker(config))
    failed = 0
    for check in checks:
        found = check()
        for result in found if isinstance(found, list) else [found]:
            emit(result.line())
            failed += not result.ok
    emit("all checks passed" if not failed else f"{failed} check(s) failed")
    return 1 if failed else 0
