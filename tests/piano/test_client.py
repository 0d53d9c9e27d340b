"""The conversations' client API: one frozen message per operation, one timeout policy, typed
answers; the router and a conversation refuse the raw tuples they used to take."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any, cast

import pytest

from actors import ActorRef, ActorSystem, UnknownMessage
from piano.config import AgentConfig
from piano.threads import (
    RECOVER_TIMEOUT,
    TIMEOUT,
    ConversationStatus,
    Decide,
    GetStatus,
    Interrupt,
    MemoryDirectory,
    NewConversation,
    OpenConversation,
    PostMessage,
    RecoverConversations,
    ThreadKey,
    UnknownAgent,
    WhichConversations,
    conversation_status,
    decide,
    interrupt,
    new_conversation,
    open_conversation,
    post_message,
    recover_conversations,
    which_conversations,
)
from piano.threads import Conversation as ConversationActor
from schemas import events as ev

pytestmark = pytest.mark.anyio

KEY = ThreadKey("test", "c1", "default")


class Recorder:
    """Stands in for an actor reference: records each call and answers `answer`."""

    def __init__(self, answer: object) -> None:
        self.answer = answer
        self.calls: list[tuple[object, float | None]] = []

    def call(self, message: object, timeout: float | None = 5.0) -> asyncio.Future[Any]:
        self.calls.append((message, timeout))
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_result(self.answer)
        return future


async def test_each_operation_sends_its_frozen_message_and_waits_the_one_timeout() -> None:
    interaction = ev.Interaction(id="i1", text="hi")
    sent: list[tuple[object, float | None]] = []
    operations: list[tuple[Callable[[ActorRef], Awaitable[Any]], object]] = [
        (lambda ref: open_conversation(ref, KEY), "actor"),
        (lambda ref: new_conversation(ref, KEY), "t2"),
        (which_conversations, {}),
        (recover_conversations, 0),
        (lambda ref: post_message(ref, interaction), "started"),
        (lambda ref: decide(ref, "a1", "accept", "ada"), True),
        (interrupt, False),
        (conversation_status, None),
    ]
    for operation, answer in operations:
        ref = Recorder(answer)
        assert await operation(cast(ActorRef, ref)) == answer
        sent.extend(ref.calls)
    assert [message for message, _ in sent] == [
        OpenConversation(KEY),
        NewConversation(KEY),
        WhichConversations(),
        RecoverConversations(),
        PostMessage(interaction),
        Decide("a1", "accept", "ada"),
        Interrupt(),
        GetStatus(),
    ]
    assert [timeout for _, timeout in sent] == [TIMEOUT] * 3 + [RECOVER_TIMEOUT] + [TIMEOUT] * 4
    for message, _ in sent:
        field = next(iter(dataclasses.fields(message)), None)  # type: ignore[arg-type]
        if field is not None:
            with pytest.raises(dataclasses.FrozenInstanceError):
                setattr(message, field.name, None)


async def test_a_message_is_in_the_mailbox_when_post_message_returns() -> None:
    ref = Recorder("queued")
    future = post_message(cast(ActorRef, ref), ev.Interaction(id="i1", text="hi"))
    assert len(ref.calls) == 1  # sent before anything awaited
    assert await future == "queued"


class Idle(ConversationActor[Any]):
    """A conversation actor with no backend: enough to answer status and refuse raw tuples."""


async def test_a_conversation_answers_typed_messages_and_refuses_the_old_raw_tuples() -> None:
    async with ActorSystem() as system:
        ref = await system.spawn(Idle("t1", KEY, AgentConfig(), publish=_discard))
        status = await conversation_status(ref)
        assert status == ConversationStatus(
            thread_id="t1",
            agent="default",
            backend="codex",
            running=False,
            queued=0,
            approvals=(),
        )
        assert await interrupt(ref) is False
        assert await decide(ref, "t1:1", "accept", "ada") is False
        for raw in ["status", "interrupt", ("decide", "t1:1", "accept", "ada")]:
            with pytest.raises(UnknownMessage, match="no handle_call clause"):
                await ref.call(raw)


async def test_opening_a_conversation_with_an_unknown_agent_raises_unknown_agent() -> None:
    from piano.config import Config
    from piano.threads import Threads

    async with ActorSystem() as system:
        router = await system.spawn(Threads(Config(), MemoryDirectory(), _discard, {}))
        with pytest.raises(UnknownAgent, match="no agent named 'nobody'"):
            await open_conversation(router, ThreadKey("test", "c1", "nobody"))
        with pytest.raises(KeyError):  # UnknownAgent is a KeyError, as before
            await open_conversation(router, ThreadKey("test", "c1", "nobody"))
        assert await which_conversations(router) == {}


async def _discard(events: list[ev.ThreadEvent]) -> None:
    return None


def _registered_names() -> dict[str, str]:
    """Every name the daemon's tree registers, by the constant its owner defines it as."""
    from piano import daemon
    from piano.codex import CODEX
    from piano.events import EVENTS
    from piano.mcp import ENDPOINT, TOOLS
    from piano.store import STORE
    from piano.surfaces.telegram import TELEGRAM
    from piano.surfaces.terminal import TERMINAL
    from piano.threads import RECOVERY, THREAD_SUPERVISOR, THREADS
    from piano.tools import BROWSERS, JAILS, WEBFETCH
    from piano.web import WEB

    owned = {
        "STORE": STORE,
        "EVENTS": EVENTS,
        "CODEX": CODEX,
        "TOOLS": TOOLS,
        "ENDPOINT": ENDPOINT,
        "BROWSERS": BROWSERS,
        "JAILS": JAILS,
        "WEBFETCH": WEBFETCH,
        "THREADS": THREADS,
        "THREAD_SUPERVISOR": THREAD_SUPERVISOR,
        "RECOVERY": RECOVERY,
        "TERMINAL": TERMINAL,
        "TELEGRAM": TELEGRAM,
        "WEB": WEB,
    }
    for constant in ("STORAGE", "CODEX_SUPERVISOR", "MEDIA", "SURFACES", "CONSOLE"):
        owned[constant] = getattr(daemon, constant)
    return {value: constant for constant, value in owned.items()}


