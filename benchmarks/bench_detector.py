"""Microseconds per window update: BurstDetector against a rolling z-score.

Run: ``python benchmarks/bench_detector.py [--windows N] [--runs R]``. Prints
one JSON object; the ratio is detector time over baseline time, both measured
in this run on the same synthetic count series (a value series, which takes
the value model, is timed too).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import numpy as np

from monitor.analysis.bursts import BurstDetector


class RollingZScore:
    """Windowed Gaussian baseline: z-score against the last ``size`` counts."""

    def __init__(self, size: int = 288) -> None:
        self.values: deque[float] = deque(maxlen=size)
        self.total = 0.0
        self.squares = 0.0

    def update(self, window_start: datetime, count: float) -> float:
        n = len(self.values)
        z = 0.0
        if n > 1:
            mean = self.total / n
            var = max(self.squares / n - mean * mean, 1e-9)
            z = (count - mean) / math.sqrt(var)
        if n == self.values.maxlen:
            old = self.values[0]
            self.total -= old
            self.squares -= old * old
        self.values.append(count)
        self.total += count
        self.squares += count * count
        return z


def _time(
    make: Callable[[], object], times: list[datetime], counts: list[float]
) -> float:
    detector = make()
    update = detector.update  # type: ignore[attr-defined]
    start = time.perf_counter()
    for moment, count in zip(times, counts, strict=True):
        update(moment, count)
    return (time.perf_counter() - start) / len(counts) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--windows", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    hours = (np.arange(args.windows) * 5 / 60) % 24
    rate = 5 + 40 * 0.5 * (1 - np.cos(2 * np.pi * hours / 24))
    counts = rng.poisson(rate).astype(float).tolist()
    t0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
    times = [t0 + timedelta(minutes=5 * i) for i in range(args.windows)]
    detector_us = [_time(BurstDetector, times, counts) for _ in range(args.runs)]
    # A value series (fractional, may be negative) takes the value model.
    values = (rng.normal(0.0, 1.0, args.windows) + rate / 10.0).tolist()
    value_us = [_time(BurstDetector, times, values) for _ in range(args.runs)]
    baseline_us = [_time(RollingZScore, times, counts) for _ in range(args.runs)]
    detector = statistics.median(detector_us)
    baseline = statistics.median(baseline_us)
    print(
        json.dumps(
            {
                "windows": args.windows,
                "runs": args.runs,
                "detector_us_per_update": round(detector, 2),
                "value_series_us_per_update": round(statistics.median(value_us), 2),
                "baseline_us_per_update": round(baseline, 2),
                "ratio": round(detector / baseline, 2),
                "baseline": "rolling mean/std z-score over 288 windows",
            }
        )
    )


if __name__ == "__main__":
    main()
