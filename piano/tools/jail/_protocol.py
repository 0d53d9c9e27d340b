"""The protocol between the driver and the jail: a trusted shell that runs each command in a
fresh bash and frames its result with a marker the command cannot know.

Two kinds of bash run in the jail. The *driver shell* (`SHELL_PATH`, bwrap's command) reads
frames on its stdin and never runs a command's text itself; `SHELL_INIT` defines its one
function, `__piano_run`. Each command runs in a *fresh bash* started by it through `env -i`,
with /dev/null as stdin. For each command the driver writes:

    { __piano_run '<command, with ' written as '\\''>'
    builtin printf '%s%d\\n' MARKER $?
    builtin printf '%s' MARKER >&2
    }

MARKER is fresh and random for every command (128 bits). Everything a stream carries before its
MARKER is the command's output, byte-exact; on stdout the MARKER is followed by the command's
exit status and a newline.

Why a command cannot forge a result, its own or another's:
- bash parses a `{ ... }` group whole before running it, so once the command runs the pipe is
  empty; the driver writes the next frame only after this one's MARKER came back and every
  process the command left has been killed (`_procs.stop_leftovers`), so only the driver shell
  ever reads a frame;
- the fresh bash gets no descriptor of the pipe, and cannot read or change the driver shell:
  that one is started from an execute-only copy of bash (`_argv.shell_copy`), which makes the
  kernel mark it non-dumpable, so no jail process may ptrace it or open its /proc/<pid>/mem,
  fd or environ; MARKER exists only in its memory;
- what carries over from one command to the next is data, never code: the fresh bash's
  working directory and exported variables, which it saves on exit (`/tmp/.piano-state`) and
  the driver shell hands to the next fresh bash through `env -i`, minus every variable that
  would run code before the command (`LD_*`, `BASH_ENV`, `ENV`, `SHELLOPTS`, `BASHOPTS`,
  `BASH_FUNC_*`, `PS4`, `PROMPT_COMMAND`...). Functions, aliases, traps, shell options and
  unexported variables die with their bash, so no command can rig how a later one runs or is
  reported. (A later command still sees the files and the `PATH` an earlier one left.)
A command that kills the driver shell ends as a dead shell (the jail restarts), one that never
ends as a timeout: never as an invented result.

`StreamCollector` finds the MARKER in a stream read in arbitrary chunks, holds back bytes that
might be the start of it, caps what it keeps and hands each delivered chunk to a callback.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

ChunkSink = Callable[[bytes], None]

SHELL_PATH = "/.piano-shell"
"""Where the execute-only copy of bash that runs as the driver shell is bound in the jail."""

STATE_FILE = "/tmp/.piano-state"


def _quote(text: str) -> str:
    """`text` as one single-quoted shell word."""
    return "'" + text.replace("'", "'\\''") + "'"


_RUNNER = (
    "IFS= builtin read -r -d '' __piano_c; builtin exec </dev/null\n"
    "__piano_save() { builtin trap - DEBUG RETURN ERR; builtin local IFS=$'\\n' __piano_n\n"
    "  { builtin printf '%s\\0' \"$PWD\"; for __piano_n in $(builtin compgen -e); do\n"
    '    builtin printf \'%s=%s\\0\' "$__piano_n" "${!__piano_n}"; done\n'
    f"  }} >{STATE_FILE} 2>/dev/null; }}\n"
    "builtin trap __piano_save EXIT\n"
    'builtin eval "builtin unset __piano_c; $__piano_c"'
)
"""The fresh bash's script: read the command from stdin (a here-string: no size limit), give
the command /dev/null as stdin, save the state on exit, run the command."""

SHELL_INIT = f"""
__piano_load() {{
    local __piano_saved=() __piano_e
    [[ -f {STATE_FILE} && ! -L {STATE_FILE} ]] || return 0
    builtin mapfile -d '' -t -n 4097 __piano_saved < {STATE_FILE}
    builtin : > {STATE_FILE}
    (( ${{#__piano_saved[@]}} )) || return 0
    __piano_cwd=${{__piano_saved[0]}}
    __piano_envs=()
    for __piano_e in "${{__piano_saved[@]:1}}"; do
        [[ $__piano_e =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || continue
        case ${{__piano_e%%=*}} in
            LD_*|BASH_ENV|ENV|SHELLOPTS|BASHOPTS|PS4|PROMPT_COMMAND|BASH_XTRACEFD|IFS) continue ;;
            PWD|OLDPWD|SHLVL|_) continue ;;
        esac
        (( ${{#__piano_e}} <= 131072 )) && __piano_envs+=("$__piano_e")
    done
}}
__piano_run() {{
    local __piano_s
    ( builtin cd -- "$__piano_cwd" 2>/dev/null || builtin cd -- "$__piano_home"
      builtin exec /usr/bin/env -i "${{__piano_envs[@]}}" \\
          /bin/bash --noprofile --norc -c {_quote(_RUNNER)} bash ) <<< "$1"
    __piano_s=$?
    __piano_load
    return "$__piano_s"
}}
__piano_home=$PWD
__piano_cwd=$PWD
{{ builtin printf '%s\\0' "$PWD"; /usr/bin/env -0; }} > {STATE_FILE}
__piano_load
"""
"""The driver shell's definitions, sent once before its first frame."""


def new_marker() -> bytes:
    """A marker that no command output can predict."""
    return b"__PIANO_" + secrets.token_hex(16).encode() + b"__"


def frame(command: str, marker: bytes) -> bytes:
    """The bytes that make the driver shell run `command` and then print the markers."""
    if "\0" in command:
        raise ValueError("a shell command cannot contain a NUL byte")
    mark = marker.decode()
    return (
        f"\n{{ __piano_run {_quote(command)}\n"
        f"builtin printf '%s%d\\n' {mark} $?\n"
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