def test_no_registered_name_is_spelled_out_where_an_actor_is_named_or_looked_up() -> None:
    """A registered name is written once, by its owner: spawning, a child spec and `whereis`
    use the owner's constant, so renaming it cannot leave a caller looking for the old name."""
    import ast
    from pathlib import Path

    names = _registered_names()
    root = Path(__file__).resolve().parents[2]
    spelled: list[str] = []
    for folder in ("piano", "bench", "tests", "examples"):
        for path in sorted((root / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if not isinstance(node, ast.Call):
                    continue
                callee = node.func.attr if isinstance(node.func, ast.Attribute) else None
                if isinstance(node.func, ast.Name):
                    callee = node.func.id
                literals = [k.value for k in node.keywords if k.arg == "name"]
                if callee in ("whereis", "ChildSpec") and node.args:
                    literals.append(node.args[0])
                for literal in literals:
                    if isinstance(literal, ast.Constant) and literal.value in names:
                        where = f"{path.relative_to(root)}:{literal.lineno}"
                        spelled.append(f"{where}: {literal.value!r} (use {names[literal.value]})")
    assert spelled == [], "\n".join(spelled)


OLD_MESSAGES = {"open", "new", "live", "recover", "message", "interrupt", "decide", "status"}
"""The raw strings and tuple tags the router and conversations used to answer."""


def test_nothing_calls_a_conversation_or_the_router_with_the_old_raw_messages() -> None:
    """Every call to the router or a conversation goes through the client functions: no
    ``.call("status")`` or ``.call(("open", key))`` is left (they would fail at run time with
    `UnknownMessage`, which mypy cannot see)."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    raw: list[str] = []
    for folder in ("piano", "bench", "tests", "examples"):
        for path in sorted((root / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if not (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("call", "cast")
                    and node.args
                ):
                    continue
                for message in node.args:
                    if isinstance(message, ast.Tuple) and message.elts:
                        message = message.elts[0]
                    if isinstance(message, ast.Constant) and message.value in OLD_MESSAGES:
                        raw.append(f"{path.relative_to(root)}:{node.lineno}: {message.value!r}")
    assert raw == [], "\n".join(raw)


async def test_the_console_lists_and_opens_conversations_through_the_same_client_api(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from actors.console import Helpers
    from piano.config import Config
    from piano.daemon import console_helpers
    from piano.threads import THREADS, Threads

    async with ActorSystem() as system:
        helpers = console_helpers(system)
        with pytest.raises(LookupError, match="the thread router is not running"):
            await helpers["conversations"]()
        await system.spawn(Threads(Config(), MemoryDirectory(), _discard, {}), name=THREADS)
        assert await helpers["conversations"]() == {}
        with pytest.raises(UnknownAgent):
            await helpers["conversation"]("test", "c1", "nobody")
        Helpers(system, helpers).help()
    shown = capsys.readouterr().out
    assert "From the application:" in shown
    assert "conversations" in shown
    assert "Every live conversation actor, by key." in shown
