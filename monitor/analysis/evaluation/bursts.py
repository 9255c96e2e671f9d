"""Evaluate the burst detector on a folder in NAB format.

A NAB folder holds ``*.csv`` series (header ``timestamp,value``, timestamps
``YYYY-MM-DD HH:MM:SS`` taken as UTC) and ``combined_windows.json`` mapping keys
such as ``"realTweets/Twitter_volume_FB.csv"`` to ``[start, end]`` label
windows. Files are matched to keys by basename; CSVs without a key are skipped.

Each series is fed to a fresh :class:`~monitor.analysis.bursts.BurstDetector`
one value at a time, exactly as a stream would. A NAB detection is the row at
which a burst event starts; NAB then rewards the earliest detection in each
window and charges every other detection as a false positive.
"""

from __future__ import annotations

import csv
import json
import pathlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from monitor.analysis.bursts import BurstDetector, BurstPhase, DetectorConfig
from monitor.analysis.evaluation import nab
from monitor.errors import InvalidRecordError

WINDOWS_FILE = "combined_windows.json"


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


def _parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.strip())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment


def load_series(directory: pathlib.Path) -> list[Series]:
    """Read every labelled series of a NAB folder.

    Args:
        directory: Folder with ``*.csv`` files and ``combined_windows.json``.

    Returns:
        The series that have an entry in the windows file, sorted by name.

    Raises:
        InvalidRecordError: If the windows file is missing or a CSV is
            malformed.

    """
    windows_path = directory / WINDOWS_FILE
    try:
        raw_windows = json.loads(windows_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidRecordError(f"cannot read {windows_path}: {exc}") from exc
    by_name = {
        pathlib.PurePosixPath(key).name: value for key, value in raw_windows.items()
    }
    series = []
    for path in sorted(directory.glob("*.csv")):
        if path.name not in by_name:
            continue
        timestamps: list[datetime] = []
        values: list[float] = []
        try:
            with path.open(newline="", encoding="utf-8") as handle:
                for row in csv.DictReader(handle):
                    timestamps.append(_parse_time(row["timestamp"]))
                    values.append(float(row["value"]))
        except (OSError, KeyError, ValueError) as exc:
            raise InvalidRecordError(f"cannot read {path}: {exc}") from exc
        limits = [(_parse_time(a), _parse_time(b)) for a, b in by_name[path.name]]
        series.append(
            Series(
                name=path.name,
                timestamps=timestamps,
                values=values,
                windows=nab.windows_to_rows(timestamps, limits),
            )
        )
    return series


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
        series: Output of :func:`load_series`.
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


def evaluate_dir(directory: pathlib.Path, profile: str = "standard") -> dict[str, Any]:
    """Score the default detector on a NAB-format folder.

    Args:
        directory: Folder with ``*.csv`` series and ``combined_windows.json``.
        profile: ``standard``, ``reward_low_FP_rate`` or ``reward_low_FN_rate``.

    Returns:
        ``{"profile": str, "score": float, "files": {basename: float},
        "windows": int}``; scores are NAB-normalised (100 perfect, 0 null).

    Raises:
        ConfigError: If the profile is unknown.
        InvalidRecordError: If the folder cannot be read or has no windows.

    """
    return evaluate_series(load_series(pathlib.Path(directory)), profile)
