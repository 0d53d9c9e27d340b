"""Voice notes, photos, documents, videos and what Piano cannot take, through the Telegram
stand-in: real PTB, real codex, the fake model provider, and the fake OpenAI server
transcribing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from piano.media import Media, MediaConfig, Transcriber, TranscriptionConfig
from schemas import events as ev
from tests.agents.fake_openai import FakeOpenAI
from tests.fakes.responses_provider import Text
from tests.media.pictures import png
from tests.telegram.conftest import ADMIN, TG

pytestmark = pytest.mark.anyio

KEY_ENV = "PIANO_TEST_TRANSCRIPTION_KEY"


@pytest.fixture
async def speech() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as fake:
        yield fake


def with_media(tg: TG, speech: FakeOpenAI, **limits: Any) -> Path:
    """Give the surface media handling (transcribing with `speech`); the workspace."""
    workspace = tg.core.dirs.work
    transcription = TranscriptionConfig(base_url=speech.base_url, api_key_env=KEY_ENV)
    tg.media = Media(
        MediaConfig(transcription=transcription, **limits),
        {"default": workspace, "second": workspace},
        Transcriber(transcription, environ={KEY_ENV: speech.api_key}),
    )
    return workspace


def turns(tg: TG) -> list[ev.TurnStarted]:
    return [e for e in tg.core.events.all if isinstance(e, ev.TurnStarted)]


async def test_a_voice_note_is_transcribed_shown_to_the_user_and_answered_as_text(
    tg: TG, speech: FakeOpenAI
) -> None:
    with_media(tg, speech)
    speech.transcripts.append("what time is it in Lisbon")
    tg.core.provider.script(Text("It is noon in Lisbon."))
    await tg.start()
    audio = b"OggS\x00fake opus frames" * 10
    sent = await tg.api.push_voice(ADMIN, audio)
    shown = await tg.answer(ADMIN, lambda c: c.params["text"].startswith("🎤"))
    assert shown.params["text"] == "🎤 <i>what time is it in Lisbon</i>"
    assert shown.params["reply_parameters"]["message_id"] == sent["message"]["message_id"]
    await tg.answer(ADMIN, lambda c: c.params["text"] == "It is noon in Lisbon.")
    [turn] = turns(tg)
    assert turn.interaction.text == "what time is it in Lisbon"
    assert turn.interaction.attachments == []
    [request] = [r for r in speech.requests if r.path == "/v1/audio/transcriptions"]
    assert request.body["model"] == "whisper-1"
    assert request.body["file"] == {"filename": "voice.ogg", "data": audio}
    said = tg.core.provider.requests[-1]["input"]
    assert "what time is it in Lisbon" in str(said)


async def test_a_photo_is_saved_and_reaches_the_model_through_codex_as_an_image(
    tg: TG, speech: FakeOpenAI
) -> None:
    workspace = with_media(tg, speech)
    small, large = png(2, 2), png(16, 12, (10, 200, 10))
    tg.core.provider.script(Text("A green square."))
    await tg.start()
    sent = await tg.api.push_photo(ADMIN, [small, large], caption="What is this?")
    await tg.answer(ADMIN, lambda c: c.params["text"] == "A green square.")
    [turn] = turns(tg)
    name = f"tg{sent['update_id']}-photo.jpg"
    assert turn.interaction.attachments == [str((workspace / "inbox" / name).resolve())]
    assert (workspace / "inbox" / name).read_bytes() == large
    note = f"The user sent an image: inbox/{name} ({len(large)} B)"
    assert turn.interaction.text == f"What is this?\n\n{note}"
    request = tg.core.provider.requests[-1]
    images = [
        part
        for item in request["input"]
        if item.get("role") == "user"
        for part in item.get("content", [])
        if part.get("type") == "input_image"
    ]
    assert len(images) == 1
    assert images[0]["image_url"].startswith("data:image/")


async def test_a_document_is_saved_into_the_workspace_inbox_and_mentioned_to_the_agent(
    tg: TG, speech: FakeOpenAI
) -> None:
    workspace = with_media(tg, speech)
    tg.core.provider.script(Text("Got the report."))
    await tg.start()
    report = b"%PDF-1.7 quarterly numbers " * 500
    sent = await tg.api.push_document(
        ADMIN, report, "../../.ssh/Quarterly report.pdf", mime="application/pdf"
    )
    await tg.answer(ADMIN, lambda c: c.params["text"] == "Got the report.")
    [turn] = turns(tg)
    name = f"tg{sent['update_id']}-Quarterly_report.pdf"
    assert turn.interaction.text == f"The user sent a file: inbox/{name} (14 KB)"
    assert turn.interaction.attachments == []
    assert (workspace / "inbox" / name).read_bytes() == report
    assert sorted(p.name for p in (workspace / "inbox").iterdir()) == [name]
    assert not (workspace.parent / ".ssh").exists()


async def test_a_video_is_saved_into_the_workspace_inbox_like_a_file(
    tg: TG, speech: FakeOpenAI
) -> None:
    workspace = with_media(tg, speech)
    tg.core.provider.script(Text("Nice clip."))
    await tg.start()
    clip = b"\x00\x00\x00\x18ftypmp42" * 100
    sent = await tg.api.push_video(ADMIN, clip, name="demo.mp4")
    await tg.answer(ADMIN, lambda c: c.params["text"] == "Nice clip.")
    [turn] = turns(tg)
    name = f"tg{sent['update_id']}-demo.mp4"
    assert turn.interaction.text.startswith(f"The user sent a file: inbox/{name}")
    assert (workspace / "inbox" / name).read_bytes() == clip


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        (
            {
                "sticker": {
                    "file_id": "s1",
                    "file_unique_id": "us1",
                    "type": "regular",
                    "width": 512,
                    "height": 512,
                    "is_animated": False,
                    "is_video": False,
                }
            },
            "sticker",
        ),
        ({"location": {"latitude": 48.85, "longitude": 2.35}}, "location"),
    ],
)
async def test_what_piano_cannot_take_is_answered_politely_and_no_turn_starts(
    tg: TG, speech: FakeOpenAI, content: dict[str, Any], kind: str
) -> None:
    with_media(tg, speech)
    await tg.start()
    sent = await tg.api.push_content(ADMIN, content)
    answer = await tg.answer(ADMIN, lambda c: "Sorry" in c.params["text"])
    assert answer.params["text"] == (
        f"🙏 Sorry, I cannot take a {kind}. Send me text, a voice note, a photo, a video or a file."
    )
    assert answer.params["reply_parameters"]["message_id"] == sent["message"]["message_id"]
    await tg.api.push_message(ADMIN, "/status")
    await tg.answer(ADMIN, lambda c: "Agent" in c.params["text"])
    assert turns(tg) == []


async def test_oversize_media_is_refused_politely_and_nothing_reaches_the_agent(
    tg: TG, speech: FakeOpenAI
) -> None:
    workspace = with_media(tg, speech, max_voice_bytes=1000, max_file_bytes=2000)
    await tg.start()
    voice = await tg.api.push_voice(ADMIN, b"x" * 10, size=5_000_000)
    refused = await tg.answer(ADMIN, lambda c: "too large" in c.params["text"])
    assert refused.params["text"] == (
        "🙏 Sorry, that voice note is too large (5.0 MB): I can take a voice note of up to 1.0 KB."
    )
    assert refused.params["reply_parameters"]["message_id"] == voice["message"]["message_id"]
    # Too long to transcribe: refused before any download, whatever its size.
    await tg.api.push_voice(ADMIN, b"x" * 10, duration=1500)
    refused = await tg.answer(ADMIN, lambda c: "too long" in c.params["text"])
    assert refused.params["text"] == (
        "🙏 Sorry, that voice note is too long (25 min): I can take a voice note of up to 20 min."
    )
    # Announced small but larger once downloaded: refused after the download.
    await tg.api.push_document(ADMIN, b"y" * 3000, "big.bin", size=100)
    refused = await tg.answer(ADMIN, lambda c: "file is too large" in c.params["text"])
    assert "(3.0 KB)" in refused.params["text"]
    await tg.api.push_message(ADMIN, "/status")
    await tg.answer(ADMIN, lambda c: "Agent" in c.params["text"])
    assert turns(tg) == []
    assert speech.requests == []
    assert len(tg.api.of("getFile")) == 1
    assert not (workspace / "inbox").exists() or not any((workspace / "inbox").iterdir())


async def test_a_surface_killed_mid_download_processes_the_update_exactly_once(
    tg: TG, speech: FakeOpenAI
) -> None:
    workspace = with_media(tg, speech)
    tg.core.provider.script(Text("Read it."))
    tg.api.hold_downloads()
    await tg.start()
    sent = await tg.api.push_document(ADMIN, b"notes " * 100, "notes.txt", mime="text/plain")
    await tg.api.wait_for(lambda c: c.method == "download")
    await tg.kill()
    await tg.start()
    tg.api.release_downloads()
    await tg.answer(ADMIN, lambda c: c.params["text"] == "Read it.")
    await tg.api.wait_confirmed(sent["update_id"])
    [turn] = turns(tg)
    name = f"tg{sent['update_id']}-notes.txt"
    assert turn.interaction.text == f"The user sent a file: inbox/{name} (600 B)"
    assert [p.name for p in (workspace / "inbox").iterdir()] == [name]
    await tg.stop()
    assert len(turns(tg)) == 1


async def test_a_voice_note_that_cannot_be_transcribed_gets_a_clear_answer_and_no_turn(
    tg: TG, speech: FakeOpenAI
) -> None:
    with_media(tg, speech)
    assert tg.media is not None
    tg.media.transcriber.environ = {}
    await tg.start()
    await tg.api.push_voice(ADMIN, b"OggS audio")
    failed = await tg.answer(ADMIN, lambda c: "transcribe" in c.params["text"])
    assert failed.params["text"] == (
        "🙏 Sorry, I could not transcribe your voice note: voice notes need a transcription "
        f"key in ${KEY_ENV}"
    )
    await tg.api.push_message(ADMIN, "/status")
    await tg.answer(ADMIN, lambda c: "Agent" in c.params["text"])
    assert turns(tg) == []
