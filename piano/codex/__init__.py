"""Piano's client for `codex app-server` (stdio JSON-RPC, typed by `schemas.codex`).

`CodexProcess` owns one app-server process: handshake, correlated requests with timeouts,
server → client requests routed to handlers (everything else answered with an error),
notifications handed on with their thread id, stderr captured, exit detected.
"""

from __future__ import annotations

from ._binary import find_codex_binary
from ._rpc import (
    CodexError,
    CodexExited,
    CodexProcess,
    CodexRpcError,
    CodexTimeout,
    NotificationCallback,
    RequestHandler,
)

__all__ = [
    "CodexError",
    "CodexExited",
    "CodexProcess",
    "CodexRpcError",
    "CodexTimeout",
    "NotificationCallback",
    "RequestHandler",
    "find_codex_binary",
]
