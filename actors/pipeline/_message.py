"""Messages and acknowledgement: what flows through a pipeline and how its end is reported.

A `Message` wraps the data pushed by a producer. Handlers may change it in place: replace
`data`, route it with `batcher` and `batch_key`, or mark it failed with `fail(reason)`.

Every accepted message ends exactly once: *acked* (successful) or *failed*. The end is reported
to the message's `acknowledger` in groups, as Broadway does: ``acknowledger.ack(successful,
failed)`` once per chunk (processors without batchers) or per batch (batch processors), with
the messages of that group that carry that acknowledger. A message without an acknowledger
(the default for `push`) ends silently, except in `statistics`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Hashable
from typing import Any, Protocol

from actors._logging import get_logger

__all__ = [
    "Acknowledger",
    "Interrupted",
    "Message",
    "PartitionKeyError",
    "PipelineFull",
    "PipelineStopped",
    "RetriesExhausted",
    "UnknownBatcher",
]

log = get_logger(__name__)


class Acknowledger(Protocol):
    """Told how each message ended, in groups (``Broadway.Acknowledger.ack/3``)."""

    def ack(self, successful: list[Message], failed: list[Message]) -> None: ...


class Message:
    """One message: `data`, its partition `key`, `metadata`, routing and its outcome.

    - `key`: the partition key (from `push(key=...)` or the processors' `partition_by`).
    - `batcher`: the name of the batcher it goes to after its processor (default "default").
    - `batch_key`: messages with different batch keys never share a batch.
    - `failure`: None while the message is successful; the reason once it has failed.
    - `attempts`: failed attempts so far (strict mode retries).
    """

    key: Hashable = None
    batcher: str = "default"
    batch_key: Hashable = None
    failure: object = None
    attempts: int = 0
    flush: bool = False
    metadata: dict[str, Any] | None = None
    acknowledger: Acknowledger | None = None
    _index: int = 0

    def __init__(
        self,
        data: Any,
        key: Hashable = None,
        *,
        metadata: dict[str, Any] | None = None,
        acknowledger: Acknowledger | None = None,
    ) -> None:
        # Defaults are class attributes: a message costs only the fields that were set.
        self.data = data
        self.key = key
        if metadata is not None:
            self.metadata = metadata
        if acknowledger is not None:
            self.acknowledger = acknowledger

    def fail(self, reason: object) -> None:
        """Mark the message failed: it is acked as failed and `handle_failed` sees it."""
        self.failure = reason if reason is not None else "failed"

    @property
    def status(self) -> str:
        """``"ok"`` or ``"failed"``."""
        return "ok" if self.failure is None else "failed"

    def __repr__(self) -> str:
        extra = "" if self.failure is None else f" failed={self.failure!r}"
        return f"<Message {self.data!r} key={self.key!r}{extra}>"


class PipelineFull(Exception):
    """`push_nowait`: the pipeline already holds `max_in_flight` messages."""


class PipelineStopped(Exception):
    """The pipeline is draining or stopped and accepts no more messages."""


class PartitionKeyError(ValueError):
    """The key function raised, or returned a key that cannot be hashed; nothing was accepted."""


class UnknownBatcher(Exception):
    """A message was routed to a batcher name the pipeline does not have (the message fails)."""


class Interrupted(Exception):
    """The stage handling this message exited before its handler returned (killed, or stopped
    by the restart of its group)."""


class RetriesExhausted(Exception):
    """Strict mode: the message failed `max_attempts` times; its last failure is `__cause__`."""


class Mixed(enum.Enum):
    """The type of `MIXED`."""

    MIXED = "mixed"


MIXED = Mixed.MIXED
"""`acknowledge`: the messages' acknowledgers are not known to be one and the same."""


def acknowledge(
    successful: list[Message],
    failed: list[Message],
    acknowledger: Acknowledger | Mixed | None = MIXED,
) -> None:
    """Report one group of outcomes to the messages' acknowledgers (grouped by acknowledger).

    A caller that has already checked that every message carries the same `acknowledger`
    passes it, and the check is not repeated (batch processors do it in their failure split).
    """
    if acknowledger is not MIXED:
        if acknowledger is not None:
            _call(acknowledger, successful, failed)
        return
    first = (successful or failed)[0].acknowledger if (successful or failed) else None
    for group in (successful, failed):
        for message in group:
            if message.acknowledger is not first:
                break
        else:
            continue
        break
    else:
        if first is not None:
            _call(first, successful, failed)
        return
    groups: dict[int, tuple[Acknowledger, list[Message], list[Message]]] = {}
    for position, group in enumerate((successful, failed)):
        for message in group:
            ack = message.acknowledger
            if ack is None:
                continue
            entry = groups.get(id(ack))
            if entry is None:
                entry = groups[id(ack)] = (ack, [], [])
            (entry[1] if position == 0 else entry[2]).append(message)
    for ack, ok, bad in groups.values():
        _call(ack, ok, bad)


def _call(ack: Acknowledger, successful: list[Message], failed: list[Message]) -> None:
    try:
        ack.ack(successful, failed)
    except Exception as exc:
        log.error("pipeline.ack_failed", acknowledger=repr(ack), reason=repr(exc), exc_info=exc)


def run_hook(hook: Callable[[list[Message]], Any] | None, failed: list[Message]) -> None:
    """Call `handle_failed` with a group of failed messages; its errors are logged only."""
    if hook is None or not failed:
        return
    try:
        hook(failed)
    except Exception as exc:
        log.error("pipeline.handle_failed_raised", reason=repr(exc), exc_info=exc)
