"""NAB (Numenta Anomaly Benchmark) scoring, pure and index-based.

Implements the rules of NAB v1.x (``nab/labeler.py``, ``nab/sweeper.py`` and
``config/profiles.json``) on row indices, so that it needs neither pandas nor
files:

* label windows: 10 % of a file's rows, shared equally among its labels and
  centred on each label; overlapping windows merge;
* probation: the first ``min(floor(0.15 * n), 0.15 * 5000)`` rows are not scored;
* a window's score is its earliest detection's scaled sigmoid, weighted by the
  profile's ``tp_weight``; an undetected window costs ``fn_weight``;
* a detection outside every window costs ``fp_weight`` times the scaled sigmoid
  of its distance past the previous window (``-fp_weight`` if no window precedes
  it or it is more than three window-widths past);
* normalisation: ``100 * (S - S_null) / (S_perfect - S_null)``.

Detections are row indices (the rows where a detector's output crosses its
threshold). Everything here is deterministic and free of I/O.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from monitor.errors import ConfigError, InvalidRecordError

WINDOW_FRACTION = 0.10
"""Share of a file's rows covered by its label windows, all labels together."""

PROBATION_FRACTION = 0.15
"""Share of a file's rows (capped at 15 % of 5000) that is not scored."""


@dataclass(frozen=True)
class CostProfile:
    """Weights of one NAB application profile.

    Attributes:
        name: Profile name as in NAB's ``config/profiles.json``.
        tp_weight: Reward for a window detected at its left edge (> 0).
        fp_weight: Cost of a false positive far from any window (>= 0).
        fn_weight: Cost of a window with no detection (>= 0).

    """

    name: str
    tp_weight: float
    fp_weight: float
    fn_weight: float


PROFILES: Mapping[str, CostProfile] = {
    "standard": CostProfile("standard", 1.0, 0.11, 1.0),
    "reward_low_FP_rate": CostProfile("reward_low_FP_rate", 1.0, 0.22, 1.0),
    "reward_low_FN_rate": CostProfile("reward_low_FN_rate", 1.0, 0.11, 2.0),
}
"""NAB's three application profiles, keyed by name."""


@dataclass(frozen=True)
class FileScore:
    """NAB score of one detector on one file.

    Attributes:
        score: Raw NAB score (unbounded; ``-fn_weight * n_windows`` for no
            detections, ``tp_weight * n_windows`` for a perfect detector).
        n_windows: Number of (merged) label windows in the file.
        windows_detected: Windows with at least one scored detection.
        true_positive_rows: Scored detections inside a window.
        false_positive_rows: Scored detections outside every window.
        false_negative_rows: Scored window rows without a detection.
        true_negative_rows: Scored rows outside windows without a detection.

    """

    score: float
    n_windows: int
    windows_detected: int
    true_positive_rows: int
    false_positive_rows: int
    false_negative_rows: int
    true_negative_rows: int


def get_profile(name: str) -> CostProfile:
    """Return the NAB profile called ``name``.

    Raises:
        ConfigError: If ``name`` is not one of :data:`PROFILES`.

    """
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        problem = f"profile: unknown NAB profile {name!r} ({known})"
        raise ConfigError([problem]) from None


def scaled_sigmoid(relative_position: float) -> float:
    """NAB's scaled sigmoid ``2 / (1 + exp(5 y)) - 1``, in [-1, 1].

    Args:
        relative_position: ``y``; about -1 at a window's left edge, 0 at its
            right edge and positive past it. Values above 3 give -1.

    Returns:
        The sigmoid value: near 1 for early detections, -1 far past a window.

    """
    if relative_position > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * relative_position)) - 1.0


def probation_length(n_rows: int, fraction: float = PROBATION_FRACTION) -> int:
    """Return the number of leading rows NAB does not score.

    Args:
        n_rows: Rows in the file (>= 0).
        fraction: Probationary share, 0.15 in NAB.

    Returns:
        ``ceil(min(floor(fraction * n_rows), fraction * 5000))``: NAB compares
        row indices against the float cap, so a fractional cap rounds up.

    """
    return math.ceil(min(math.floor(fraction * n_rows), fraction * 5000))


