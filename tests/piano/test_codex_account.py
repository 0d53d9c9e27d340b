"""The Codex account's commands (`piano.account`): only the daemon's owner runs them, and a
pasted sign-in address is relayed only as its code and state, only to the callback codex gave,
only for the login in progress."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import pytest

from piano.account import _callback
from piano.agents import ThreadKey
from piano.codex import RememberLogin
from piano.commands import COMMANDS, CommandError, Commands

if TYPE_CHECKING:
    from actors import ActorSystem
    from piano.config import Config

pytestmark = pytest.mark.anyio

PENDING = RememberLogin("login-1", "http://127.0.0.1:1455/auth/callback", "the-state")
ACCOUNT = ("codexlogin", "codexaccount", "codexlogout", "restartcodex")


async def test_only_the_daemons_owner_may_touch_the_codex_account() -> None:
    assert {c.name for c in COMMANDS if c.owner_only} >= set(ACCOUNT)
    for name in ACCOUNT:
        reply = await Commands(cast("Config", None)).run(
            f"/{name}",
            system=cast("ActorSystem", None),  # refused before anything is reached
            key=ThreadKey("telegram", "1", "default"),
            thread_id=None,
            user="1002",
            owner=False,
        )
        assert reply == f"/{name} is for the daemon's owner only."


def test_the_relayed_address_is_codexs_callback_with_only_the_code_and_state() -> None:
    pasted = " <localhost:1455/auth/callback?code=abc&state=the-state&next=http://evil/&x=1> "
    relayed = _callback(pasted, PENDING)
    assert relayed == "http://127.0.0.1:1455/auth/callback?code=abc&state=the-state"


@pytest.mark.parametrize(
    "pasted",
    [
        "http://example.org:1455/auth/callback?code=abc&state=the-state",
        "http://localhost:1456/auth/callback?code=abc&state=the-state",
        "http://localhost:1455/other?code=abc&state=the-state",
        "http://localhost:notaport/auth/callback?code=abc&state=the-state",
        "http://localhost:1455/auth/callback?code=abc&state=another",
        "http://localhost:1455/auth/callback?code=abc",
    ],
)
def test_any_other_address_or_another_logins_state_is_refused(pasted: str) -> None:
    with pytest.raises(CommandError):
        _callback(pasted, PENDING)
