"""Statistics and telemetry of a running pipeline.

`statistics(pipeline)` returns a `PipelineStatistics` snapshot: messages accepted, acked, failed
and in flight, and for every stage its handled and failed counts, queued work, restarts and
latency. Counters live in the pipeline (not in the stage actors), so they survive restarts.
Each stage actor's `describe()` line (the console's `tree()`) shows the same counts.

Telemetry: ``Pipeline(telemetry=fn)`` calls ``fn(event, measurements, metadata)`` once per
chunk or batch (never per message), with events named as Broadway's:
``("processor", "stop")`` and ``("batch_processor", "stop")``, measurements ``count``,
``failed`` and ``duration`` (seconds). Errors in `fn` are logged and ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from actors._logging import get_logger

__all__ = ["Counters", "PipelineStatistics", "StageStatistics", "Telemetry"]

log = get_logger(__name__)

Telemetry = Callable[[tuple[str, ...], dict[str, float], dict[str, Any]], None]


class Counters:
    """The mutable counters of one stage slot."""

    __slots__ = ("failed", "handled", "latency_max", "latency_samples", "latency_sum", "restarts")

    def __init__(self) -> None:
        self.handled = 0
        self.failed = 0
        self.restarts = 0
        self.latency_sum = 0.0
        self.latency_samples = 0
        self.latency_max = 0.0

    def latency(self, seconds: float) -> None:
        self.latency_sum += seconds
        self.latency_samples += 1
        if seconds > self.latency_max:
            self.latency_max = seconds


@dataclass(frozen=True, slots=True)
class StageStatistics:
    """One stage: `handled` messages (failed ones included) and `failed` ones, `queued` work
    items (chunks or batches) not finished, `restarts` of its actor, and latency in seconds:
    for processors from acceptance to the end of the chunk, for batch processors from the
    batch's first message to its ack (mean and max)."""

    stage: str
    index: int
    handled: int
    failed: int
    queued: int
    restarts: int
    latency_mean: float
    latency_max: float


@dataclass(frozen=True, slots=True)
class PipelineStatistics:
    """A snapshot of a pipeline. ``accepted == acked + failed + in_flight`` always holds."""

    name: str
    accepted: int
    acked: int
    failed: int
    in_flight: int
    max_in_flight: int
    rate_limited: int
    """Messages waiting for the rate limit (part of in_flight)."""
    draining: bool
    stages: tuple[StageStatistics, ...]


def stage_statistics(stage: str, index: int, counters: Counters, queued: int) -> StageStatistics:
    samples = counters.latency_samples
    return StageStatistics(
        stage=stage,
        index=index,
        handled=counters.handled,
        failed=counters.failed,
        queued=queued,
        restarts=counters.restarts,
        latency_mean=counters.latency_sum / samples if samples else 0.0,
        latency_max=counters.latency_max,
    )


def emit(
    telemetry: Telemetry | None,
    event: tuple[str, ...],
    measurements: dict[str, float],
    metadata: dict[str, Any],
) -> None:
    if telemetry is None:
        return
    try:
        telemetry(event, measurements, metadata)
    except Exception as exc:
        log.error(
            "pipeline.telemetry_failed", telemetry_event=event, reason=repr(exc), exc_info=exc
        )
