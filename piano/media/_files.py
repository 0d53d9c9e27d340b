"""Files a user sent, saved into an agent's workspace without ever escaping it.

`safe_filename` turns whatever name a user (or their client) supplied into one plain name: no
directories, no leading dots, no control or shell-special characters, at most `limit` bytes,
the extension kept. `save_file` writes the bytes under ``<workspace>/<inbox>/`` atomically (a
temporary file, then a rename or hard link), so an agent never sees half a file:

- with a `key` (Telegram uses the update id) the name is ``<key>-<name>`` and a second save of
  the same key replaces the first — processing an update again after a crash leaves one file;
- without one, a name not yet taken is chosen (``name.pdf``, ``name-2.pdf``, ...).

The inbox must be a real directory inside the workspace: a symlink there (an agent can make
one) is refused rather than followed, and nothing the agent plants redirects the write
(`piano._fs.save_into`, the daemon's one way to write into a workspace).
"""

from __future__ import annotations

import base64
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from piano._fs import UnsafePath, save_into

__all__ = [
    "IMAGE_TYPES",
    "SavedFile",
    "UnsafeInbox",
    "human_size",
    "image_data_url",
    "image_type",
    "safe_filename",
    "save_file",
]

IMAGE_TYPES: dict[str, str] = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
}
"""Image types the models take, by file extension."""


class UnsafeInbox(UnsafePath):
    """The inbox is not a plain directory inside the workspace."""


@dataclass(frozen=True, slots=True)
class SavedFile:
    """A saved file: its absolute `path`, its path `relative` to the workspace, its size."""

    path: Path
    relative: str
    size: int


def human_size(size: int) -> str:
    """``12 KB``, ``3.4 MB``: a size as people read it."""
    if size < 1000:
        return f"{size} B"
    value, unit = size / 1000, "KB"
    for bigger in ("MB", "GB"):
        if value < 1000:
            break
        value, unit = value / 1000, bigger
    return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"


def _clean(text: str) -> str:
    kept = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in text)
    while "__" in kept:
        kept = kept.replace("__", "_")
    return kept.strip("_-")


def safe_filename(name: str | None, fallback: str = "file", limit: int = 100) -> str:
    """A plain file name made from `name` (see the module documentation); `fallback` (itself
    cleaned) when nothing usable is left."""
    raw = unicodedata.normalize("NFKC", name or "")
    raw = raw.replace("\\", "/").rsplit("/", 1)[-1]
    stem, dot, suffix = raw.strip(". ").rpartition(".")
    if not dot:
        stem, suffix = suffix, ""
    stem, suffix = _clean(stem), _clean(suffix).lower()[:16]
    if not stem:
        stem = _clean(fallback) or "file"
    tail = f".{suffix}" if suffix else ""
    budget = max(1, limit - len(tail.encode()))
    while len(stem.encode()) > budget:
        stem = stem[:-1]
    return stem + tail


def image_type(path: str | Path) -> str | None:
    """The MIME type of an image file by its extension, None if not an image models take."""
    return IMAGE_TYPES.get(Path(path).suffix.lower())


def image_data_url(path: str | Path) -> str | None:
    """The image as a ``data:`` URL, None if it is not an image or cannot be read."""
    kind = image_type(path)
    if kind is None:
        return None
    try:
        data = Path(path).read_bytes()
    except OSError:
        return None
    return f"data:{kind};base64,{base64.b64encode(data).decode()}"


def save_file(
    workspace: str | Path,
    name: str | None,
    data: bytes,
    *,
    inbox: str = "inbox",
    key: str | None = None,
    fallback: str = "file",
) -> SavedFile:
    """Save `data` into the workspace's inbox under a safe name; see the module
    documentation. Blocking: call it off the event loop for large files."""
    folder = safe_filename(inbox, "inbox")
    filename = safe_filename(name, fallback)
    if key is not None:
        filename = safe_filename(f"{key}-{filename}", fallback)
    try:
        target = save_into(workspace, folder, filename, data, unique=key is None)
    except UnsafePath as exc:
        raise UnsafeInbox(str(exc)) from None
    return SavedFile(target, f"{folder}/{target.name}", len(data))
