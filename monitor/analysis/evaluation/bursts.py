"""Evaluate the burst detector on labelled series, NAB style.

A :class:`Series` is one NAB data file already read (reading NAB trees is the
caller's: ``monitor evaluate bursts`` uses
:func:`monitor.cli.datasets.read_nab_series`).

What is evaluated is what users get:

* each series is fed to a fresh :class:`~monitor.analysis.bursts.BurstDetector`
  with its default configuration, one row at a time, as a stream would;
* a row is a *firing* when its ``alert_score`` (the detector's score of a
  window that is news: see :class:`~monitor.analysis.bursts.WindowScore`)
  reaches the ``burst`` rule's threshold (:data:`RULE_THRESHOLD`, the shipped
  default of ``examples/rules.yaml``);
* a NAB detection is the first row of each run of firings. The product's
  ``burst`` rule (:func:`monitor.analysis.detection._burst_fires`) fires on
  the same windows and, while the detector's event lasts, again on windows
  whose score reaches the threshold above their baseline; those fold into
  the incident the first firing opened, so they are not new alarms and are
  not counted here.

Rows whose timestamp is not after the previous row's (NAB has a few repeated
stamps) are fed one second after the previous row, so the detector, which
needs increasing window starts, sees every row; the window length is the
file's median row spacing. NAB scores rows, not times, so a detection stays
on its row.

Published NAB detectors chose one threshold per detector and profile to
maximise the raw score over all 58 files; ours is fixed in advance, so the
comparison is conservative.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from monitor.analysis.bursts import BurstDetector, DetectorConfig
from monitor.analysis.evaluation import nab

RULE_THRESHOLD = 4.0
"""Threshold of the ``burst`` rule as shipped (``examples/rules.yaml``):
the detector's score, ``-log10`` of a tail probability."""


@dataclass(frozen=True)
class Series:
    """One NAB data file.

    Attributes:
        name: Path relative to the folder read, e.g. ``Twitter_volume_FB.csv``
            or ``realKnownCause/nyc_taxi.csv``.
        timestamps: Row times, UTC, in file order (may repeat).
        values: Row values (any finite floats).
        windows: Inclusive ``(first, last)`` label windows in rows; may be
            empty.
        category: NAB category (the key's folder, e.g. ``realTweets``), or
            ``""`` if the key has none.

    """

    name: str
    timestamps: list[datetime]
    values: list[float]
    windows: list[tuple[int, int]]
    category: str = ""


@dataclass(frozen=True)
class RawScore:
    """One file's raw NAB score with the references to normalise it.

    Attributes:
        score: The detector's raw score.
        null: The null detector's raw score on the file.
        perfect: The perfect detector's raw score on the file.
        n_windows: Label windows in the file.
        detections: Scored and unscored detections (rows).
        false_positives: Scored detections outside every window.

    """

    score: float
    null: float
    perfect: float
    n_windows: int
    detections: int
    false_positives: int


def feed_times(timestamps: Sequence[datetime]) -> list[datetime]:
    """Return strictly increasing times to feed a detector a file's rows.

    A row at or before the previous fed time is fed one second after it.

    Args:
        timestamps: Row times in file order, timezone-aware.

    Returns:
        One time per row, strictly increasing.

    """
    fed: list[datetime] = []
    for moment in timestamps:
        if fed and moment <= fed[-1]:
            moment = fed[-1] + timedelta(seconds=1)
        fed.append(moment)
    return fed


def row_spacing_seconds(timestamps: Sequence[datetime]) -> float | None:
    """Return the median gap between rows (seconds), or ``None`` if unknown."""
    gaps = [
        (b - a).total_seconds()
        for a, b in zip(timestamps, timestamps[1:], strict=False)
        if b > a
    ]
    return statistics.median(gaps) if gaps else None


def firing_onsets(firings: Iterable[bool]) -> list[int]:
    """Return the indices that start a run of ``True`` values."""
    rows = []
    previous = False
    for row, fired in enumerate(firings):
        if fired and not previous:
            rows.append(row)
        previous = fired
    return rows


def detect_rows(
    timestamps: Sequence[datetime],
    values: Sequence[float],
    config: DetectorConfig | None = None,
    threshold: float = RULE_THRESHOLD,
) -> list[int]:
    """Run a fresh detector over a series and return its NAB detections.

    Args:
        timestamps: Row times, timezone-aware, in file order.
        values: One value per row.
        config: Detector settings; the default configuration (with the
            window length set to the median row spacing) if omitted.
        threshold: Score at which the ``burst`` rule fires.

    Returns:
        Rows that start a run of firings (see the module docstring).

    """
    base = config or DetectorConfig()
    if base.window_seconds is None:
        spacing = row_spacing_seconds(timestamps)
        if spacing is not None:
            base = _with_window(base, spacing)
    detector = BurstDetector(base)
    firings = []
    for moment, value in zip(feed_times(timestamps), values, strict=True):
        scored = detector.update(moment, value)
        firings.append(scored.alert_score >= threshold)
    return firing_onsets(firings)


