"""Piano's benchmarks: one command, JSON lines.

```
.venv/bin/python -m bench                  # every registered benchmark
.venv/bin/python -m bench runtime          # one of them
.venv/bin/python -m bench runtime --quick  # smoke run: tiny sizes, one round
.venv/bin/python -m bench runtime --rounds 9 --workload call_round_trip
```

Each benchmark is a module with ``run(options) -> Iterator[dict]``; every dict is printed as one
JSON line. To add one, write the module and add it to `BENCHMARKS`. Comparison benchmarks measure
Piano and its baselines in the same run, interleaved round by round, and report medians; see
`bench.harness.comparison` for the shape of a line. Results and method: docs/BENCHMARKS.md.
"""

from __future__ import annotations

__all__ = ["BENCHMARKS"]

BENCHMARKS: dict[str, str] = {
    "runtime": "bench.runtime:run",
    "supervision": "bench.supervision:run",
    "pipeline": "bench.pipeline:run",
    "store": "bench.store:run",
    "piano": "bench.piano:run",
    "jail": "bench.legacy:jail",
    "webfetch": "bench.legacy:webfetch",
    "web": "bench.web:run",
    "tools": "bench.tools:run",
    "rabbitmq": "bench.rabbitmq:run",
}
"""Benchmark name -> ``module:function`` taking `bench.harness.Options`."""
