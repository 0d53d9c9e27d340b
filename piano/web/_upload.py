"""``POST /api/uploads``: a voice note, an image or a file from the web chat.

The body is ``multipart/form-data`` with a ``file`` part and optional ``conversation``,
``agent``, ``user`` and ``text`` (a caption) fields; the file's name (percent-decoded, as
clients may send it) only suggests the saved name (`piano.media.safe_filename`). The part's
content type decides: audio is transcribed and sent as text, an image is saved and attached,
anything else is saved into the agent's workspace inbox and mentioned
(`piano.media.Media.receive`). The file is read in chunks and refused (413,
``frame_too_large``) as soon as it passes its kind's limit, so an oversize upload is never held
whole; other refusals (a failed transcription) are 422 ``refused``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote

from aiohttp import BodyPartReader, web

from piano.media import IMAGE_TYPES, Kind, Media

__all__ = ["Upload", "kind_of", "read_upload"]


class UploadTooLarge(Exception):
    """The upload passed its limit; the message is the refusal."""


@dataclass(slots=True)
class Upload:
    fields: dict[str, str] = field(default_factory=dict)
    filename: str | None = None
    mime: str | None = None
    kind: Kind = "file"
    data: bytes = b""


def kind_of(mime: str | None) -> Kind:
    if mime and mime.startswith("audio/"):
        return "voice"
    if mime in IMAGE_TYPES.values():
        return "image"
    return "file"


async def read_upload(request: web.Request, media: Media) -> Upload:
    """The form's fields and file; `UploadTooLarge` past the file's limit, ValueError for a
    form without a file."""
    upload = Upload()
    reader = await request.multipart()
    seen_file = False
    async for part in reader:
        if not isinstance(part, BodyPartReader):
            continue
        if part.name != "file":
            upload.fields[part.name or ""] = (await part.text())[:10_000]
            continue
        seen_file = True
        upload.filename = unquote(part.filename) if part.filename else None
        upload.mime = part.headers.get("Content-Type")
        upload.kind = kind_of(upload.mime)
        limit = media.limit(upload.kind)
        chunks: list[bytes] = []
        size = 0
        while chunk := await part.read_chunk(64 * 1024):
            size += len(chunk)
            if size > limit:
                refusal = media.too_large(upload.kind, size)
                raise UploadTooLarge(refusal or "the upload is too large")
            chunks.append(chunk)
        upload.data = b"".join(chunks)
    if not seen_file:
        raise ValueError("the form has no file part")
    return upload
