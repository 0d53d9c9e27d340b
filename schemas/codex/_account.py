"""The Codex account: ``account/read``, ``account/rateLimits/read``, ``account/login/start``
(ChatGPT), ``account/login/cancel``, ``account/logout`` and the ``account/login/completed``
notification, as codex 0.169 speaks them (checked against ``codex app-server
generate-json-schema`` and the running binary).

Without a login and with a provider of Piano's own, ``account/read`` answers
``{"account": null, "requiresOpenaiAuth": ...}`` and ``account/rateLimits/read`` fails with
-32600 "codex account authentication required to read rate limits". A ChatGPT login answers an
``authUrl`` whose ``redirect_uri`` is codex's own callback server on the daemon's machine
(``http://127.0.0.1:1455/auth/callback``); codex exchanges the code it receives there with
auth.openai.com and then sends ``account/login/completed`` (``success``, ``error``).
"""

from __future__ import annotations

from typing import Literal

from ._threads import Request, _In


class Account(_In):
    """The account codex uses: ``type`` is ``chatgpt`` (with its email and plan),
    ``apiKey``, ``amazonBedrock`` or ``gcp`` (one struct, so a new kind still decodes)."""

    type: str
    email: str | None = None
    plan_type: str | None = None
    workspace_name: str | None = None


class AccountReadResponse(_In):
    requires_openai_auth: bool
    account: Account | None = None


class AccountReadParams(Request[AccountReadResponse]):
    method = "account/read"
    response_type = AccountReadResponse
    refresh_token: bool | None = None


class RateLimitWindow(_In):
    used_percent: int
    window_duration_mins: int | None = None
    resets_at: int | None = None


class RateLimitSnapshot(_In):
    limit_id: str | None = None
    limit_name: str | None = None
    plan_type: str | None = None
    primary: RateLimitWindow | None = None
    secondary: RateLimitWindow | None = None
    rate_limit_reached_type: str | None = None


class RateLimitsReadResponse(_In):
    rate_limits: RateLimitSnapshot
    rate_limits_by_limit_id: dict[str, RateLimitSnapshot] | None = None


class RateLimitsReadParams(Request[RateLimitsReadResponse]):
    method = "account/rateLimits/read"
    response_type = RateLimitsReadResponse


class LoginStartResponse(_In):
    type: str
    login_id: str | None = None
    auth_url: str | None = None


class ChatgptLoginStartParams(Request[LoginStartResponse]):
    method = "account/login/start"
    response_type = LoginStartResponse
    type: Literal["chatgpt"]


class LoginCancelResponse(_In):
    pass


class LoginCancelParams(Request[LoginCancelResponse]):
    method = "account/login/cancel"
    response_type = LoginCancelResponse
    login_id: str


class LogoutResponse(_In):
    pass


class LogoutParams(Request[LogoutResponse]):
    method = "account/logout"
    response_type = LogoutResponse


class LoginCompletedNotification(_In):
    success: bool
    login_id: str | None = None
    error: str | None = None