def _with_window(config: DetectorConfig, window_seconds: float) -> DetectorConfig:
    fields = {name: getattr(config, name) for name in config.__dataclass_fields__}
    fields["window_seconds"] = window_seconds
    return DetectorConfig(**fields)


def score_file(
    series: Series, rows: Iterable[int], profile: nab.CostProfile
) -> RawScore:
    """Score one file's detections under a profile.

    Args:
        series: The labelled file.
        rows: Its detections (row indices).
        profile: NAB cost weights.

    Returns:
        The raw score with the file's null and perfect scores.

    """
    detections = sorted(set(rows))
    result = nab.score_detections(
        len(series.values), detections, series.windows, profile
    )
    return RawScore(
        score=result.score,
        null=nab.null_score(result.n_windows, profile),
        perfect=nab.perfect_score(result.n_windows, profile),
        n_windows=result.n_windows,
        detections=len(detections),
        false_positives=result.false_positive_rows,
    )


def normalise_sum(scores: Iterable[RawScore]) -> float | None:
    """NAB's normalisation of summed raw scores, or ``None`` without windows.

    ``100 * (sum S - sum S_null) / (sum S_perfect - sum S_null)``: files
    without windows add their false positives to the sum and nothing to the
    references.
    """
    items = list(scores)
    null = sum(item.null for item in items)
    perfect = sum(item.perfect for item in items)
    if perfect == null:
        return None
    total = sum(item.score for item in items)
    return 100.0 * (total - null) / (perfect - null)


def report_scores(
    series: Sequence[Series],
    scores: Mapping[str, RawScore],
    profile: str,
) -> dict[str, Any]:
    """Build the report of one profile from per-file raw scores.

    Args:
        series: The files, in report order.
        scores: Raw score per file name.
        profile: Profile name, for the report.

    Returns:
        ``{"profile", "score", "windows", "files", "categories", "raw"}``: the
        overall normalised score (``None`` if no file has a window), the
        window count, the normalised score per file (``None`` for a file
        without windows), per category ``{"score", "windows", "files"}``,
        and per file the raw score, null, perfect, window count, detections
        and false positives.

    """
    by_category: dict[str, list[str]] = {}
    for item in series:
        by_category.setdefault(item.category, []).append(item.name)
    return {
        "profile": profile,
        "score": normalise_sum(scores[item.name] for item in series),
        "windows": sum(scores[item.name].n_windows for item in series),
        "files": {item.name: normalise_sum([scores[item.name]]) for item in series},
        "categories": {
            category: {
                "score": normalise_sum(scores[name] for name in names),
                "windows": sum(scores[name].n_windows for name in names),
                "files": len(names),
            }
            for category, names in sorted(by_category.items())
        },
        "raw": {
            item.name: {
                "score": scores[item.name].score,
                "null": scores[item.name].null,
                "perfect": scores[item.name].perfect,
                "windows": scores[item.name].n_windows,
                "detections": scores[item.name].detections,
                "false_positives": scores[item.name].false_positives,
                "category": item.category,
            }
            for item in series
        },
    }


def evaluate_series(
    series: Sequence[Series],
    profile: str = "standard",
    config: DetectorConfig | None = None,
    threshold: float = RULE_THRESHOLD,
) -> dict[str, Any]:
    """Score the detector on loaded series under one NAB profile.

    Args:
        series: The labelled series, e.g. read from a NAB tree.
        profile: NAB profile name (see :data:`.nab.PROFILES`).
        config: Detector settings; the default configuration if omitted.
        threshold: Score at which the ``burst`` rule fires.

    Returns:
        The report of :func:`report_scores`, plus ``"threshold"``.

    Raises:
        ConfigError: If the profile is unknown.

    """
    return evaluate_profiles(series, [profile], config, threshold)[profile]


def evaluate_profiles(
    series: Sequence[Series],
    profiles: Sequence[str] = tuple(nab.PROFILES),
    config: DetectorConfig | None = None,
    threshold: float = RULE_THRESHOLD,
) -> dict[str, dict[str, Any]]:
    """Run the detector once per series and score it under several profiles.

    Args:
        series: The labelled series.
        profiles: NAB profile names.
        config: Detector settings; the default configuration if omitted.
        threshold: Score at which the ``burst`` rule fires.

    Returns:
        One :func:`report_scores` report (plus ``"threshold"``) per profile.

    Raises:
        ConfigError: If a profile is unknown.

    """
    costs = [nab.get_profile(name) for name in profiles]
    detections = {
        item.name: detect_rows(item.timestamps, item.values, config, threshold)
        for item in series
    }
    reports = {}
    for name, cost in zip(profiles, costs, strict=True):
        scores = {
            item.name: score_file(item, detections[item.name], cost) for item in series
        }
        report = report_scores(series, scores, name)
        report["threshold"] = threshold
        reports[name] = report
    return reports
