"""Chat commands (`piano.commands`): one parse and one function for every surface; owner-only
commands refused to others; bad input and failures are one line, never a crash."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import pytest
import structlog

import piano.commands as commands
from piano.agents import ThreadKey
from piano.commands import Command, CommandError, Commands, Invocation, parse

if TYPE_CHECKING:
    from actors import ActorSystem
    from piano.config import Config

pytestmark = pytest.mark.anyio

KEY = ThreadKey("terminal", "default", "default")


async def _refuse(invocation: Invocation, argument: str) -> str:
    raise CommandError(f"cannot {argument}: try /whoami")


async def _break(invocation: Invocation, argument: str) -> str:
    raise RuntimeError("secret-argument-" + argument)


async def _run(text: str, *, owner: bool = True, user: str | None = "alice") -> str | None:
    runner = Commands(cast("Config", None))
    return await runner.run(
        text,
        system=cast("ActorSystem", None),
        key=KEY,
        thread_id="t1",
        user=user,
        owner=owner,
    )


def test_a_command_is_parsed_once_whatever_its_case_spacing_or_bot_suffix() -> None:
    for text in ("/whoami", "  /WhoAmI  ", "/whoami@piano_bot", "/whoami   extra words "):
        parsed = parse(text)
        assert parsed is not None
        assert parsed[0].name == "whoami"
    assert parse("/whoami   extra words ") is not None
    assert parse("/whoami   extra words ")[1] == "extra words"  # type: ignore[index]
    assert parse("whoami") is None
    assert parse("/nosuchcommand") is None
    assert parse("") is None


async def test_whoami_names_the_user_role_surface_and_thread() -> None:
    reply = await _run("/whoami")
    assert reply is not None
    assert "user: alice" in reply
    assert "role: owner" in reply
    assert "surface: terminal" in reply
    assert "thread: t1" in reply
    assert "role: user" in (await _run("/whoami", owner=False) or "")


async def test_text_that_is_no_registered_command_is_left_to_the_surface() -> None:
    assert await _run("hello there") is None
    assert await _run("/quit") is None


async def test_an_owner_only_command_is_refused_to_others_before_it_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = Command("secret", "/secret", "owner's", f"{__name__}:_break", owner_only=True)
    monkeypatch.setitem(commands._BY_NAME, "secret", secret)
    reply = await _run("/secret x", owner=False)
    assert reply == "/secret is for the daemon's owner only."


async def test_bad_input_is_the_commands_own_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    refuse = Command("refuse", "/refuse", "refuses", f"{__name__}:_refuse")
    monkeypatch.setitem(commands._BY_NAME, "refuse", refuse)
    assert await _run("/refuse fly") == "cannot fly: try /whoami"


async def test_a_failing_command_is_one_line_and_its_argument_is_never_logged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broken = Command("broken", "/broken", "fails", f"{__name__}:_break")
    monkeypatch.setitem(commands._BY_NAME, "broken", broken)
    with structlog.testing.capture_logs() as logs:
        reply = await _run("/broken hunter2")
    assert reply == "/broken failed (RuntimeError); the daemon's log has the details."
    failed: list[Any] = [e for e in logs if e["event"] == "command.failed"]
    assert len(failed) == 1
    assert failed[0]["command"] == "broken"
    assert "hunter2" not in repr(logs)
