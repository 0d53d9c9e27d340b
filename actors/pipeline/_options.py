"""The pipeline's configuration: processors, batchers, strict retries and the rate limit.

Every option is checked when it is built, so a bad configuration raises `ValueError` or
`TypeError` in the caller, before anything starts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from actors._backoff import Backoff

if TYPE_CHECKING:
    from actors.pipeline._message import Message

__all__ = ["BatchInfo", "Batchers", "KeyFunction", "Processors", "RateLimit", "Retry"]

KeyFunction = Callable[["Message"], Hashable]
"""A partition key function: messages with equal keys keep their order."""


def positive_int(where: str, value: object) -> int:
    if type(value) is not int or value < 1:
        raise ValueError(f"{where} must be a positive integer, got {value!r}")
    return value


def positive_seconds(where: str, value: object) -> float:
    if type(value) not in (int, float) or not value > 0 or math.isinf(value):  # type: ignore[operator, arg-type]
        raise ValueError(f"{where} must be a positive, finite number of seconds, got {value!r}")
    return float(value)  # type: ignore[arg-type]


def callable_or_none(where: str, value: object) -> None:
    if value is not None and not callable(value):
        raise TypeError(f"{where} must be callable, got {value!r}")


@dataclass(frozen=True, slots=True)
class Retry:
    """Strict mode: a failed message is retried after a back-off before its key moves on.

    The n-th retry waits up to ``min(cap, initial * factor**(n-1))`` seconds, with `jitter`
    (full by default): the `actors.Backoff` these fields make (`backoff`). After
    `max_attempts` failed attempts the message fails for good with `RetriesExhausted` (a gap,
    reported to `handle_failed`); ``max_attempts=None`` retries forever.
    """

    max_attempts: int | None = 5
    initial: float = 0.01
    factor: float = 2.0
    cap: float = 1.0
    jitter: float = 1.0
    backoff: Backoff = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_attempts is not None:
            positive_int("Retry.max_attempts", self.max_attempts)
        positive_seconds("Retry.initial", self.initial)
        positive_seconds("Retry.cap", self.cap)
        try:
            backoff = Backoff(self.initial, self.factor, self.cap, self.jitter)
        except ValueError as exc:
            raise ValueError(str(exc).replace("Backoff.", "Retry.")) from None
        object.__setattr__(self, "backoff", backoff)

    def delay(self, attempts: int) -> float:
        """Seconds before the retry that follows failed attempt number `attempts`."""
        return self.backoff.delay(attempts)

    def exhausted(self, attempts: int) -> bool:
        return self.max_attempts is not None and attempts >= self.max_attempts


@dataclass(frozen=True, slots=True)
class Processors:
    """The processor group: `concurrency` actors running ``handle_message(message)``.

    With `partition_by`, every message whose key is equal goes to the same processor (``hash``
    of the key modulo `concurrency`, integers by ``abs(key) % concurrency``, as
    `supervisors.partition_for`), which handles them one at a time in arrival order. Without
    it, messages are spread round-robin and there is no ordering. `strict` turns on retries
    (`Retry`) that keep per-key order without gaps; ``True`` means ``Retry()``.
    """

    handle_message: Callable[[Message], Any]
    concurrency: int = 4
    partition_by: KeyFunction | None = None
    strict: Retry | bool = False

    def __post_init__(self) -> None:
        if not callable(self.handle_message):
            raise TypeError(
                f"Processors.handle_message must be callable, got {self.handle_message!r}"
            )
        positive_int("Processors.concurrency", self.concurrency)
        callable_or_none("Processors.partition_by", self.partition_by)
        if self.strict is True:
            object.__setattr__(self, "strict", Retry())
        elif self.strict is not False and not isinstance(self.strict, Retry):
            raise TypeError(f"Processors.strict must be a bool or a Retry, got {self.strict!r}")

    @property
    def retry(self) -> Retry | None:
        return self.strict if isinstance(self.strict, Retry) else None


@dataclass(frozen=True, slots=True)
class BatchInfo:
    """What `handle_batch` is told about its batch."""

    batcher: str
    batch_key: Hashable
    partition: int | None
    size: int
    trigger: str
    """Why the batch was emitted: "size", "timeout", "idle" (`Batchers.flush_when_idle`) or
    "flush" (drain or a flushed message)."""


@dataclass(frozen=True, slots=True)
class Batchers:
    """A named batcher and its batch processors: ``handle_batch(messages, info)``.

    Messages are grouped by `batch_key` and by partition (``partition_by``, or the processors'
    key function when this is None), so a batch never mixes partitions; a batch is emitted at
    `batch_size` messages or `batch_timeout` seconds after its first message, whichever comes
    first, to batch processor number ``partition % concurrency``. Without any key function,
    batches go round-robin. `handle_batch` may mark messages failed; if it raises, every message
    of the batch fails (strict mode: the batch is retried before the next one of that batch
    processor).

    `flush_when_idle` (not in Broadway) also emits a batch as soon as its batch processor has
    nothing to do: a lone message is handled at once instead of after `batch_timeout`, and
    while the batch processor works the next batch gathers everything that arrives meanwhile
    and is emitted the moment it is done (group commit). Batches then grow with the load and
    never queue behind each other, unless one fills to `batch_size` or waits `batch_timeout`.
    """

    handle_batch: Callable[[list[Message], BatchInfo], Any]
    batch_size: int = 100
    batch_timeout: float = 1.0
    concurrency: int = 1
    partition_by: KeyFunction | None = None
    flush_when_idle: bool = False

    def __post_init__(self) -> None:
        if not callable(self.handle_batch):
            raise TypeError(f"Batchers.handle_batch must be callable, got {self.handle_batch!r}")
        positive_int("Batchers.batch_size", self.batch_size)
        positive_seconds("Batchers.batch_timeout", self.batch_timeout)
        positive_int("Batchers.concurrency", self.concurrency)
        callable_or_none("Batchers.partition_by", self.partition_by)
        if type(self.flush_when_idle) is not bool:
            raise TypeError(
                f"Batchers.flush_when_idle must be a bool, got {self.flush_when_idle!r}"
            )


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most `allowed` messages leave the producer per `interval` seconds (the rest wait,
    still counted in flight, so back-pressure holds)."""

    allowed: int
    interval: float = 1.0

    def __post_init__(self) -> None:
        positive_int("RateLimit.allowed", self.allowed)
        positive_seconds("RateLimit.interval", self.interval)
