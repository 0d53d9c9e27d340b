"""The operator's endpoint: ``/health`` and Prometheus ``/metrics`` on a loopback port.

`MetricsServer` is an actor in the daemon's tree when ``[metrics] enabled = true``; it needs no
web surface (see docs/configuration.md for the section and docs/architecture.md for what each
metric counts)."""

from piano.metrics._server import METRICS, MetricsServer, child_spec

__all__ = ["METRICS", "MetricsServer", "child_spec"]
