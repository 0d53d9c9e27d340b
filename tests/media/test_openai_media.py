"""Images to an OpenAI agent and voice notes to text, through the real openai SDK against the
fake OpenAI server."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from piano.media import (
    Media,
    MediaConfig,
    MediaRefused,
    Transcriber,
    TranscriptionConfig,
    TranscriptionFailed,
    build_media,
)
from piano.threads import post_message
from schemas import events as ev
from tests.agents.conftest import Start
from tests.agents.fake_openai import FakeOpenAI, Text
from tests.media.pictures import png

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("api", ["responses", "chat"])
async def test_an_image_attachment_reaches_an_openai_agent_as_image_input(
    agents: Start, api: str, tmp_path: Path
) -> None:
    world = await agents(api=api)
    picture = tmp_path / "inbox" / "cat.png"
    picture.parent.mkdir()
    picture.write_bytes(png())
    world.fake.script(Text("A cat."), Text("Still a cat."))
    thread = await world.thread()
    first = ev.Interaction(id="m1", text="What is it?", user="ada", attachments=[str(picture)])
    assert await post_message(thread, first) == "started"
    assert (await world.done("m1")).response == "A cat."
    _, interaction = await world.say("And now?")
    await world.done(interaction)
    url = "data:image/png;base64,"
    for request in world.fake.requests:  # the image stays in the conversation's history
        if api == "responses":
            [user] = [m for m in request.body["input"] if m.get("role") == "user"][:1]
            assert user["content"][0] == {"type": "input_text", "text": "What is it?"}
            assert user["content"][1]["type"] == "input_image"
            assert user["content"][1]["image_url"].startswith(url)
        else:
            [user] = [m for m in request.body["messages"] if m.get("role") == "user"][:1]
            assert user["content"][0] == {"type": "text", "text": "What is it?"}
            assert user["content"][1]["type"] == "image_url"
            assert user["content"][1]["image_url"]["url"].startswith(url)
    assert len(world.fake.requests) == 2


def _transcriber(fake: FakeOpenAI, environ: Mapping[str, str] | None = None) -> Transcriber:
    config = TranscriptionConfig(base_url=fake.base_url, api_key_env="KEY", model="whisper-x")
    return Transcriber(config, environ={"KEY": fake.api_key} if environ is None else environ)


async def test_a_voice_note_is_transcribed_by_the_configured_provider() -> None:
    async with FakeOpenAI() as fake:
        fake.transcripts.append("  buy milk  ")
        transcriber = _transcriber(fake)
        assert await transcriber.transcribe(b"OggS...", "voice.ogg", "audio/ogg") == "buy milk"
        [request] = fake.requests
        assert request.path == "/v1/audio/transcriptions"
        assert request.body["model"] == "whisper-x"
        assert request.body["file"] == {"filename": "voice.ogg", "data": b"OggS..."}
        await transcriber.close()


async def test_a_refused_or_unconfigured_transcription_says_why() -> None:
    async with FakeOpenAI() as fake:
        wrong_key = _transcriber(fake, {"KEY": "sk-wrong"})
        with pytest.raises(TranscriptionFailed, match="answered 401: Incorrect API key"):
            await wrong_key.transcribe(b"x", "voice.ogg")
        await wrong_key.close()
        with pytest.raises(TranscriptionFailed, match=r"key in \$KEY"):
            await _transcriber(fake, {}).transcribe(b"x", "voice.ogg")
    unknown = Transcriber(TranscriptionConfig(provider="nowhere"), providers={})
    with pytest.raises(TranscriptionFailed, match="'nowhere', which is not configured"):
        unknown.endpoint()


class _Provider:
    base_url: str = "http://127.0.0.1:9/v1"
    env_key: str | None = "LOCAL_KEY"


class _Agent:
    def __init__(self, workspace: str) -> None:
        self.workspace = workspace


def test_the_transcription_endpoint_comes_from_the_named_provider() -> None:
    config = TranscriptionConfig(provider="local")
    transcriber = Transcriber(config, {"local": _Provider()}, environ={"LOCAL_KEY": "k"})
    assert transcriber.endpoint() == ("http://127.0.0.1:9/v1", "k")
    keyless = TranscriptionConfig(provider="local", api_key_env="", base_url="http://h/v1")
    assert Transcriber(keyless, {"local": _Provider()}).endpoint() == ("http://h/v1", "no-key")


async def test_media_saves_files_in_the_agents_workspace_and_refuses_what_is_too_large(
    tmp_path: Path,
) -> None:
    agents: dict[str, Any] = {"a": _Agent(str(tmp_path / "a"))}
    media: Media = build_media(MediaConfig(max_file_bytes=10), agents)
    received = await media.receive("file", "a", b"12345", name="x.csv", caption=" see ")
    assert received.text == "see\n\nThe user sent a file: inbox/x.csv (5 B)"
    assert (tmp_path / "a" / "inbox" / "x.csv").read_bytes() == b"12345"
    with pytest.raises(MediaRefused, match="too large"):
        await media.receive("file", "a", b"x" * 11, name="y.csv")
    with pytest.raises(MediaRefused, match="no workspace"):
        await media.receive("file", "b", b"x", name="y.csv")
    image = await media.receive("image", "a", png(), name="scan", mime="image/png")
    assert image.attachments == [str(tmp_path / "a" / "inbox" / "scan.png")]
    refusal = media.too_large("image", media.limit("image") + 1)
    assert refusal is not None
    assert "I can take an image of up to" in refusal, refusal


def test_a_voice_note_longer_than_the_limit_is_refused_and_only_voice_notes_are_timed() -> None:
    media: Media = build_media(MediaConfig(max_voice_seconds=90), {})
    assert media.too_long("voice", 90) is None
    assert media.too_long("voice", None) is None  # not known: the size limit still applies
    assert media.too_long("file", 10_000) is None
    assert media.too_long("voice", 95) == (
        "Sorry, that voice note is too long (1 min 35 s): I can take a voice note of up to "
        "1 min 30 s."
    )
