"""`CodexClient`: the actor that owns one `codex app-server` process.

It starts the process (handshake included) in `init`, so a supervisor knows Codex is ready when
the client has started, and it crashes when the process exits, so its supervisor restarts it
(with back-off: see the daemon's child spec). Conversation threads do not go through its mailbox
for requests: they ask it once for the live `CodexProcess` (``call("connection")``), send their
requests on it directly (requests are correlated by id, so threads run concurrently), and
monitor the client to learn when that connection is gone.

Routing: notifications carry Codex's thread id; the client looks it up in the `sessions`
registry (where thread actors register their Codex thread id) and sends the notification to
that actor as a `CodexNotification`, in stdout order. Approval requests (to run a command, to
apply a file change, and MCP elicitations asking whether a tool may run) are forwarded to the
thread actor as a call (`ApprovalAsked`) that it answers when the user decides; a request for a
thread with no live actor is declined, as is any other MCP elicitation (a form Piano cannot
show), and anything else Codex asks is answered with a JSON-RPC error by `CodexProcess`, so
nothing is left hanging.

Health: the process runs with a watchdog (`[codex] watchdog_interval`/`watchdog_timeout`), so a
hung codex is killed, logged and restarted within seconds. A thread whose turn failed because of
its provider asks the client (``call(ProbeProvider(name))``) what that provider answers to a
request of Piano's own (`piano.codex.probe_provider`): its address, status and message, which
codex does not pass on. The probe runs beside the mailbox, so the client keeps answering.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from actors import NOREPLY, ActorExited, ActorRef, ActorSystem, Backoff, Caller, Registry
from actors import Actor as _Actor
from piano.codex._login import LoginOutcome, PendingLogin, RememberLogin
from piano.codex._namespace import codex_namespace
from piano.codex._probe import probe_provider
from piano.codex._rpc import CodexExited, CodexProcess, CodexRpcError
from piano.config import codex_dirs, codex_writable_roots
from schemas.codex import (
    CommandExecutionRequestApprovalParams,
    CommandExecutionRequestApprovalResponse,
    FileChangeRequestApprovalParams,
    FileChangeRequestApprovalResponse,
    LoginCompletedNotification,
    McpServerElicitationRequestParams,
    McpServerElicitationRequestResponse,
    RpcRequest,
)

if TYPE_CHECKING:
    from piano.config import Config

__all__ = [
    "CODEX",
    "ApprovalAsked",
    "CodexClient",
    "CodexNotification",
    "ProbeProvider",
    "codex_dirs",
    "codex_environment",
    "codex_process",
    "codex_writable_roots",
]

CODEX = "codex"
"""The registered name of the daemon's Codex client."""


@dataclass(frozen=True, slots=True)
class CodexNotification:
    """A notification for one thread, as `handle_info` of its thread actor receives it;
    `received_at` is when its line was read from codex's stdout (wall clock)."""

    method: str
    params: Any
    received_at: float = 0.0


@dataclass(frozen=True, slots=True)
class ApprovalAsked:
    """Codex asks to run a command, apply a change or call an MCP tool; the call's reply is
    the decision ("accept", "decline" or "cancel")."""

    request_id: int | str
    params: (
        CommandExecutionRequestApprovalParams
        | FileChangeRequestApprovalParams
        | McpServerElicitationRequestParams
    )


@dataclass(frozen=True, slots=True)
class ProbeProvider:
    """Ask the configured provider `name` one question; the reply is its `ProviderAnswer`
    (address, HTTP status, the provider's message), or None for no such provider."""

    name: str


@dataclass(frozen=True, slots=True)
class _ProcessExited:
    error: CodexExited


CODEX_BUILT_IN_PROVIDERS = frozenset({"openai", "ollama", "lmstudio"})
"""Provider ids codex reserves: it refuses to start if ``model_providers`` redefines one."""


