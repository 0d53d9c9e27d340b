"""The terminal chat surface: `ChatServer` in the daemon, `run_chat` behind `piano chat`."""

from piano.surfaces.terminal._client import run_chat
from piano.surfaces.terminal._server import ChatServer

__all__ = ["ChatServer", "run_chat"]
