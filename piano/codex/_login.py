"""The ChatGPT login in progress, as the Codex client keeps it (`piano.account` drives it).

Codex's login callback server lives in the codex process, so the login in progress belongs to
the client that owns that process: `RememberLogin` (cast) records it, `PendingLogin` (call)
reads it, and `LoginOutcome` (call) answers once codex's ``account/login/completed`` has come
(at once if it already has).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LoginOutcome", "PendingLogin", "RememberLogin"]


@dataclass(frozen=True, slots=True)
class RememberLogin:
    """Cast to the Codex client: the ChatGPT login codex started and where it waits."""

    login_id: str
    redirect_uri: str
    state: str


@dataclass(frozen=True, slots=True)
class PendingLogin:
    """Call to the Codex client. Reply: the `RememberLogin` of the login in progress, or
    None."""


@dataclass(frozen=True, slots=True)
class LoginOutcome:
    """Call to the Codex client: how login `login_id` ended, once codex says so. Reply:
    ``(success, error)``."""

    login_id: str
