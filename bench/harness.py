"""What every benchmark shares: options, timing rounds, medians, the JSON line of a comparison."""

from __future__ import annotations

import gc
import statistics
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Options", "comparison", "median_rounds", "medians", "sample_rounds", "spread"]


@dataclass(frozen=True)
class Options:
    rounds: int = 5
    quick: bool = False
    workloads: frozenset[str] | None = None
    """Only these workloads (None: all)."""

    def wants(self, workload: str) -> bool:
        return self.workloads is None or workload in self.workloads


def sample_rounds(
    rounds: int, contenders: Mapping[str, Callable[[], float] | None]
) -> dict[str, list[float]]:
    """Run every contender once per round, interleaved; return every sample of each.

    Interleaving keeps a slow drift of the machine (frequency, other load) from favouring
    whoever ran first. A contender that is None is not measured (no samples).
    """
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, measure in contenders.items():
            if measure is None:
                continue
            gc.collect()
            samples[name].append(measure())
    return samples


def median_rounds(
    rounds: int, contenders: Mapping[str, Callable[[], float] | None]
) -> dict[str, float | None]:
    """The median of each contender over `rounds` interleaved rounds (None if not measured)."""
    return medians(sample_rounds(rounds, contenders))


def medians(samples: dict[str, list[float]]) -> dict[str, float | None]:
    return {name: statistics.median(values) if values else None for name, values in samples.items()}


def spread(samples: dict[str, list[float]]) -> dict[str, list[float]]:
    """[min, max] of each contender's samples: how much the machine moved during the run."""
    return {
        name: [round(min(values), 1), round(max(values), 1)]
        for name, values in samples.items()
        if values
    }


def _ratio(mine: float | None, theirs: float | None) -> float | None:
    if mine is None or not theirs:
        return None
    return round(mine / theirs, 3)


def comparison(
    bench: str,
    workload: str,
    unit: str,
    values: dict[str, float | None],
    *,
    min_vs_raw: float | None = None,
    min_vs_pykka: float | None = None,
    max_piano: float | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One JSON line: Piano beside raw asyncio and pykka, the ratios, the target and if it is met.

    Throughput targets are minimum ratios (higher is better); a memory target is a maximum for
    Piano's own value. A ratio whose baseline was not measured does not count against the target.
    """
    piano, raw, pykka = values["piano"], values.get("raw_asyncio"), values.get("pykka")
    vs_raw, vs_pykka = _ratio(piano, raw), _ratio(piano, pykka)
    target: dict[str, float] = {}
    met = piano is not None
    if min_vs_raw is not None:
        target["min_ratio_vs_raw"] = min_vs_raw
        met = met and (vs_raw is None or vs_raw >= min_vs_raw)
    if min_vs_pykka is not None:
        target["min_ratio_vs_pykka"] = min_vs_pykka
        met = met and (vs_pykka is None or vs_pykka >= min_vs_pykka)
    if max_piano is not None:
        target["max_piano"] = max_piano
        met = met and piano is not None and piano <= max_piano
    return {
        "bench": bench,
        "workload": workload,
        "unit": unit,
        "piano": _round(piano),
        "raw_asyncio": _round(raw),
        "pykka": _round(pykka),
        "ratio_vs_raw": vs_raw,
        "ratio_vs_pykka": vs_pykka,
        "target": target,
        "met": met,
        **extra,
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
