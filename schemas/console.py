"""The wire protocol of the actor-system console (`actors.console`).

One JSON object per line over a Unix socket, each tagged by its ``"type"`` member. Frames are
decoded strictly: an unknown type, a missing or unknown field, or a wrong field type raises
`InvalidFrame`, which the server answers with an `Error` frame before reading on.

Client → server:
- `Eval` pushes source text, as if typed (or pasted) at the prompt: each line goes into the
  session's input buffer, and every complete statement runs as soon as it is complete.
- `Complete` asks for the completions of the word under the cursor.
- `Interrupt` cancels the running evaluation (Ctrl-C), or discards a half-typed statement.

Server → client:
- `Output` carries what the evaluated code wrote to stdout or stderr.
- `Result` ends one statement: the repr of an expression's value, or a formatted traceback.
- `Prompt` says the server waits for input; ``continuation`` when a statement is unfinished.
- `Completions` answers `Complete`; `Error` reports a protocol problem (the session goes on,
  except when the server refuses the connection, and then it closes the socket after it).

Every `Eval` is answered by one `Prompt` after its `Result` frames; an `Interrupt` is answered
only by the `Result` and `Prompt` of the evaluation it cancelled, if there was one.
"""

from __future__ import annotations

from typing import Literal, TypeAlias

import msgspec

__all__ = [
    "MAX_FRAME",
    "ClientFrame",
    "Complete",
    "Completions",
    "Error",
    "Eval",
    "Interrupt",
    "InvalidFrame",
    "Output",
    "Prompt",
    "Result",
    "ServerFrame",
    "decode_client",
    "decode_server",
    "encode",
]

MAX_FRAME = 1 << 20
"""Longest frame, in bytes, that either side reads (newline included)."""


class _Frame(msgspec.Struct, tag_field="type", forbid_unknown_fields=True, omit_defaults=True):
    pass


class Eval(_Frame, tag="eval"):
    source: str


class Complete(_Frame, tag="complete"):
    text: str


class Interrupt(_Frame, tag="interrupt"):
    pass


class Output(_Frame, tag="output"):
    stream: Literal["stdout", "stderr"]
    text: str


class Result(_Frame, tag="result"):
    value: str | None = None
    """The pretty-printed value of an expression statement, if it was not None."""
    traceback: str | None = None
    """The formatted exception, if the statement raised."""


class Prompt(_Frame, tag="prompt"):
    continuation: bool = False


class Completions(_Frame, tag="completions"):
    text: str
    matches: list[str]


class Error(_Frame, tag="error"):
    message: str
    fatal: bool = False
    """The server closes the connection after sending this frame."""


ClientFrame: TypeAlias = Eval | Complete | Interrupt
ServerFrame: TypeAlias = Output | Result | Prompt | Completions | Error


class InvalidFrame(ValueError):
    """A line that is not a valid frame for the side reading it."""


_client_decoder: msgspec.json.Decoder[ClientFrame] = msgspec.json.Decoder(ClientFrame)
_server_decoder: msgspec.json.Decoder[ServerFrame] = msgspec.json.Decoder(ServerFrame)
_encoder = msgspec.json.Encoder()


def decode_client(line: bytes) -> ClientFrame:
    """Decode one line sent by a client; raises `InvalidFrame`."""
    try:
        return _client_decoder.decode(line)
    except msgspec.DecodeError as exc:
        raise InvalidFrame(str(exc)) from None


def decode_server(line: bytes) -> ServerFrame:
    """Decode one line sent by the server; raises `InvalidFrame`."""
    try:
        return _server_decoder.decode(line)
    except msgspec.DecodeError as exc:
        raise InvalidFrame(str(exc)) from None


def encode(frame: ClientFrame | ServerFrame) -> bytes:
    """One frame as a JSON line, newline included."""
    return _encoder.encode(frame) + b"\n"
