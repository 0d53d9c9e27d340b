"""Route what console evaluations print to their console, and everything else where it went.

`sys.stdout` and `sys.stderr` are process-wide, so redirecting them for one evaluation would
also capture what every other task prints meanwhile. Instead, while a console server runs, both
are wrapped in a `_Router` that looks at the writing context: a write made inside an
evaluation (in its task, or in a task or thread that inherited its context) and not by an actor
callback goes to that console session; every other write goes to the original stream unchanged.
"""

from __future__ import annotations

import contextvars
import sys
from typing import Any, Literal, Protocol, TextIO, cast

from actors._actor import current_actor

__all__ = ["Sink", "acquire", "capturing", "ensure_installed", "release"]

Stream = Literal["stdout", "stderr"]


class Sink(Protocol):
    """A console session, as seen by the router."""

    capturing: bool

    def write_output(self, stream: Stream, text: str) -> None:
        """Queue `text` for the client; callable from any thread."""


capturing: contextvars.ContextVar[Sink | None] = contextvars.ContextVar(
    "console_sink", default=None
)
"""Set in the context of a session's evaluations."""


class _Router:
    """A text stream that sends writes made inside an evaluation to its session."""

    def __init__(self, stream: Stream, target: TextIO) -> None:
        self._stream: Stream = stream
        self._target = target

    def write(self, text: str) -> int:
        sink = capturing.get()
        if sink is not None and sink.capturing and current_actor() is None:
            sink.write_output(self._stream, text)
            return len(text)
        return self._target.write(text)

    def flush(self) -> None:
        self._target.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


_users = 0


def ensure_installed() -> None:
    """Wrap `sys.stdout` / `sys.stderr` unless they already are (someone may have replaced them)."""
    if not isinstance(sys.stdout, _Router):
        sys.stdout = cast(TextIO, _Router("stdout", sys.stdout))
    if not isinstance(sys.stderr, _Router):
        sys.stderr = cast(TextIO, _Router("stderr", sys.stderr))


def acquire() -> None:
    """A console server starts: install the routers."""
    global _users
    _users += 1
    ensure_installed()


def release() -> None:
    """A console server stopped: unwrap the streams when no server is left."""
    global _users
    _users -= 1
    if _users > 0:
        return
    stdout: object = sys.stdout
    if isinstance(stdout, _Router):
        sys.stdout = stdout._target
    stderr: object = sys.stderr
    if isinstance(stderr, _Router):
        sys.stderr = stderr._target
