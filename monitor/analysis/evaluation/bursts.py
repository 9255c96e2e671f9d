"""Evaluate the burst detector on labelled series, NAB style.

A :class:`Series` is one NAB data file already read (reading NAB folders is
the caller's: ``monitor evaluate bursts`` uses
:func:`monitor.cli.datasets.read_nab_series`).

Each series is fed to a fresh :class:`~monitor.analysis.bursts.BurstDetector`
one value at a time, exactly as a stream would. A NAB detection is the row at
which a burst event starts; NAB then rewards the earliest detection in each
window and charges every other detection as a false positive.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from monitor.analysis.bursts import BurstDetector, BurstPhase, DetectorConfig
from monitor.analysis.evaluation import nab


@dataclass(frozen=True)
class Series:
    """One NAB data file.

    Attributes:
        name: File basename, e.g. ``Twitter_volume_FB.csv``.
        timestamps: Row times, UTC, ascending.
        values: Row values (posts per window, >= 0).
        windows: Inclusive ``(first, last)`` label windows in rows.

    """

    name: str
    timestamps: list[datetime]
    values: list[float]
    windows: list[tuple[int, int]]


def detect_rows(
    timestamps: Sequence[datetime],
    values: Sequence[float],
    config: DetectorConfig | None = None,
) -> list[int]:
    """Run a fresh detector over a series and return its NAB detections.

    Args:
        timestamps: Window starts, timezone-aware, ascending.
        values: Counts per window (>= 0).
        config: Detector settings; the default configuration if omitted.

    Returns:
        Row indices at which a burst event started.

    """
    detector = BurstDetector(config)
    rows = []
    for row, (moment, value) in enumerate(zip(timestamps, values, strict=True)):
        if detector.update(moment, value).phase is BurstPhase.STARTED:
            rows.append(row)
    return rows


def evaluate_series(
    series: Sequence[Series],
    profile: str = "standard",
    config: DetectorConfig | None = None,
) -> dict[str, Any]:
    """Score the detector on loaded series under one NAB profile.

    Args:
        series: The labelled series, e.g. read from a NAB folder.
        profile: NAB profile name (see :data:`.nab.PROFILES`).
        config: Detector settings; the default configuration if omitted.

    Returns:
        ``{"profile", "score", "files", "windows"}``: the overall normalised
        score (0-100, NAB scale), the normalised score per file and the total
        number of label windows.

    Raises:
        ConfigError: If the profile is unknown.
        InvalidRecordError: If no series has a label window.

    """
    costs = nab.get_profile(profile)
    total = 0.0
    n_windows = 0
    files: dict[str, float] = {}
    for item in series:
        rows = detect_rows(item.timestamps, item.values, config)
        result = nab.score_detections(len(item.values), rows, item.windows, costs)
        total += result.score
        n_windows += result.n_windows
        if result.n_windows:
            files[item.name] = nab.normalise(result.score, result.n_windows, costs)
    return {
        "profile": profile,
        "score": nab.normalise(total, n_windows, costs),
        "files": files,
        "windows": n_windows,
    }