def codex_provider_id(name: str) -> str:
    """The id Piano's provider `name` has inside codex: its own name, or ``piano-<name>`` for
    a name codex reserves for a built-in provider (so ``[providers.openai]``, with its base URL
    and key variable, reaches codex as a provider of its own instead of stopping codex)."""
    return f"piano-{name}" if name in CODEX_BUILT_IN_PROVIDERS else name


def codex_args(config: Config) -> list[str]:
    """The app-server arguments: the configured ones, ``--disable unbounded_connection_retries``
    (unless they name that feature: else codex retries an unreachable provider forever and the
    turn only ends at the turn timeout, with no cause), plus every provider as ``-c``
    overrides, except those speaking ``wire_api = "chat"``, which codex refuses at start-up
    (only ``openai``-backend agents use them; the configuration refuses a codex agent on one).

    Then the sandbox: ``workspace-write`` lets the agent write its workspace, codex's TMPDIR
    (private, see `codex_dirs`) and, unless excluded, all of /tmp, where Piano's state may lie
    (a state directory under /tmp let an agent rewrite codex's config.toml); /tmp is excluded.
    `codex_writable_roots` lists what remains, and the configuration refuses state inside it.

    Then the shell environment policy: codex needs its provider's key, but the commands the
    agent runs must not see it, and codex (0.169) hands its whole environment to them unless
    told otherwise. So its key variables are excluded by name, and codex's default exclusion
    of ``*KEY*``, ``*SECRET*`` and ``*TOKEN*`` names is switched on for anything else.
    """
    args = list(config.codex.args)
    if not any("unbounded_connection_retries" in arg for arg in args):
        args += ["--disable", "unbounded_connection_retries"]
    keys = sorted(codex_key_variables(config))
    args += [
        "-c",
        "shell_environment_policy.ignore_default_excludes=false",
        "-c",
        f"shell_environment_policy.exclude={json.dumps(keys)}",
        "-c",
        "sandbox_workspace_write.exclude_slash_tmp=true",
    ]
    for name, provider in config.providers.items():
        if provider.wire_api == "chat":
            continue
        fields = [
            f'name="{name}"',
            f'base_url="{provider.base_url}"',
            f'wire_api="{provider.wire_api}"',
        ]
        if provider.env_key:
            fields.append(f'env_key="{provider.env_key}"')
        for key in ("request_max_retries", "stream_max_retries", "stream_idle_timeout_ms"):
            value = getattr(provider, key)
            if value is not None:
                fields.append(f"{key}={value}")
        args += ["-c", f"model_providers.{codex_provider_id(name)}={{{', '.join(fields)}}}"]
    return args


_PASSED_TO_CODEX = frozenset(
    {
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "SHELL",
        "TERM",
        "TZ",
        "LANG",
        "LANGUAGE",
        "RUST_LOG",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "HTTPS_PROXY",
        "HTTP_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
        "https_proxy",
        "http_proxy",
        "all_proxy",
        "no_proxy",
    }
)
"""What codex inherits from the daemon's environment besides the locale (``LC_*``): how to
find programs, who and where the user is, how to reach its provider. Nothing else: the
daemon's environment holds Piano's own secrets (the web and Telegram tokens, the MCP key, the
keys of providers codex does not use), and codex hands its environment to every command the
agent runs and writes it into ``shell_snapshots/``."""

_DEFAULT_PROVIDER_KEYS = ("OPENAI_API_KEY", "CODEX_API_KEY")
"""What codex's built-in OpenAI provider reads, passed on only to a codex agent without a
``provider`` (which therefore uses it)."""


def codex_key_variables(config: Config) -> frozenset[str]:
    """The key variables codex needs: those of the providers its agents use."""
    wanted: set[str] = set()
    for agent in config.agents.values():
        if agent.backend != "codex":
            continue
        if agent.provider is None:
            wanted.update(_DEFAULT_PROVIDER_KEYS)
        elif key := config.providers[agent.provider].env_key:
            wanted.add(key)
    return frozenset(wanted)


