"""`Media`: what a surface does with a voice note, an image or a file a user sent.

A surface downloads the bytes (each has its own way), asks `too_large` first (from the size
the platform announces, then from the bytes), and hands them to `receive`, which returns the
`Received` message to give the agent:

- **voice** — transcribed (`Transcriber`); the transcript is the message text (after the
  caption, if any), and the surface shows it to the user;
- **image** — saved into the agent's workspace inbox (`save_file`) and attached (its absolute
  path in `Interaction.attachments`: Codex gets it as a local image, an OpenAI agent as image
  input), and mentioned in the text;
- **file** — saved the same way and mentioned: ``The user sent a file: inbox/report.pdf
  (12 KB)``.

Refusals and failures are plain sentences for the user (the surface escapes them as it must).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

import structlog

from piano.media._config import MediaConfig
from piano.media._files import IMAGE_TYPES, SavedFile, human_size, image_type, save_file
from piano.media._transcribe import Transcriber, TranscriptionFailed

__all__ = ["Kind", "Media", "MediaRefused", "Received", "build_media"]

log = structlog.get_logger(__name__)

Kind = Literal["voice", "image", "file"]

_LABELS: dict[Kind, str] = {"voice": "voice note", "image": "image", "file": "file"}


def _minutes(seconds: float) -> str:
    """``95`` → ``"1 min 35 s"``; ``1200`` → ``"20 min"``."""
    minutes, rest = divmod(round(seconds), 60)
    if not minutes:
        return f"{rest} s"
    return f"{minutes} min" + (f" {rest} s" if rest else "")


class MediaRefused(Exception):
    """What the user sent cannot be taken; the message says why, for the user."""


@dataclass(frozen=True, slots=True)
class Received:
    """The message for the agent: its text, attached image paths, and for a voice note the
    transcript (to show the user)."""

    text: str
    attachments: list[str] = field(default_factory=list)
    transcript: str | None = None
    saved: SavedFile | None = None


class _Agent(Protocol):
    """What is read from a `piano.config.AgentConfig`."""

    workspace: str


class _Provider(Protocol):
    base_url: str
    env_key: str | None


class Media:
    """Voice notes, images and files for the surfaces; see the module documentation."""

    def __init__(
        self,
        config: MediaConfig,
        workspaces: Mapping[str, str | Path],
        transcriber: Transcriber | None = None,
    ) -> None:
        self.config = config
        self.workspaces = {name: Path(path).expanduser() for name, path in workspaces.items()}
        self.transcriber = transcriber or Transcriber(config.transcription)

    def limit(self, kind: Kind) -> int:
        return {
            "voice": self.config.max_voice_bytes,
            "image": self.config.max_image_bytes,
            "file": self.config.max_file_bytes,
        }[kind]

    def too_large(self, kind: Kind, size: int | None) -> str | None:
        """The refusal for a `kind` of `size` bytes past its limit, None when it fits (or the
        size is not known yet)."""
        limit = self.limit(kind)
        if size is None or size <= limit:
            return None
        log.info("media.refused_too_large", kind=kind, size=size, limit=limit)
        label = _LABELS[kind]
        return (
            f"Sorry, that {label} is too large ({human_size(size)}): "
            f"I can take {_article(label)} {label} of up to {human_size(limit)}."
        )

    def too_long(self, kind: Kind, seconds: float | None) -> str | None:
        """The refusal for a voice note or audio file lasting past `max_voice_seconds` (its
        transcription would cost as much), None when it fits or its duration is not known."""
        limit = self.config.max_voice_seconds
        if kind != "voice" or seconds is None or seconds <= limit:
            return None
        log.info("media.refused_too_long", kind=kind, seconds=seconds, limit=limit)
        return (
            f"Sorry, that voice note is too long ({_minutes(seconds)}): "
            f"I can take a voice note of up to {_minutes(limit)}."
        )

    def workspace(self, agent: str) -> Path:
        path = self.workspaces.get(agent)
        if path is None:
            raise MediaRefused(f"Sorry, the agent {agent} has no workspace to save files into.")
        return path

    async def save(
        self, agent: str, name: str | None, data: bytes, *, key: str | None = None
    ) -> SavedFile:
        """Save into `agent`'s workspace inbox (off the loop); see `save_file`."""
        workspace = self.workspace(agent)
        try:
            return await asyncio.to_thread(
                save_file, workspace, name, data, inbox=self.config.inbox, key=key
            )
        except OSError as exc:
            log.warning("media.save_failed", agent=agent, error=str(exc))
            raise MediaRefused(f"Sorry, I could not save the file: {exc.strerror or exc}") from exc

    async def receive(
        self,
        kind: Kind,
        agent: str,
        data: bytes,
        *,
        name: str | None = None,
        mime: str | None = None,
        caption: str = "",
        key: str | None = None,
    ) -> Received:
        """The agent's message for what was sent (see the module documentation);
        `MediaRefused` when it cannot be taken."""
        refusal = self.too_large(kind, len(data))
        if refusal is not None:
            raise MediaRefused(refusal)
        caption = caption.strip()
        if kind == "voice":
            try:
                transcript = await self.transcriber.transcribe(data, name or "voice.ogg", mime)
            except TranscriptionFailed as exc:
                raise MediaRefused(f"Sorry, I could not transcribe your voice note: {exc}") from exc
            if not transcript:
                raise MediaRefused("Sorry, I could not hear any words in that voice note.")
            text = f"{caption}\n\n{transcript}" if caption else transcript
            return Received(text, transcript=transcript)
        if kind == "image" and image_type(name or "") is None:
            suffix = next((s for s, t in IMAGE_TYPES.items() if t == mime), ".jpg")
            name = f"{Path(name or 'image').stem or 'image'}{suffix}"
        saved = await self.save(agent, name, data, key=key)
        note = f"The user sent {'an image' if kind == 'image' else 'a file'}: "
        note += f"{saved.relative} ({human_size(saved.size)})"
        text = f"{caption}\n\n{note}" if caption else note
        log.info("media.saved", kind=kind, agent=agent, path=saved.relative, size=saved.size)
        attachments = [str(saved.path)] if kind == "image" else []
        return Received(text, attachments, saved=saved)

    async def close(self) -> None:
        await self.transcriber.close()


def build_media(
    config: MediaConfig,
    agents: Mapping[str, _Agent],
    providers: Mapping[str, _Provider] | None = None,
) -> Media:
    """`Media` for the configured agents' workspaces, transcribing with `providers`."""
    return Media(
        config,
        {name: agent.workspace for name, agent in agents.items()},
        Transcriber(config.transcription, providers),
    )


def _article(noun: str) -> str:
    """English's indefinite article for `noun`: "an image", "a voice note"."""
    return "an" if noun[:1].lower() in "aeiou" else "a"
