"""The Codex account through `piano run` and the real codex, typed in `piano chat` (the
daemon's owner): ``/codexaccount`` reads codex's account and rate limits, ``/codexlogin`` shows
codex's ChatGPT sign-in link and relays the address the browser lands on to codex's callback
server on the daemon's machine, ``/codexlogout`` and ``/restartcodex`` work, and the agent still
answers without any account.

Not tested here (auth.openai.com is unreachable from this machine): a sign-in that succeeds —
codex's token exchange, the tokens it stores, and ``/codexaccount`` showing a ChatGPT email,
plan and real rate limits. The relay is tested up to codex's own answer: it receives the code
and state, tries the exchange and reports its failure, which the user reads.
"""

from __future__ import annotations

import re
import urllib.parse

import pytest

from tests.acceptance.daemon import chat, daemon_running, write_config
from tests.fakes.responses_provider import CodexDirs, FakeResponsesProvider, Text

pytestmark = pytest.mark.anyio


async def test_the_codex_account_is_read_signed_in_through_a_relayed_callback_and_signed_out(
    dirs: CodexDirs,
) -> None:
    log = dirs.root / "daemon.log"
    async with FakeResponsesProvider(default=Text("still here")) as provider:
        config = write_config(dirs, provider)
        with log.open("wb") as stderr:
            async with daemon_running(config, dirs.root / "state" / "chat.sock", stderr=stderr):
                account = await chat(config, "/codexaccount")
                login = await chat(config, "/codexlogin")
                link = re.search(r"https://auth\.openai\.com/\S+", login)
                assert link is not None, login
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(link[0]).query)
                state = query["state"][0]
                callback = "http://localhost:1455/auth/callback"
                elsewhere = await chat(
                    config,
                    f"/codexlogin http://example.org:1455/auth/callback?code=c&state={state}",
                )
                stale = await chat(config, f"/codexlogin {callback}?code=c&state=not-this-one")
                relayed = await chat(
                    config, f"/codexlogin {callback}?code=secret-code&state={state}"
                )
                logout = await chat(config, "/codexlogout")
                restart = await chat(config, "/restartcodex")
                answered = await chat(config, "are you there?")
    logged = log.read_text()

    assert "Codex is not signed in to an account" in account
    assert "Rate limits: not available (codex account authentication required" in account
    assert query["redirect_uri"] == ["http://127.0.0.1:1455/auth/callback"]
    assert "/codexlogin ADDRESS" in login
    assert "That is not the address codex waits on" in elsewhere
    assert "belongs to another sign-in" in stale
    # codex got the code and state on its callback, tried auth.openai.com and said why it failed
    assert "Codex could not complete the sign-in: Login server error: Token exchange failed" in (
        relayed
    ), relayed
    assert '"codex.login_completed"' in logged
    assert "secret-code" not in logged, "the pasted code reached the daemon's log"
    assert logout.startswith("Codex is logged out")
    assert restart.startswith("Codex is restarting")
    assert "/restartcodex" in logged, "codex was killed for the restart"
    assert "still here" in answered, "the agent answers after the restart, without an account"
