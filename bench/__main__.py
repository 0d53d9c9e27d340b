"""Run benchmarks and print JSON lines: ``python -m bench [name ...] [--quick] [--rounds N]``."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys

import structlog

from bench import BENCHMARKS
from bench.harness import Options


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "names", nargs="*", help=f"benchmarks to run (default: all of {sorted(BENCHMARKS)})"
    )
    parser.add_argument(
        "--rounds", type=int, default=5, help="rounds per workload; the median is reported"
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny sizes, one round")
    parser.add_argument("--workload", action="append", help="only this workload (repeatable)")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; known: {sorted(BENCHMARKS)}")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    # Standard output carries only the JSON result lines; every log line goes to stderr.
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
    )
    options = Options(
        rounds=1 if args.quick else args.rounds,
        quick=args.quick,
        workloads=frozenset(args.workload) if args.workload else None,
    )
    for name in args.names or list(BENCHMARKS):
        module_name, function_name = BENCHMARKS[name].split(":")
        run = getattr(importlib.import_module(module_name), function_name)
        for line in run(options):
            print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
