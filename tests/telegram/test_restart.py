"""The durable inbox across restarts, the webhook mode, and the commands."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
import msgspec
import pytest

from piano.store import ConversationSettings
from piano.surfaces.telegram import Inbox, WebhookConfig
from piano.threads import MemoryDirectory, ThreadKey, Unfinished
from schemas import events as ev
from tests.fakes.responses_provider import ExecCommand, Text
from tests.telegram.conftest import ADMIN, TG, USER

pytestmark = pytest.mark.anyio


def _turns_saying(tg: TG, text: str) -> list[ev.TurnStarted]:
    return [
        e
        for e in tg.core.events.all
        if isinstance(e, ev.TurnStarted) and e.interaction.text == text
    ]


async def test_an_update_stored_but_not_processed_when_the_surface_died_is_processed_once(
    tg: TG,
) -> None:
    tg.core.provider.script(Text("one"), Text("two"), Text("three"))
    await tg.start()
    await tg.api.push_message(ADMIN, "first")
    await tg.answer(ADMIN, lambda c: c.params["text"] == "one")
    await tg.outbox_drained()  # else the kill may come before the surface knows Telegram took it
    await tg.kill()
    # The crash window: the update is in the inbox, Telegram has not been told (it still holds
    # it), and it was never processed. Another arrives while the surface is down.
    stored = await tg.api.push_message(ADMIN, "second")
    inbox = Inbox(tg.store_path, tg.api.token.split(":")[0])
    assert inbox.store([stored]) == 1
    assert inbox.store([stored]) == 0
    inbox.close()
    third = await tg.api.push_message(ADMIN, "third")
    await tg.start()
    await tg.answer(ADMIN, lambda c: c.params["text"] == "two")
    await tg.answer(ADMIN, lambda c: c.params["text"] == "three")
    await tg.api.wait_confirmed(third["update_id"])
    assert [len(_turns_saying(tg, text)) for text in ("first", "second", "third")] == [1, 1, 1]
    answers = [c.params["text"] for c in tg.api.of("sendMessage", ADMIN)]
    assert [answers.count(text) for text in ("one", "two", "three")] == [1, 1, 1]
    await tg.stop()
    inbox = Inbox(tg.store_path, tg.api.token.split(":")[0])
    assert inbox.pending() == []
    inbox.close()


async def test_a_surface_killed_mid_turn_resubscribes_and_delivers_the_answer(tg: TG) -> None:
    gate = tg.core.dirs.work / "gate"
    wait = f"while [ ! -e {gate} ]; do sleep 0.05; done; echo through"
    tg.core.provider.script(ExecCommand(wait), Text("after the restart"))
    await tg.start()
    await tg.api.push_message(ADMIN, "slow one")
    await tg.core.events.wait_for(
        lambda e: isinstance(e, ev.ItemStarted) and e.item.kind == "command"
    )
    await tg.api.wait_for(lambda c: "⏳" in str(c.params.get("text")))
    await tg.kill()
    await tg.start()
    gate.touch()
    await tg.answer(ADMIN, lambda c: c.params["text"] == "after the restart")
    assert len(_turns_saying(tg, "slow one")) == 1
    # The status message the killed surface left is closed by the restarted one.
    await tg.api.wait_for(lambda c: c.method == "editMessageText" and "✅ Done" in c.params["text"])
    assert tg.shown(ADMIN, "⏳") == []


class GatedDirectory:
    """The threads' directory, but recording an interaction waits until `release`."""

    def __init__(self, directory: MemoryDirectory) -> None:
        self.directory = directory
        self.waiting = asyncio.Event()
        self.released = asyncio.Event()

    async def thread_for(self, key: ThreadKey) -> tuple[str, str | None]:
        return await self.directory.thread_for(key)

    async def remember_codex_thread(self, thread_id: str, codex_thread_id: str) -> None:
        await self.directory.remember_codex_thread(thread_id, codex_thread_id)

    async def new_thread(self, key: ThreadKey) -> str:
        return await self.directory.new_thread(key)

    async def past_turns(self, thread_id: str) -> list[tuple[str, str]]:
        return await self.directory.past_turns(thread_id)

    async def record_interaction(self, thread_id: str, interaction: ev.Interaction) -> None:
        self.waiting.set()
        await self.released.wait()
        await self.directory.record_interaction(thread_id, interaction)

    async def unfinished(self, thread_id: str) -> Unfinished:
        return await self.directory.unfinished(thread_id)

    async def unfinished_conversations(self) -> list[ThreadKey]:
        return await self.directory.unfinished_conversations()

    async def settings(self, key: ThreadKey) -> ConversationSettings:
        return await self.directory.settings(key)

    async def remember_settings(self, key: ThreadKey, settings: ConversationSettings) -> None:
        await self.directory.remember_settings(key, settings)

    async def refusal(self, interaction: ev.Interaction) -> str | None:
        return await self.directory.refusal(interaction)