def codex_environment(config: Config, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The whole environment codex runs with (it inherits nothing else).

    The allow-list above, the locale, then the key variable (`env_key`) of each provider a
    codex agent uses, and CODEX_HOME and TMPDIR (`codex_dirs`). A key variable that only an
    ``openai``-backend agent or the transcriber uses stays out, as does every other variable:
    secrets are left out by not being asked for, not by recognising their names.
    """
    environ = os.environ if environ is None else environ
    wanted = _PASSED_TO_CODEX | codex_key_variables(config)
    env = {
        name: value for name, value in environ.items() if name in wanted or name.startswith("LC_")
    }
    env.setdefault("RUST_LOG", "warn")
    home, tmp = codex_dirs(config)
    env.update(CODEX_HOME=str(home), TMPDIR=str(tmp))
    return env


def codex_process(config: Config, **options: Any) -> CodexProcess:
    """A `CodexProcess` (not started) as `config` says: its binary, its providers as ``-c``
    overrides, a CODEX_HOME and TMPDIR of its own (created, owner-only), only the environment
    `codex_environment` allows, and a mount namespace where Piano's state is hidden
    (`piano.codex._namespace`); `options` go to `CodexProcess`."""
    home, tmp = codex_dirs(config)
    return CodexProcess(
        binary=config.codex.binary or None,
        wrapper=codex_namespace(config, home, tmp),
        args=codex_args(config),
        env=codex_environment(config),
        inherit_env=False,
        request_timeout=config.codex.request_timeout,
        **options,
    )


class CodexClient(_Actor):
    """Owns one codex app-server process; see the module documentation."""

    def __init__(self, config: Config, sessions: Registry) -> None:
        self.config = config
        self.sessions = sessions
        self.process: CodexProcess | None = None
        self.probes: set[asyncio.Task[None]] = set()
        self.login: RememberLogin | None = None
        self.logins: dict[str, tuple[bool, str | None]] = {}
        self.login_waiters: dict[str, list[Caller]] = {}

    def describe(self) -> str:
        pid = self.process.pid if self.process is not None else None
        return f"codex app-server pid {pid}, {self.sessions.count()} threads attached"

    async def init(self) -> None:
        self.trap_exits = True
        self.process = codex_process(
            self.config,
            on_notification=self._route,
            request_handlers={
                "item/commandExecution/requestApproval": self._approval,
                "item/fileChange/requestApproval": self._approval,
                "mcpServer/elicitation/request": self._approval,
            },
            on_exit=lambda error: self.ref.send(_ProcessExited(error)),
            watchdog_interval=self.config.codex.watchdog_interval,
            watchdog_timeout=self.config.codex.watchdog_timeout,
        )
        _close_with_owner(self.ref, self.process)
        await self.process.start()

    async def terminate(self, reason: object) -> None:
        for task in self.probes:
            task.cancel()
        if self.process is not None:
            await self.process.close()

    async def handle_call(self, message: Any, caller: Any) -> Any:
        if message == "connection":
            return self.process
        if isinstance(message, PendingLogin):
            return self.login
        if isinstance(message, LoginOutcome):
            if message.login_id in self.logins:
                return self.logins[message.login_id]
            self.login_waiters.setdefault(message.login_id, []).append(caller)
            return NOREPLY
        if isinstance(message, ProbeProvider):
            task = asyncio.create_task(self._probe(message.name, caller))
            self.probes.add(task)
            task.add_done_callback(self.probes.discard)
            return NOREPLY
        return await super().handle_call(message, caller)

    async def _probe(self, name: str, caller: Caller) -> None:
        provider = self.config.providers.get(name)
        if provider is None:
            caller.reply(None)
            return
        model = next((a.model for a in self.config.agents.values() if a.provider == name), None)
        answer = await probe_provider(provider, model, timeout=self.config.codex.probe_timeout)
        self.log.info("codex.provider_probed", provider=name, ok=answer.ok, answer=answer.detail)
        caller.reply(answer)

    def handle_cast(self, message: Any) -> None:
        if isinstance(message, RememberLogin):
            self.login = message
            return
        super().handle_cast(message)

    async def handle_info(self, message: Any) -> None:
        if isinstance(message, _ProcessExited):
            raise message.error
        await super().handle_info(message)

    def _login_completed(self, done: LoginCompletedNotification) -> None:
        """Codex's word on a ChatGPT login (see `piano.codex._account`)."""
        self.log.info("codex.login_completed", success=done.success, error=done.error)
        login_id = done.login_id or (self.login.login_id if self.login else "")
        if self.login is not None and self.login.login_id == login_id:
            self.login = None
        self.logins[login_id] = (done.success, done.error)
        for caller in self.login_waiters.pop(login_id, []):
            caller.reply((done.success, done.error))

    def _route(self, thread_id: str | None, method: str, params: Any) -> None:
        if isinstance(params, LoginCompletedNotification):
            self._login_completed(params)
            return
        if thread_id is None:
            return
        received_at = time.time()
        for ref, _ in self.sessions.lookup(thread_id):
            ref.send(CodexNotification(method, params, received_at))

    async def _approval(self, request: RpcRequest) -> Any:
        params = request.params
        assert isinstance(
            params,
            CommandExecutionRequestApprovalParams
            | FileChangeRequestApprovalParams
            | McpServerElicitationRequestParams,
        )
        entries = self.sessions.lookup(params.thread_id)
        asks = not isinstance(params, McpServerElicitationRequestParams) or params.tool_call()
        # What a thread actor answers (see `ApprovalAsked`); every approval response accepts it.
        decision: Literal["accept", "decline", "cancel"] = "decline"
        if not asks:
            assert isinstance(params, McpServerElicitationRequestParams)
            self.log.info("codex.elicitation_declined", server=params.server_name, mode=params.mode)
        elif entries:
            try:
                decision = await entries[0][0].call(ApprovalAsked(request.id, params), timeout=None)
            except ActorExited:
                decision = "decline"
        if isinstance(params, CommandExecutionRequestApprovalParams):
            return CommandExecutionRequestApprovalResponse(decision=decision)
        if isinstance(params, FileChangeRequestApprovalParams):
            return FileChangeRequestApprovalResponse(decision=decision)
        return McpServerElicitationRequestResponse(action=decision)


_owners: set[asyncio.Task[None]] = set()


def _close_with_owner(owner: ActorRef, process: CodexProcess) -> None:
    """Kill `process` once `owner` has exited, however it exited.

    Like an Erlang port, the process belongs to the actor: a client killed outright (an
    untrappable ``kill`` exit signal, which skips `terminate`) must not leave its codex
    running, or that codex keeps its threads open and the restarted client's codex is refused
    them ("thread … already has an active writer"). After a normal stop `terminate` has
    closed it already and this does nothing."""

    async def close() -> None:
        await owner.join()
        if process.pid is not None and process.exit is None:
            await process.kill("its client actor exited")

    task = asyncio.create_task(close())
    _owners.add(task)
    task.add_done_callback(_owners.discard)


_CONNECTION_BACKOFF = Backoff(initial=0.01, cap=0.5)
"""How often `connection` looks again for a codex being restarted."""


async def connection(system: ActorSystem, wait: float = 15.0) -> tuple[ActorRef, CodexProcess]:
    """The live client and its process. While Codex is being restarted, wait up to `wait`
    seconds for it (with growing pauses); then `CodexRpcError`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    pauses = _CONNECTION_BACKOFF.streak()
    while True:
        ref = system.whereis(CODEX)
        if ref is not None:
            with contextlib.suppress(ActorExited):
                process: CodexProcess | None = await ref.call("connection")
                if process is not None and process.exit is None:
                    return ref, process
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise CodexRpcError(-32603, f"codex is not running (waited {wait:g} s for a restart)")
        await asyncio.sleep(min(pauses.failed(), remaining))
