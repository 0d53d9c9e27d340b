"""Live thread events between the nodes of a cluster (`piano.cluster`'s fan-out).

Each node publishes what its own conversations produced, once the store has committed it, to
the topic exchange ``<prefix>.events`` with the thread id as routing key: one AMQP message per
thread per committed batch, its body a `ThreadEvents` (JSON), its header `ORIGIN_HEADER` the
publishing node's id (so a node skips its own messages without decoding them). `seqs` are the
events' journal numbers in the store (``events(thread_id, seq)``): contiguous per thread
whichever node wrote them, so a receiver knows exactly what it missed and reads that from the
store. A body that does not decode, or whose parts disagree, is refused by `decode_thread_events`
with `msgspec.ValidationError` naming what is wrong.
"""

from __future__ import annotations

import msgspec

from schemas.events import ThreadEvent

__all__ = ["ORIGIN_HEADER", "ThreadEvents", "decode_thread_events", "encode_thread_events"]

ORIGIN_HEADER = "x-piano-origin"
"""The AMQP header naming the node that published a message."""


class ThreadEvents(msgspec.Struct, frozen=True, kw_only=True):
    """Committed events of one thread, in order, as the node that wrote them publishes them."""

    origin: str
    """The publishing node's id."""
    thread_id: str
    seqs: list[int]
    """Each event's journal number (strictly increasing)."""
    events: list[ThreadEvent]


_encoder = msgspec.json.Encoder()
_decoder: msgspec.json.Decoder[ThreadEvents] = msgspec.json.Decoder(ThreadEvents)


def encode_thread_events(message: ThreadEvents) -> bytes:
    return _encoder.encode(message)


def decode_thread_events(body: bytes) -> ThreadEvents:
    """Decode and check one message; `msgspec.ValidationError` if it is malformed."""
    message = _decoder.decode(body)
    if len(message.seqs) != len(message.events):
        raise msgspec.ValidationError(
            f"{len(message.seqs)} seqs for {len(message.events)} events in `$.seqs`"
        )
    if any(event.thread_id != message.thread_id for event in message.events):
        raise msgspec.ValidationError("an event of another thread in `$.events`")
    if any(seq < 1 for seq in message.seqs) or any(
        later <= earlier for earlier, later in zip(message.seqs, message.seqs[1:], strict=False)
    ):
        raise msgspec.ValidationError("seqs not positive and strictly increasing in `$.seqs`")
    return message
