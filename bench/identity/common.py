"""Timing helpers shared by the identity benchmarks: per-call nanoseconds, percentiles."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from statistics import quantiles


def sample(call: Callable[[], object], *, calls: int, warmup: int = 1000) -> list[float]:
    """Microseconds per call, one measurement per call."""
    for _ in range(warmup):
        call()
    clock = time.perf_counter_ns
    out = []
    # The collector off for both sides alike: a pause is the collector's, not the code's.
    gc.collect()
    gc.disable()
    try:
        for _ in range(calls):
            start = clock()
            call()
            out.append((clock() - start) / 1000)
    finally:
        gc.enable()
    return out


def pct(values: list[float], q: int) -> float:
    return quantiles(values, n=100, method="inclusive")[q - 1]


def row(name: str, values: list[float]) -> str:
    return f"  {name:<46} p50 {pct(values, 50):9.2f} us   p99 {pct(values, 99):9.2f} us"


def compare(label: str, ours: list[float], baseline: list[float], *, budget: str) -> str:
    p50 = pct(ours, 50) / pct(baseline, 50)
    p99 = pct(ours, 99) / pct(baseline, 99)
    return f"  -> {label}: p50 ratio {p50:.2f}x, p99 ratio {p99:.2f}x the baseline ({budget})"
