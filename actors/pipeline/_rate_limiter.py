"""The rate limiter: at most `allowed` messages leave the producer per `interval` seconds.

Pushes are never refused for the rate: messages beyond the allowance wait in the producer's
buffer (they count as in flight, so `max_in_flight` still bounds memory) and are released, in
order, when the next interval starts. `update_rate_limit` changes or removes the limit while the
pipeline runs (``update_rate_limiting`` in Broadway); the new allowance starts at once. While
the pipeline drains, waiting messages are released without limit, so the drain can finish.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from actors import Actor, Caller, Timer
from actors.pipeline._options import RateLimit

if TYPE_CHECKING:
    from actors.pipeline._topology import Topology

__all__ = ["RateLimiter"]


class RateLimiter(Actor):
    """Resets the allowance every interval and releases what waits; see the module docs."""

    def __init__(self, topology: Topology) -> None:
        self.topology = topology
        self.timer: Timer | None = None

    def describe(self) -> str:
        rate = self.topology.rate
        if rate is None:
            return "rate limiter: no limit"
        return (
            f"rate limiter: {rate.allowed} per {rate.interval:g}s, "
            f"{self.topology.remaining} left, {len(self.topology.held)} waiting"
        )

    def init(self) -> None:
        self._arm()

    def _arm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        rate = self.topology.rate
        if rate is not None:
            self.timer = self.send_after(rate.interval, "tick")

    def handle_info(self, message: Any) -> None:
        if message == "tick":
            topology = self.topology
            if topology.rate is not None:
                topology.remaining = topology.rate.allowed
            topology.release()
            self._arm()
        else:
            self.log.warning("pipeline.rate_limiter_unexpected", message=repr(message))

    def handle_call(self, message: Any, caller: Caller) -> Any:
        match message:
            case ("update", RateLimit() | None as rate):
                topology = self.topology
                topology.rate = rate
                topology.remaining = rate.allowed if rate is not None else 0
                topology.release()
                self._arm()
                return None
            case "get":
                return self.topology.rate
        return super().handle_call(message, caller)
