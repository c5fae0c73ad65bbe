"""Latency figures the simulator, the load test and the benchmark report the same way."""

from __future__ import annotations

import math


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list (q in 0..100): always a value that was measured."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def latency_summary(values_ms: list[float]) -> dict[str, float | int]:
    """count, p50, p95, p99, max and mean in milliseconds, rounded to 0.01 ms."""
    ordered = sorted(values_ms)
    figures = {
        "p50_ms": percentile(ordered, 50),
        "p95_ms": percentile(ordered, 95),
        "p99_ms": percentile(ordered, 99),
        "max_ms": ordered[-1] if ordered else 0.0,
        "mean_ms": sum(ordered) / len(ordered) if ordered else 0.0,
    }
    return {"count": len(ordered), **{name: round(value, 2) for name, value in figures.items()}}
