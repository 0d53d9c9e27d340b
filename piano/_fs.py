"""Writing into a folder the agent controls, without following anything it planted there.

An agent can write in its workspace: it can replace any folder the daemon writes into with a
symlink (``ln -s /any/host/dir workspace/webfetch``) or put a symlink where the daemon's file
will go, and a daemon that opens paths by name would then write wherever the link points,
with the daemon's rights. `save_into` is the one way the daemon writes into a workspace (web
fetch's long results, files users send from Telegram or the web) or into CODEX_HOME (a Codex
thread's rollout written back), and `read_from` the one way it reads a file there:

- the workspace itself (``root``) is the operator's configured path and is opened as it is;
- the folder inside it is one name, opened relative to the workspace's directory descriptor
  with ``O_NOFOLLOW | O_DIRECTORY`` (created 0700 if missing): a symlink or a file there is
  refused with `UnsafePath`, never followed, and swapping it for a symlink afterwards changes
  nothing, because everything after goes through that descriptor (``openat``);
- the file is written under a fresh temporary name (``O_CREAT | O_EXCL | O_NOFOLLOW``, 0600)
  and then renamed (``renameat``, which replaces a symlink of that name rather than following
  it) or hard-linked under the first free name (``linkat`` never follows its target), so the
  agent never sees half a file and never redirects a whole one.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from pathlib import Path

__all__ = ["UnsafePath", "read_from", "save_into"]

_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


class UnsafePath(OSError):
    """A folder the daemon was to write into is a symlink or not a directory."""


def _component(name: str) -> str:
    if not name or name in (".", "..") or "/" in name or "\0" in name:
        raise ValueError(f"not a single path component: {name!r}")
    return name


def _open_folder(root_fd: int, folder: str, where: Path, *, create: bool = True) -> int:
    if create:
        with contextlib.suppress(FileExistsError):
            os.mkdir(folder, 0o700, dir_fd=root_fd)
    try:
        return os.open(folder, _DIRECTORY | os.O_NOFOLLOW, dir_fd=root_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise UnsafePath(
                f"{where} is not a plain directory (a symlink is never followed)"
            ) from None
        raise


def _open_folders(root: Path, folder: str, *, create: bool) -> int:
    """A descriptor of ``root/folder``, each of `folder`'s ``/``-separated components opened
    in turn below the one before (see `_open_folder`)."""
    fd = os.open(root, _DIRECTORY)
    where = root
    try:
        for part in folder.split("/"):
            where = where / _component(part)
            inner = _open_folder(fd, part, where, create=create)
            os.close(fd)
            fd = inner
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_from(root: str | Path, folder: str, name: str) -> bytes | None:
    """The content of ``<root>/<folder>/<name>``, reached as `save_into` writes (`folder` may
    have several ``/``-separated components): None if it or its folder does not exist,
    `UnsafePath` if a symlink stands anywhere on the way or it is not a regular file.
    Blocking: call it off the event loop."""
    root = Path(root).expanduser().resolve()
    try:
        folder_fd = _open_folders(root, folder, create=False)
    except FileNotFoundError:
        return None
    try:
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        fd = os.open(_component(name), flags, dir_fd=folder_fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafePath(f"{root / folder / name} is a symlink (never followed)") from None
        raise
    finally:
        os.close(folder_fd)
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnsafePath(f"{root / folder / name} is not a regular file")
        return file.read()


def save_into(
    root: str | Path, folder: str, name: str, data: bytes, *, unique: bool = False
) -> Path:
    """Write `data` as ``<root>/<folder>/<name>`` (see the module documentation); the path
    written. `folder` may be several ``/``-separated components, each opened (created) as
    described. `unique`: keep an existing file and take the first free name instead (``name``,
    ``stem-2.ext``, ...), else replace it. Blocking: call it off the event loop."""
    root = Path(root).expanduser()
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    root = root.resolve()
    _component(name)
    folder_fd = _open_folders(root, folder, create=True)
    try:
        temporary = f".partial-{secrets.token_hex(8)}"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(temporary, flags, 0o600, dir_fd=folder_fd)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            final = (
                _link_unique(folder_fd, temporary, name)
                if unique
                else _replace(folder_fd, temporary, name)
            )
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary, dir_fd=folder_fd)
    finally:
        os.close(folder_fd)
    return root / folder / final


def _replace(folder_fd: int, temporary: str, name: str) -> str:
    os.replace(temporary, name, src_dir_fd=folder_fd, dst_dir_fd=folder_fd)
    return name


def _link_unique(folder_fd: int, temporary: str, name: str) -> str:
    stem, dot, suffix = name.rpartition(".")
    if not dot or not stem:
        stem, suffix = name, ""
    tail = f".{suffix}" if suffix else ""
    for n in range(1, 10_000):
        candidate = name if n == 1 else f"{stem}-{n}{tail}"
        try:
            os.link(
                temporary,
                candidate,
                src_dir_fd=folder_fd,
                dst_dir_fd=folder_fd,
                follow_symlinks=False,
            )
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"no free name for {name}")
