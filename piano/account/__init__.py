"""The Codex account from a chat: ``/codexlogin``, ``/codexaccount``, ``/codexlogout`` and
``/restartcodex`` (declared in `piano.commands.COMMANDS`, all for the daemon's owner: the
account is the daemon's, every conversation's turns run on it).

Signing in with ChatGPT when the daemon may be on another machine:

1. ``/codexlogin`` asks codex for a ChatGPT login (``account/login/start``) and shows its auth
   link. Codex listens for the answer on its own callback server on the daemon's machine
   (``http://127.0.0.1:1455/auth/callback``, the link's ``redirect_uri``); the Codex client
   remembers the login (`piano.codex.RememberLogin`).
2. The user opens the link anywhere, signs in, and their browser is sent to that localhost
   address — which on their own machine does not load. They copy the address and send
   ``/codexlogin <address>``.
3. Piano relays it to codex's callback server (`finish_login`) and waits for codex's
   ``account/login/completed``: codex exchanges the code with auth.openai.com and stores the
   tokens in its home.

What is relayed is never the pasted URL itself: only its ``code``, ``state`` (which must be the
pending login's, so a stale or foreign link is refused before anything is sent) and an
``error`` of the sign-in page, to the redirect address codex gave — so a chat cannot make the
daemon fetch another address. The pasted address and the code are never logged (the command
layer logs no argument) and never reach the model (a command is not a message).

Without a login, Piano works as before: codex agents use the providers' keys.
"""

from __future__ import annotations

import hmac
import re
import urllib.parse
from datetime import UTC, datetime

import aiohttp

from actors import ActorExited, ActorRef, ActorSystem, ActorTimeout
from piano.codex import (
    CodexError,
    CodexProcess,
    CodexRpcError,
    LoginOutcome,
    PendingLogin,
    RememberLogin,
    connection,
)
from piano.commands import CommandError, Invocation
from schemas.codex import (
    AccountReadParams,
    ChatgptLoginStartParams,
    LogoutParams,
    RateLimitSnapshot,
    RateLimitsReadParams,
    RateLimitWindow,
)

__all__ = [
    "codexaccount",
    "codexlogin",
    "codexlogout",
    "finish_login",
    "restartcodex",
    "start_login",
]

_WAIT_FOR_CODEX = 60.0
"""Seconds to wait for codex's answer to a relayed callback (it asks auth.openai.com)."""


async def _codex(system: ActorSystem) -> tuple[ActorRef, CodexProcess]:
    try:
        return await connection(system, wait=15.0)
    except CodexError as exc:
        raise CommandError(f"Codex is not running right now ({exc}); try again shortly.") from None


async def start_login(system: ActorSystem) -> str:
    """Start a ChatGPT login; the auth link."""
    client, process = await _codex(system)
    try:
        started = await process.call(ChatgptLoginStartParams(type="chatgpt"), timeout=30)
    except CodexError as exc:
        raise CommandError(f"Codex could not start a login: {exc}") from None
    if not started.auth_url or not started.login_id:
        raise CommandError("Codex did not answer with a sign-in link; see the daemon's log.")
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(started.auth_url).query)
    redirect, state = query.get("redirect_uri", [""])[0], query.get("state", [""])[0]
    if not redirect or not state:
        raise CommandError("Codex's sign-in link has no callback address; see the daemon's log.")
    client.cast(RememberLogin(started.login_id, redirect, state))
    return started.auth_url


def _callback(pasted: str, pending: RememberLogin) -> str:
    """The address to relay `pasted` to: the pending login's callback, with only the pasted
    ``code``/``state``/``error``; `CommandError` for anything else."""
    text = pasted.strip().strip("<>\"'")
    if not re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", text):
        text = "http://" + text
    given, expected = urllib.parse.urlsplit(text), urllib.parse.urlsplit(pending.redirect_uri)
    try:
        port = given.port
    except ValueError:
        port = None
    if (
        given.hostname not in ("localhost", "127.0.0.1")
        or port != expected.port
        or given.path != expected.path
    ):
        raise CommandError(
            f"That is not the address codex waits on: send the address your browser shows "
            f"after signing in, which starts with http://localhost:{expected.port}"
            f"{expected.path}?code=..."
        )
    query = urllib.parse.parse_qs(given.query)
    state = query.get("state", [""])[0]
    if not hmac.compare_digest(state.encode(), pending.state.encode()):
        raise CommandError(
            "That address belongs to another sign-in (its state does not match this one's); "
            "send /codexlogin for a new link and use the address it leads to."
        )
    kept: dict[str, str] = {
        name: query[name][0] for name in ("code", "state", "error") if name in query
    }
    return f"{pending.redirect_uri}?{urllib.parse.urlencode(kept)}"


