"""The terminal chat surface: `ChatServer` in the daemon, `run_chat` behind `piano chat`."""

from piano.surfaces.terminal._client import run_chat
from piano.surfaces.terminal._server import SURFACE, TERMINAL, ChatServer

__all__ = ["SURFACE", "TERMINAL", "ChatServer", "run_chat"]
