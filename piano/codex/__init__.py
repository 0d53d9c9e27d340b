"""Piano's client for `codex app-server` (stdio JSON-RPC, typed by `schemas.codex`).

`CodexClient` is the supervised actor that owns the process; see `piano.codex._client`.
`connection` finds the live process (waiting while Codex restarts), `Translator` turns one
thread's notifications into Piano's events: both for the Codex agent backend
(`piano.agents.codex`).

`CodexProcess` owns one app-server process: handshake, correlated requests with timeouts,
server → client requests routed to handlers (everything else answered with an error),
notifications handed on with their thread id, stderr captured, exit detected.

The Codex account's chat commands (``/codexlogin``, ...) are `piano.account`'s; the login in
progress is kept by the client (`RememberLogin`, `PendingLogin`, `LoginOutcome`).
"""

from __future__ import annotations

from ._binary import find_codex_binary
from ._client import (
    CODEX,
    ApprovalAsked,
    CodexClient,
    CodexNotification,
    ProbeProvider,
    codex_dirs,
    codex_environment,
    codex_process,
    codex_provider_id,
    codex_writable_roots,
    connection,
)
from ._login import LoginOutcome, PendingLogin, RememberLogin
from ._probe import ProviderAnswer, probe_provider
from ._rpc import (
    CodexError,
    CodexExited,
    CodexProcess,
    CodexRpcError,
    CodexTimeout,
    NotificationCallback,
    RequestHandler,
)
from ._translate import EVENT_TEXT_LIMIT, Translator

__all__ = [
    "CODEX",
    "EVENT_TEXT_LIMIT",
    "ApprovalAsked",
    "CodexClient",
    "CodexError",
    "CodexExited",
    "CodexNotification",
    "CodexProcess",
    "CodexRpcError",
    "CodexTimeout",
    "LoginOutcome",
    "NotificationCallback",
    "PendingLogin",
    "ProbeProvider",
    "ProviderAnswer",
    "RememberLogin",
    "RequestHandler",
    "Translator",
    "codex_dirs",
    "codex_environment",
    "codex_process",
    "codex_provider_id",
    "codex_writable_roots",
    "connection",
    "find_codex_binary",
    "probe_provider",
]
