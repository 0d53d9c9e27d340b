"""The marker protocol between the driver and the persistent bash inside the jail.

For each command the driver writes to the shell's stdin one compound command:

    { __piano_c='<command, with ' written as '\\''>'
    eval "$__piano_c" </dev/null
    __piano_s=$?; builtin disown -a
    builtin printf '%s%d\\n' MARKER $__piano_s
    builtin printf '%s' MARKER >&2
    }

MARKER is fresh and random for every command (128 bits), so output cannot end a command early
by accident. Everything a stream carries before its MARKER is the command's output, byte-exact;
on stdout the MARKER is followed by the exit status and a newline. `disown -a` keeps bash from
reporting, in the next command's stderr, the background jobs the driver kills in between.

Why it cannot be forged from inside: bash parses a `{ ... }` group completely before running
any of it, so by the time the command runs the whole frame (its MARKER included) has been read
out of the pipe, which is then empty. The command's stdin is /dev/null, but bash keeps the pipe
on a saved descriptor (fd 10) that the command can reach (`exec prog 0<&10`): whatever reads it
finds nothing, since the driver writes the next frame only after this one's MARKER came back,
and by then the driver has killed every process the command left (`_procs.stop_leftovers`), so
only the shell reads the next frame. A command that replaces or kills the shell therefore ends
as a timeout or a dead shell, never as a result it invented for a later command. What stays
the command's to shape is the shell's own state, as in any persistent shell: functions, aliases,
PATH, traps. A command that rewires the shell (say, a DEBUG trap under `shopt -s extdebug`)
changes how this shell runs and reports later commands until the jail restarts; it never
reaches the driver, the audit of which command was sent, or another thread's jail.

`StreamCollector` finds the MARKER in a stream read in arbitrary chunks, holds back bytes that
might be the start of it, caps what it keeps and hands each delivered chunk to a callback.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

ChunkSink = Callable[[bytes], None]


def new_marker() -> bytes:
    """A marker that no command output can predict."""
    return b"__PIANO_" + secrets.token_hex(16).encode() + b"__"


def frame(command: str, marker: bytes) -> bytes:
    """The bytes that make the shell run `command` and then print the markers."""
    if "\0" in command:
        raise ValueError("a shell command cannot contain a NUL byte")
    quoted = command.replace("'", "'\\''")
    mark = marker.decode()
    return (
        f"\n{{ __piano_c='{quoted}'\n"  # the blank line: a failed eval can leave the parser
        # mid-line, where `{` would not be a reserved word
        'eval "$__piano_c" </dev/null\n'
        "__piano_s=$?; builtin disown -a\n"
        f"builtin printf '%s%d\\n' {mark} $__piano_s\n"
        f"builtin printf '%s' {mark} >&2\n"
        "}\n"
    ).encode()


def _partial_marker_len(buffer: bytearray, marker: bytes) -> int:
    """Length of the longest tail of `buffer` that is a proper prefix of `marker`."""
    for length in range(min(len(marker) - 1, len(buffer)), 0, -1):
        if buffer.endswith(marker[:length]):
            return length
    return 0


class StreamCollector:
    """Collects one stream of one command up to its marker (and, on stdout, the status line)."""

    def __init__(self, marker: bytes, cap: int, sink: ChunkSink, *, status_line: bool) -> None:
        self._marker = marker
        self._cap = cap
        self._sink = sink
        self._status_line = status_line
        self._pending = bytearray()
        self._after: bytearray | None = None
        self.kept = bytearray()
        self.truncated = False
        self.status: int | None = None
        self.carry = b""

    @property
    def done(self) -> bool:
        """True once the marker (and the status line, if expected) has been read."""
        if self._after is None:
            return False
        return not self._status_line or self.status is not None

    def feed(self, data: bytes) -> None:
        """Take the next bytes read from the stream."""
        if self._after is not None:
            self._after += data
            self._parse_after()
            return
        self._pending += data
        index = self._pending.find(self._marker)
        if index >= 0:
            self._deliver(bytes(self._pending[:index]))
            self._after = self._pending[index + len(self._marker) :]
            self._pending = bytearray()
            self._parse_after()
            return
        cut = len(self._pending) - _partial_marker_len(self._pending, self._marker)
        if cut:
            self._deliver(bytes(self._pending[:cut]))
            del self._pending[:cut]

    def feed_eof(self) -> None:
        """The stream ended before the marker: whatever was held back is output."""
        if self._after is None:
            self._deliver(bytes(self._pending))
            self._pending = bytearray()

    def _parse_after(self) -> None:
        assert self._after is not None
        if not self._status_line:
            self.carry = bytes(self._after)
            return
        line, newline, rest = bytes(self._after).partition(b"\n")
        if newline:
            self.status = int(line) if line.isdigit() else 255
            self.carry = rest

    def _deliver(self, data: bytes) -> None:
        room = self._cap - len(self.kept)
        if len(data) > room:
            self.truncated = True
            data = data[:room]
        if data:
            self.kept += data
            self._sink(data)