async def finish_login(system: ActorSystem, pasted: str) -> str:
    """Relay the address the user's browser landed on to codex's callback; what codex said."""
    client, _ = await _codex(system)
    pending: RememberLogin | None = await client.call(PendingLogin(), timeout=10)
    if pending is None:
        raise CommandError("No sign-in is in progress: send /codexlogin for a link first.")
    target = _callback(pasted, pending)
    timeout = aiohttp.ClientTimeout(total=_WAIT_FOR_CODEX)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(target, allow_redirects=False) as answer,
        ):
            status = answer.status
            body = (await answer.text())[:200]
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise CommandError(
            f"Codex's sign-in callback did not answer ({exc.__class__.__name__}); its login may "
            "have ended with a Codex restart: send /codexlogin for a new link."
        ) from None
    if status >= 400:
        raise CommandError(f"Codex refused the address ({status}: {body.strip()[:80]}).")
    try:
        success, error = await client.call(LoginOutcome(pending.login_id), timeout=_WAIT_FOR_CODEX)
    except (ActorExited, ActorTimeout):
        why = "Codex did not say whether the sign-in worked; try /codexaccount."
        raise CommandError(why) from None
    if not success:
        return f"Codex could not complete the sign-in: {error or 'no reason given'}."
    return "Codex is signed in.\n" + await _account_lines(system)


def _window(name: str, window: RateLimitWindow | None) -> str | None:
    if window is None:
        return None
    line = f"  {name}: {window.used_percent}% used"
    if window.window_duration_mins:
        line += f" of a {window.window_duration_mins}-minute window"
    if window.resets_at:
        line += f", resets {datetime.fromtimestamp(window.resets_at, UTC):%Y-%m-%d %H:%M} UTC"
    return line


def _limits(snapshot: RateLimitSnapshot) -> list[str]:
    lines = [
        line
        for line in (_window("primary", snapshot.primary), _window("secondary", snapshot.secondary))
        if line is not None
    ]
    if snapshot.rate_limit_reached_type:
        lines.append(f"  reached: {snapshot.rate_limit_reached_type}")
    return lines or ["  none reported"]


async def _account_lines(system: ActorSystem) -> str:
    _, process = await _codex(system)
    try:
        read = await process.call(AccountReadParams(), timeout=30)
    except CodexError as exc:
        raise CommandError(f"Codex could not read its account: {exc}") from None
    account = read.account
    if account is None:
        needs = " (codex's own OpenAI provider needs a sign-in or OPENAI_API_KEY)"
        lines = [
            "Codex is not signed in to an account: agents use the configured providers' keys"
            + (needs if read.requires_openai_auth else "")
            + "."
        ]
    elif account.type == "chatgpt":
        email, plan = account.email or "no email", account.plan_type or "unknown"
        lines = [f"Codex account: ChatGPT, {email}, plan {plan}"]
        if account.workspace_name:
            lines.append(f"Workspace: {account.workspace_name}")
    else:
        lines = [f"Codex account: {account.type}"]
    try:
        limits = await process.call(RateLimitsReadParams(), timeout=30)
    except CodexRpcError as exc:
        lines.append(f"Rate limits: not available ({exc.message})")
    except CodexError as exc:
        lines.append(f"Rate limits: not available ({exc})")
    else:
        lines.append("Rate limits:")
        lines += _limits(limits.rate_limits)
    return "\n".join(lines)


# -- the chat commands ------------------------------------------------------------------------


async def codexlogin(invocation: Invocation, argument: str) -> str:
    """``/codexlogin``: a ChatGPT sign-in link; ``/codexlogin ADDRESS``: finish it."""
    if argument:
        return await finish_login(invocation.system, argument)
    link = await start_login(invocation.system)
    return (
        "Sign Codex in with ChatGPT:\n"
        f"1. Open {link}\n"
        "2. Sign in. Your browser then goes to an address starting with "
        "http://localhost:1455/auth/callback — it may not load; that is expected.\n"
        "3. Copy that whole address and send it here as: /codexlogin ADDRESS\n"
        "(Always with /codexlogin in front: as a plain message it would go to the agent.)"
    )


async def codexaccount(invocation: Invocation, argument: str) -> str:
    """``/codexaccount``: codex's account and its rate limits."""
    return await _account_lines(invocation.system)


async def codexlogout(invocation: Invocation, argument: str) -> str:
    """``/codexlogout``: codex forgets its ChatGPT sign-in (its stored tokens)."""
    _, process = await _codex(invocation.system)
    try:
        await process.call(LogoutParams(), timeout=30)
    except CodexError as exc:
        raise CommandError(f"Codex could not log out: {exc}") from None
    return "Codex is logged out; agents use the configured providers' keys."


async def restartcodex(invocation: Invocation, argument: str) -> str:
    """``/restartcodex``: stop the codex process; its supervisor starts a new one."""
    _, process = await _codex(invocation.system)
    await process.kill(f"/restartcodex by {invocation.user or 'the owner'}")
    return (
        "Codex is restarting: a running turn ends as interrupted, and each conversation "
        "continues its Codex thread with its next message."
    )
