"""Piano's client for `codex app-server` (stdio JSON-RPC, typed by `schemas.codex`).

`CodexClient` is the supervised actor that owns the process; see `piano.codex._client`.

`CodexProcess` owns one app-server process: handshake, correlated requests with timeouts,
server → client requests routed to handlers (everything else answered with an error),
notifications handed on with their thread id, stderr captured, exit detected.
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
    codex_writable_roots,
)
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
from ._translate import EVENT_TEXT_LIMIT

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
    "NotificationCallback",
    "ProbeProvider",
    "ProviderAnswer",
    "RequestHandler",
    "codex_dirs",
    "codex_environment",
    "codex_process",
    "codex_writable_roots",
    "find_codex_binary",
    "probe_provider",
]
