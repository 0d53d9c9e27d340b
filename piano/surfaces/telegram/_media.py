"""Voice notes, audio, photos and documents arriving in Telegram, for `_incoming`.

`attached` says what a message carries (the file to fetch, its announced size and name):
voice notes and audio are transcribed, photos and image documents are images, and documents,
videos, animations and video notes are files. `unsupported` names what Piano cannot take
(stickers, locations, contacts, polls, dice...), which is answered politely;
`take` turns it into the agent's message with `piano.media.Media`: the size announced by
Telegram is checked first (a refusal costs no download), then the file is fetched through the
Bot API (``getFile``, then the file URL under `TelegramConfig.file_url`), checked again and
received — transcribed (the transcript is shown to the user, ``🎤 …``), or saved into the
agent's workspace inbox as ``tg<update_id>-<name>`` (so processing the update again after a
crash rewrites the same file). Every refusal or failure is answered politely and logged, and
the update then counts as processed: nothing reaches the agent.
"""

from __future__ import annotations

import html
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog
from telegram import Message
from telegram.error import TelegramError

from piano.media import IMAGE_TYPES, Kind, MediaRefused, Received
from piano.surfaces.telegram._outbox import ptb_seconds

if TYPE_CHECKING:
    from piano.surfaces.telegram._sender import Route
    from piano.surfaces.telegram._surface import TelegramSurface

__all__ = ["Attached", "attached", "take", "unsupported"]

log = structlog.get_logger(__name__)

_LABELS: dict[Kind, str] = {"voice": "voice note", "image": "image", "file": "file"}


@dataclass(frozen=True, slots=True)
class Attached:
    """The file a message carries."""

    kind: Kind
    file_id: str
    size: int | None
    name: str | None
    mime: str | None
    seconds: float | None = None

    @property
    def label(self) -> str:
        return _LABELS[self.kind]


def attached(message: Message, image_limit: int) -> Attached | None:
    """What `message` carries, None for text (and for what `unsupported` names). Of a photo's
    sizes, the largest within `image_limit` is taken."""
    if message.voice is not None:
        voice = message.voice
        return Attached(
            "voice",
            voice.file_id,
            voice.file_size,
            "voice.ogg",
            voice.mime_type,
            ptb_seconds(voice, "duration"),
        )
    if message.audio is not None:
        audio = message.audio
        name = audio.file_name or "audio.mp3"
        return Attached(
            "voice",
            audio.file_id,
            audio.file_size,
            name,
            audio.mime_type,
            ptb_seconds(audio, "duration"),
        )
    if message.photo:
        sizes = sorted(message.photo, key=lambda p: (p.file_size or 0, p.width * p.height))
        fitting = [p for p in sizes if p.file_size is not None and p.file_size <= image_limit]
        photo = fitting[-1] if fitting else sizes[-1]
        return Attached("image", photo.file_id, photo.file_size, "photo.jpg", "image/jpeg")
    if message.document is not None:
        document = message.document
        kind: Kind = "image" if document.mime_type in IMAGE_TYPES.values() else "file"
        return Attached(
            kind, document.file_id, document.file_size, document.file_name, document.mime_type
        )
    for video, default in (
        (message.video, "video.mp4"),
        (message.animation, "animation.mp4"),
        (message.video_note, "video_note.mp4"),
    ):
        if video is not None:
            name = getattr(video, "file_name", None) or default
            mime = getattr(video, "mime_type", None) or "video/mp4"
            return Attached("file", video.file_id, video.file_size, name, mime)
    return None


_UNSUPPORTED = ("sticker", "location", "venue", "contact", "poll", "dice", "game", "story")


def unsupported(message: Message) -> str | None:
    """What a message without text or a file carries that Piano cannot take, if anything
    (None for service messages: a member joined, a topic was created...)."""
    for kind in _UNSUPPORTED:
        if getattr(message, kind, None):
            return kind
    return None


async def take(
    surface: TelegramSurface,
    message: Message,
    what: Attached,
    route: Route,
    caption: str,
    update_id: int,
) -> Received | None:
    """The agent's message for `what`, or None when it was refused or failed (the user has
    been told why)."""
    media = surface.media
    bot = surface.bot
    assert bot is not None
    reply_to = message.message_id

    def tell(text: str) -> None:
        surface.say(route, text, reply_to=reply_to)

    if media is None:
        log.info("telegram.media_disabled", chat=route.chat_id, kind=what.kind)
        tell("🙏 Sorry, I can only read text messages here.")
        return None
    refusal = media.too_large(what.kind, what.size) or media.too_long(what.kind, what.seconds)
    if refusal is not None:
        log.info("telegram.media_refused", chat=route.chat_id, kind=what.kind, size=what.size)
        tell(f"🙏 {_e(refusal)}")
        return None
    timeout = media.config.download_timeout
    try:
        file = await bot.get_file(what.file_id, read_timeout=timeout)
        refusal = media.too_large(what.kind, file.file_size)
        if refusal is None:
            buffer = io.BytesIO()
            await file.download_to_memory(buffer, read_timeout=timeout)
    except (TelegramError, RuntimeError) as exc:
        log.warning("telegram.download_failed", chat=route.chat_id, kind=what.kind, error=str(exc))
        tell(f"⚠️ Sorry, I could not download your {what.label} ({_e(str(exc))}). Please try again.")
        return None
    if refusal is not None:
        tell(f"🙏 {_e(refusal)}")
        return None
    try:
        received = await media.receive(
            what.kind,
            route.agent,
            buffer.getvalue(),
            name=what.name,
            mime=what.mime,
            caption=caption,
            key=f"tg{update_id}",
        )
    except MediaRefused as exc:
        log.info("telegram.media_refused", chat=route.chat_id, kind=what.kind, why=str(exc))
        tell(f"🙏 {_e(str(exc))}")
        return None
    if received.transcript is not None:
        tell(f"🎤 <i>{_e(received.transcript)}</i>")
    return received


def _e(text: str) -> str:
    return html.escape(text, quote=False)