def merge_windows(windows: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sort inclusive ``(first, last)`` row windows and merge overlapping ones.

    Raises:
        InvalidRecordError: If a window ends before it starts.

    """
    merged: list[tuple[int, int]] = []
    for first, last in sorted(windows):
        if last < first:
            raise InvalidRecordError(f"window ({first}, {last}) ends before it starts")
        if merged and first <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return merged


def label_windows(
    n_rows: int, label_rows: Sequence[int], fraction: float = WINDOW_FRACTION
) -> list[tuple[int, int]]:
    """Build NAB's label windows around anomaly labels.

    Args:
        n_rows: Rows in the file (> 0).
        label_rows: Row index of each labelled anomaly.
        fraction: Share of all rows covered by the windows together (0-1).

    Returns:
        Merged inclusive ``(first, last)`` row windows, each
        ``int(fraction * n_rows / len(label_rows))`` rows wide before clipping
        to the file and centred on its label.

    Raises:
        InvalidRecordError: If a label lies outside ``[0, n_rows)``.

    """
    if not label_rows:
        return []
    length = int(fraction * n_rows / len(label_rows))
    windows = []
    for row in label_rows:
        if not 0 <= row < n_rows:
            raise InvalidRecordError(f"label row {row} outside [0, {n_rows})")
        windows.append((max(row - length // 2, 0), min(row + length // 2, n_rows - 1)))
    return merge_windows(windows)


def windows_to_rows(
    timestamps: Sequence[datetime], windows: Iterable[tuple[datetime, datetime]]
) -> list[tuple[int, int]]:
    """Map timestamp windows to inclusive row windows.

    Args:
        timestamps: The file's row timestamps, ascending.
        windows: ``(start, end)`` pairs, inclusive, in the same time zone
            convention as ``timestamps``.

    Returns:
        Merged ``(first, last)`` row windows: the first row at or after
        ``start`` and the last row at or before ``end``. Windows holding no
        row are dropped.

    """
    rows = []
    for start, end in windows:
        first = bisect.bisect_left(timestamps, start)
        last = bisect.bisect_right(timestamps, end) - 1
        if first <= last:
            rows.append((first, last))
    return merge_windows(rows)


def score_detections(
    n_rows: int,
    detections: Iterable[int],
    windows: Sequence[tuple[int, int]],
    profile: CostProfile,
    probation: int | None = None,
) -> FileScore:
    """Score one file's detections the way NAB's sweeper does.

    Args:
        n_rows: Rows in the file (> 0).
        detections: Row indices where the detector fired; duplicates count once.
        windows: Inclusive ``(first, last)`` label windows; overlaps are merged.
        profile: Cost weights.
        probation: Leading rows that are not scored; defaults to
            :func:`probation_length`.

    Returns:
        The raw score and the row counts.

    Raises:
        InvalidRecordError: If a detection or window lies outside the file.

    """
    merged = merge_windows(windows)
    if merged and (merged[0][0] < 0 or merged[-1][1] >= n_rows):
        raise InvalidRecordError(f"a window lies outside rows [0, {n_rows})")
    skip = probation_length(n_rows) if probation is None else probation
    fired = set(detections)
    if any(not 0 <= row < n_rows for row in fired):
        raise InvalidRecordError(f"a detection lies outside rows [0, {n_rows})")

    best: list[float | None] = [None] * len(merged)
    fp_total = 0.0
    tp_rows = fp_rows = 0
    starts = [first for first, _ in merged]
    for row in sorted(fired):
        if row < skip:
            continue
        k = bisect.bisect_right(starts, row) - 1
        if k >= 0 and row <= merged[k][1]:
            first, last = merged[k]
            width = last - first + 1
            weighted = (
                scaled_sigmoid(-(last - row + 1) / width)
                * profile.tp_weight
                / scaled_sigmoid(-1.0)
            )
            current = best[k]
            best[k] = weighted if current is None else max(current, weighted)
            tp_rows += 1
            continue
        fp_rows += 1
        if k < 0:
            fp_total -= profile.fp_weight
            continue
        prev_first, prev_last = merged[k]
        prev_width = prev_last - prev_first + 1
        # NAB divides by (width - 1); a one-row window would divide by zero.
        position = (row - prev_last) / max(prev_width - 1, 1)
        fp_total += profile.fp_weight * scaled_sigmoid(position)

    tp_total = sum(value for value in best if value is not None)
    missed = sum(1 for value in best if value is None)
    scored_window_rows = sum(
        max(0, last - max(first, skip) + 1) for first, last in merged
    )
    scored_rows = max(0, n_rows - skip)
    return FileScore(
        score=tp_total + fp_total - profile.fn_weight * missed,
        n_windows=len(merged),
        windows_detected=len(merged) - missed,
        true_positive_rows=tp_rows,
        false_positive_rows=fp_rows,
        false_negative_rows=scored_window_rows - tp_rows,
        true_negative_rows=scored_rows - scored_window_rows - fp_rows,
    )


def null_score(n_windows: int, profile: CostProfile) -> float:
    """Raw score of the detector that never fires: ``-fn_weight * n_windows``."""
    return -profile.fn_weight * n_windows


def perfect_score(n_windows: int, profile: CostProfile) -> float:
    """Raw score of a detector firing at every window's first row."""
    return profile.tp_weight * n_windows


def normalise(raw_score: float, n_windows: int, profile: CostProfile) -> float:
    """Map a raw score summed over files to NAB's 0-100 scale.

    Args:
        raw_score: Sum of the raw file scores.
        n_windows: Sum of the files' window counts (> 0).
        profile: The profile the scores were computed with.

    Returns:
        ``100 * (raw - null) / (perfect - null)``: 100 for a perfect detector,
        0 for the null detector, negative when worse than doing nothing.

    Raises:
        InvalidRecordError: If ``n_windows`` is not positive.

    """
    if n_windows <= 0:
        raise InvalidRecordError("cannot normalise a score over zero windows")
    null = null_score(n_windows, profile)
    perfect = perfect_score(n_windows, profile)
    return 100.0 * (raw_score - null) / (perfect - null)


def normalise_with_null(
    raw_score: float, raw_null_score: float, n_windows: int, tp_weight: float = 1.0
) -> float:
    """Normalise with a measured null score, as NAB does from its results files.

    Args:
        raw_score: The detector's raw score summed over files.
        raw_null_score: The null detector's raw score over the same files.
        n_windows: Windows in those files (> 0).
        tp_weight: The profile's true-positive weight.

    Returns:
        ``100 * (raw - null) / (tp_weight * n_windows - null)``.

    Raises:
        InvalidRecordError: If the perfect and null scores coincide.

    """
    perfect = tp_weight * n_windows
    if perfect == raw_null_score:
        raise InvalidRecordError("perfect and null scores coincide")
    return 100.0 * (raw_score - raw_null_score) / (perfect - raw_null_score)
