"""Uploads from the web chat (``POST /api/uploads``): real codex, the fake model provider, the
fake OpenAI server transcribing."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from actors import ActorSystem, Registry
from piano.daemon import SURFACES
from piano.media import Media, MediaConfig, Transcriber, TranscriptionConfig
from piano.threads import MemoryDirectory
from piano.web import WEB, child_spec
from schemas import events as ev
from supervisors import ChildSpec, Supervisor
from tests.agents.fake_openai import FakeOpenAI
from tests.fakes.responses_provider import FakeResponsesProvider, Text, make_codex_dirs
from tests.media.pictures import png
from tests.piano.conftest import Events, core_children, fan_out, make_config
from tests.web.conftest import TOKEN, Web, config

pytestmark = pytest.mark.anyio


@dataclass
class Uploads:
    web: Web
    events: Events
    provider: FakeResponsesProvider
    speech: FakeOpenAI
    workspace: Path

    async def post(self, data: bytes, name: str, mime: str, **fields: str) -> tuple[int, Any]:
        form = aiohttp.FormData()
        for key, value in {"conversation": "up", "user": "web", **fields}.items():
            form.add_field(key, value)
        form.add_field("file", data, filename=name, content_type=mime)
        async with self.web.session.post(
            f"{await self.web.base()}/api/uploads",
            data=form,
            headers={"Authorization": f"Bearer {TOKEN}"},
        ) as response:
            return response.status, await response.json()

    async def turn(self, interaction_id: str) -> tuple[ev.TurnStarted, ev.TurnCompleted]:
        done = await self.events.wait_for(
            lambda e: isinstance(e, ev.TurnCompleted) and e.interaction_id == interaction_id
        )
        [started] = [
            e
            for e in self.events.all
            if isinstance(e, ev.TurnStarted) and e.interaction.id == interaction_id
        ]
        return started, done


@pytest.fixture
async def uploads() -> AsyncIterator[Uploads]:
    dirs = make_codex_dirs()
    try:
        async with (
            FakeResponsesProvider() as provider,
            FakeOpenAI() as speech,
            ActorSystem() as system,
            aiohttp.ClientSession() as session,
        ):
            core_config = make_config(dirs, provider)
            events = Events()
            subscriptions = Registry(keys="duplicate")
            directory = MemoryDirectory()
            transcription = TranscriptionConfig(base_url=speech.base_url, api_key_env="K")
            media = Media(
                MediaConfig(transcription=transcription, max_file_bytes=100_000),
                {"default": dirs.work},
                Transcriber(transcription, environ={"K": speech.api_key}),
            )
            web_spec = child_spec(
                config(),
                subscriptions=subscriptions,
                directory=directory,
                token=TOKEN,
                media=media,
            )
            children = [
                *core_children(
                    core_config, directory, fan_out(events, subscriptions), Registry(keys="unique")
                ),
                ChildSpec(SURFACES, start=lambda: Supervisor([web_spec]), type="supervisor"),
            ]
            await system.spawn(Supervisor(children), name="piano")
            web = Web(system, subscriptions, directory, session, WEB)
            yield Uploads(web, events, provider, speech, dirs.work)
    finally:
        shutil.rmtree(dirs.root, ignore_errors=True)


async def test_an_uploaded_voice_note_is_transcribed_and_answered(uploads: Uploads) -> None:
    uploads.speech.transcripts.append("plan my day")
    uploads.provider.script(Text("Here is a plan."))
    status, body = await uploads.post(b"OggS voice", "note.ogg", "audio/ogg")
    assert status == 202
    assert body["transcript"] == "plan my day"
    started, done = await uploads.turn(body["interaction_id"])
    assert started.interaction.text == "plan my day"
    assert done.response == "Here is a plan."


async def test_an_uploaded_image_reaches_the_model_and_a_file_is_saved_and_mentioned(
    uploads: Uploads,
) -> None:
    uploads.provider.script(Text("Red."), Text("Noted."))
    status, body = await uploads.post(png(), "../shot.png", "image/png", text="Colour?")
    assert status == 202
    started, _ = await uploads.turn(body["interaction_id"])
    saved = uploads.workspace / "inbox" / "shot.png"
    assert started.interaction.attachments == [str(saved.resolve())]
    request = uploads.provider.requests[-1]
    assert "data:image/" in str(request["input"])
    status, body = await uploads.post(b"a,b\n1,2\n", "data.csv", "text/csv")
    assert status == 202
    assert body["saved"] == "inbox/data.csv"
    started, _ = await uploads.turn(body["interaction_id"])
    assert started.interaction.text == "The user sent a file: inbox/data.csv (8 B)"


async def test_an_oversize_upload_is_refused_with_413_and_reaches_no_one(
    uploads: Uploads,
) -> None:
    status, body = await uploads.post(b"z" * 200_000, "big.bin", "application/octet-stream")
    assert status == 413
    assert body["error"]["code"] == "frame_too_large"
    assert "too large" in body["error"]["message"]
    assert not (uploads.workspace / "inbox").exists()
    assert not [e for e in uploads.events.all if isinstance(e, ev.TurnStarted)]
