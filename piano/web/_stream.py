"""The stream's sequence numbers and replay buffer.

`Stream` numbers every thread event it is given (1, 2, 3... for one server run, whose random
name is `Stream.name`), encodes its `Envelope` once for every client, and keeps the last
`capacity` encoded frames in a ring. `since(last_seq)` is what a reconnecting client missed:
the frames after `last_seq`, or None when some of them have already left the ring (or the
client's seq is from the future, i.e. another run), in which case it gets a snapshot instead.
"""

from __future__ import annotations

import secrets
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import msgspec

from schemas import events as ev
from schemas.stream import Envelope, Payload

__all__ = ["Stream", "encode_control"]

_encoder = msgspec.json.Encoder()


def _tag(payload: Any) -> str:
    return str(payload.__struct_config__.tag)


def encode_control(payload: Payload, thread_id: str | None = None) -> bytes:
    """A frame that is not a replayable thread event (``seq = 0``)."""
    return _encoder.encode(
        Envelope(ts=time.time(), type=_tag(payload), thread_id=thread_id, data=payload)
    )


class Stream:
    """Numbered, encoded thread events and the ring of the latest ones."""

    def __init__(self, capacity: int, clock: Callable[[], float] = time.time) -> None:
        if capacity < 1:
            raise ValueError(f"the replay buffer needs room for one event, got {capacity}")
        self.name = secrets.token_hex(8)
        self.seq = 0
        self._clock = clock
        self._ring: deque[tuple[int, str, bytes]] = deque(maxlen=capacity)

    def append(self, event: ev.ThreadEvent) -> bytes:
        """Number and encode `event`; the frame is kept for replay and returned."""
        self.seq += 1
        frame = _encoder.encode(
            Envelope(
                seq=self.seq,
                ts=self._clock(),
                type=_tag(event),
                thread_id=event.thread_id,
                data=event,
            )
        )
        self._ring.append((self.seq, event.thread_id, frame))
        return frame

    def since(self, last_seq: int) -> list[tuple[int, str, bytes]] | None:
        """(seq, thread id, frame) after `last_seq`, or None if that gap cannot be filled."""
        if last_seq > self.seq or last_seq < 0:
            return None
        if last_seq == self.seq:
            return []
        oldest = self.oldest_seq
        if oldest == 0 or oldest > last_seq + 1:
            return None
        ring = self._ring
        return [ring[i] for i in range(last_seq + 1 - oldest, len(ring))]

    @property
    def oldest_seq(self) -> int:
        return self._ring[0][0] if self._ring else 0

    @property
    def buffered(self) -> int:
        return len(self._ring)