async def test_an_update_is_processed_only_once_its_interaction_is_recorded(tg: TG) -> None:
    tg.core.provider.script(Text("answered after all"))
    gated = GatedDirectory(tg.core.directory)
    await tg.start(directory=gated)
    update = await tg.api.push_message(ADMIN, "accept me")
    async with asyncio.timeout(30):
        await gated.waiting.wait()  # the surface records the interaction itself
    inbox = Inbox(tg.store_path, tg.api.token.split(":")[0])
    assert not inbox.processed(update["update_id"])  # not accepted yet: a crash replays it
    await tg.kill()
    assert tg.core.directory.interactions == []
    await tg.start()
    await tg.answer(ADMIN, lambda c: c.params["text"] == "answered after all")
    recorded = {interaction.id for _, interaction in tg.core.directory.interactions}
    assert recorded == {f"tg-{tg.api.token.split(':')[0]}-{update['update_id']}"}
    assert inbox.processed(update["update_id"])
    inbox.close()
    assert len(_turns_saying(tg, "accept me")) == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def test_the_webhook_needs_the_secret_and_stores_before_answering(tg: TG) -> None:
    tg.core.provider.script(Text("via webhook"))
    port = _free_port()
    webhook = {
        "listen": "127.0.0.1",
        "port": port,
        "path": "/tg",
        "url": "https://bot.example.org/tg",
    }
    await tg.start(mode="webhook", webhook=msgspec.convert(webhook, WebhookConfig))
    set_hook = await tg.api.wait_for(lambda c: c.method == "setWebhook")
    assert set_hook.params["url"] == "https://bot.example.org/tg"
    assert set_hook.params["secret_token"] == "s3cret"
    assert not tg.api.of("getUpdates")
    update = await tg.api.push_message(ADMIN, "hooked")
    url = f"http://127.0.0.1:{port}/tg"
    async with aiohttp.ClientSession() as http:
        async with http.post(url, json=update) as refused:
            assert refused.status == 403
        headers = {"X-Telegram-Bot-Api-Secret-Token": "s3cret"}
        async with http.post(url, json=update, headers=headers) as accepted:
            assert accepted.status == 200
        inbox = Inbox(tg.store_path, tg.api.token.split(":")[0])
        assert inbox.next_offset() == update["update_id"] + 1
        inbox.close()
        await tg.answer(ADMIN, lambda c: c.params["text"] == "via webhook")
        async with http.post(url, json=update, headers=headers) as again:
            assert again.status == 200
    await tg.stop()
    assert len(_turns_saying(tg, "hooked")) == 1


async def test_commands_new_status_agent_transcript_and_stop(tg: TG) -> None:
    tg.core.provider.script(Text("hello there"), Text("fresh"))
    await tg.start()
    await tg.api.push_message(ADMIN, "hi")
    await tg.answer(ADMIN, lambda c: c.params["text"] == "hello there")
    old = tg.core.directory.threads[_key(ADMIN)]
    await tg.api.push_message(ADMIN, "/status")
    status = await tg.answer(ADMIN, lambda c: "Agent:" in c.params["text"])
    assert old in status.params["text"]
    assert f"<code>terminal: piano chat --thread {old}</code>" in status.params["text"]
    await tg.api.push_message(ADMIN, "/transcript")
    document = await tg.api.wait_for(lambda c: c.method == "sendDocument")
    name, data = document.files["document"]
    assert name == f"transcript-{old}.md"
    assert "hi" in data.decode()
    assert "hello there" in data.decode()
    await tg.api.push_message(ADMIN, "/new")
    await tg.answer(ADMIN, lambda c: "fresh thread" in c.params["text"])
    assert tg.core.directory.threads[_key(ADMIN)] != old
    await tg.api.push_message(ADMIN, "/stop")
    await tg.answer(ADMIN, lambda c: "Nothing is running" in c.params["text"])
    await tg.api.push_message(ADMIN, "/agent")
    listing = await tg.answer(ADMIN, lambda c: c.params["text"].startswith("Agents"))
    assert "▶️ default" in listing.params["text"]
    assert "second" in listing.params["text"]
    await tg.api.push_message(USER, "/agent second", user_id=USER)
    await tg.answer(USER, lambda c: "Only an admin" in c.params["text"])
    await tg.api.push_message(ADMIN, "/agent second")
    await tg.answer(ADMIN, lambda c: "now talks to <b>second</b>" in c.params["text"])
    await tg.api.push_message(ADMIN, "who are you")
    await tg.answer(ADMIN, lambda c: c.params["text"] == "fresh")
    [started] = _turns_saying(tg, "who are you")
    assert started.agent == "second"
    assert ("agent", "refused") in [entry[2:4] for entry in tg.audit()]
    await tg.api.push_message(ADMIN, "/help")
    await tg.answer(ADMIN, lambda c: "/transcript" in c.params["text"])


def _key(chat: int, agent: str = "default") -> ThreadKey:
    return ThreadKey("telegram", str(chat), agent)
