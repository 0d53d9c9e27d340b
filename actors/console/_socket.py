"""Owner-only Unix sockets, for the console and every other local control socket.

`bind_owner_socket` creates the socket with mode 0600 (bound under umask 0o177, then checked),
refuses to replace anything but a dead socket, and `peer_uid` tells who connected
(``SO_PEERCRED``), so a server can refuse every uid but its own.
"""

from __future__ import annotations

import asyncio
import os
import socket
import stat
import struct
from typing import Any

__all__ = ["bind_owner_socket", "peer_uid"]


def bind_owner_socket(path: str) -> socket.socket:
    """A listening socket at `path` with mode 0600; refuses to replace anything but a dead one."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        pass
    else:
        if not stat.S_ISSOCK(info.st_mode):
            raise FileExistsError(f"{path} exists and is not a socket; not replacing it")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
        except ConnectionRefusedError:
            os.unlink(path)
        else:
            raise FileExistsError(f"a server is already listening on {path}")
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        previous = os.umask(0o177)
        try:
            sock.bind(path)
        finally:
            os.umask(previous)
        made = os.lstat(path)
        if not stat.S_ISSOCK(made.st_mode):
            raise FileExistsError(f"{path} was replaced while binding the socket")
        if stat.S_IMODE(made.st_mode) != 0o600:
            os.chmod(path, 0o600)
        sock.listen(16)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def peer_uid(writer: asyncio.StreamWriter) -> int:
    sock: Any = writer.get_extra_info("socket")
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)
