"""What every benchmark shares: one percentile rule, one summary line, and the configuration printed first, so a
figure is never read without the setting that produced it."""

from __future__ import annotations

import math
import os
import platform
import statistics
from collections.abc import Mapping, Sequence


def pct(values: Sequence[float], p: float) -> float:
    """The nearest-rank percentile (p in 0..100): the smallest value with at least p% of the values at or below
    it. The one rule of every benchmark, so figures of different benchmarks compare."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


def summary(values: Sequence[float], unit: str = "ms") -> str:
    """``p50 / p99 / max / mean`` of one series, for a line of output."""
    return (f"p50 {pct(values, 50):.2f} {unit}, p99 {pct(values, 99):.2f} {unit}, max {max(values):.2f} {unit}, "
            f"mean {statistics.fmean(values):.2f} {unit} (n={len(values)})")


def print_config(name: str, settings: Mapping[str, object]) -> None:
    """The benchmark's configuration and the machine it ran on, before any figure."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"== {name}: python {platform.python_version()}, {os.cpu_count()} cores, load {load:.1f} at start")
    for key, value in settings.items():
        print(f"   {key} = {value}")


def ratio_line(label: str, value: float, base: float, unit: str = "ms",
               names: tuple[str, str] = ("bot", "bare")) -> str:
    """A figure side by side with its baseline from the same run: both, the ratio and the difference."""
    return (f"{label}: {names[0]} {value:.2f} {unit}, {names[1]} {base:.2f} {unit}, ratio {value / base:.3f}, "
            f"extra {value - base:+.2f} {unit}")


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


__all__ = ["median", "pct", "print_config", "ratio_line", "summary"]
