"""The Telegram surface wired for tests: real codex, the fake model provider, the fake Bot API.

`tg` starts what `tests.piano.conftest.core` starts (Codex client, thread supervisor, `Threads`)
with thread events both collected and delivered to subscribed surfaces, plus a `FakeBotApi`;
`await tg.start()` spawns a `TelegramSurface` polling it (`tg.stop()`, `tg.kill()` end it),
with `tg.media` (voice notes, images, files) if a test set one.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import pytest

from actors import ActorRef, ActorSystem, Registry
from piano.media import Media
from piano.store import open_connection
from piano.surfaces.telegram import TELEGRAM, Inbox, TelegramConfig, TelegramSurface, Transcripts
from piano.threads import THREADS, MemoryDirectory, ThreadDirectory
from schemas import events as ev
from supervisors import Supervisor
from tests.fakes.responses_provider import CodexDirs, FakeResponsesProvider
from tests.piano.conftest import (
    Core,
    Events,
    agent_options,
    core_children,
    fan_out,
    make_config,
)
from tests.telegram.fake_bot_api import Call, FakeBotApi

__all__ = ["ADMIN", "GROUP", "STRANGER", "TG", "USER", "agent_options"]

ADMIN = 1001
USER = 1002
STRANGER = 4242
GROUP = -100500


def telegram_config(api: FakeBotApi, **overrides: Any) -> TelegramConfig:
    settings: dict[str, Any] = {
        "base_url": api.base_url,
        "users": {str(ADMIN): "admin", str(USER): "user"},
        "chats": {str(GROUP): "user"},
        "edit_interval_private": 0.2,
        "edit_interval_group": 0.4,
        "poll_timeout": 5,
        "group_context": 3,
    }
    settings.update(overrides)
    return msgspec.convert(settings, TelegramConfig)


@dataclass
class TG:
    core: Core
    api: FakeBotApi
    subscriptions: Registry
    store_path: str
    config: TelegramConfig
    transcripts: Transcripts | None = None
    media: Media | None = None
    surface: ActorRef | None = None
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    async def start(self, directory: ThreadDirectory | None = None, **overrides: Any) -> ActorRef:
        """Spawn the surface (with `directory` instead of the threads' own, if given)."""
        if overrides:
            self.config = msgspec.structs.replace(self.config, **overrides)
        self.surface = await self.core.system.spawn(
            TelegramSurface(
                self.config,
                token=self.api.token,
                subscriptions=self.subscriptions,
                directory=directory or self.core.directory,
                store_path=self.store_path,
                default_agent="default",
                agents=sorted(self.core.config.agents),
                transcripts=self.transcripts,
                webhook_secret="s3cret",
                media=self.media,
            ),
            name=TELEGRAM,
        )
        return self.surface

    async def stop(self) -> None:
        assert self.surface is not None
        await self.surface.stop("normal", timeout=10)

    async def kill(self) -> None:
        assert self.surface is not None
        self.surface.exit("kill")
        await self.surface.join(timeout=10)

    async def answer(self, chat_id: int, predicate: Any = None, timeout: float = 30) -> Call:
        """The next sendMessage to `chat_id` that is not a status message, matching
        `predicate`."""
        return await self.api.wait_for(
            lambda c: (
                c.method == "sendMessage"
                and c.params.get("chat_id") == chat_id
                and not c.params.get("disable_notification")
                and (predicate is None or predicate(c))
            ),
            timeout,
        )

    def outbox(self) -> list[str]:
        """The texts of the messages in the surface's outbox (not yet taken by Telegram)."""
        inbox = Inbox(self.store_path, self.api.token.split(":")[0])
        try:
            return [msgspec.json.decode(row.body)["text"] for row in inbox.outbox()]
        finally:
            inbox.close()

    async def outbox_drained(self, chat_id: int = ADMIN) -> None:
        """Wait until Telegram has taken every message queued for `chat_id` so far: a /help
        is answered after them, in order, and each is deleted from the outbox before the
        next one is sent."""
        await self.api.push_message(chat_id, "/help", user_id=chat_id)
        await self.answer(chat_id, lambda c: "/transcript" in c.params["text"])
        assert not [text for text in self.outbox() if "/transcript" not in text]

    def shown(self, chat_id: int, text: str) -> list[str]:
        """The bot's messages in `chat_id` as they read now (after edits) that contain `text`."""
        return [
            str(m.get("text"))
            for (chat, _), m in self.api.messages.items()
            if chat == chat_id and m["from"]["is_bot"] and text in str(m.get("text"))
        ]

    def audit(self) -> list[tuple[Any, ...]]:
        """The audit log: (user, chat, action, outcome, detail), oldest first."""
        connection = open_connection(self.store_path, query_only=True)
        try:
            return [
                tuple(row)
                for row in connection.execute(
                    "SELECT user_id, chat_id, action, outcome, detail FROM telegram_audit "
                    "ORDER BY id"
                )
            ]
        finally:
            connection.close()

    def turns_of(self, conversation: str) -> list[ev.TurnStarted]:
        return [
            e
            for e in self.core.events.all
            if isinstance(e, ev.TurnStarted) and e.thread_id in self._threads(conversation)
        ]

    def _threads(self, conversation: str) -> set[str]:
        return {
            thread
            for key, thread in self.core.directory.threads.items()
            if key.conversation == conversation
        }


@pytest.fixture
async def tg(dirs: CodexDirs, agent_options: dict[str, Any]) -> AsyncIterator[TG]:
    async with (
        FakeResponsesProvider() as provider,
        FakeBotApi() as api,
        ActorSystem() as system,
    ):
        config = make_config(dirs, provider, **agent_options)
        config.agents["second"] = msgspec.structs.replace(config.agents["default"])
        events = Events()
        sessions = Registry(keys="unique")
        subscriptions = Registry(keys="duplicate")
        directory = MemoryDirectory()

        publish = fan_out(events, subscriptions)
        children = core_children(config, directory, publish, sessions)
        await system.spawn(Supervisor(children, max_restarts=10, max_seconds=5), name="piano")
        threads = system.whereis(THREADS)
        assert threads is not None
        core = Core(system, config, provider, events, directory, dirs, threads)
        with tempfile.TemporaryDirectory(prefix="piano-tg-") as state:
            path = str(Path(state) / "piano.db")
            tg = TG(core, api, subscriptions, path, telegram_config(api))
            yield tg
            if tg.media is not None:
                await tg.media.close()  # its HTTP clients, while the loop is still running
