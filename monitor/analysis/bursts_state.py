"""State of one burst detector, and its JSON-able snapshot.

What a detector has learned (baselines, calibration, records), the event it
tracks, and their round trip through plain dicts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from monitor.analysis.bursts_noise import to_utc
from monitor.errors import InvalidRecordError

SNAPSHOT_VERSION = 4
"""Version of :func:`snapshot_of`; 2 added the refractory clock, 3 the value
model, 4 the last event's peak score (a version 3 snapshot restores with 0)."""

_READABLE_VERSIONS = (3, SNAPSHOT_VERSION)


@dataclass(frozen=True)
class BurstEvent:
    """One burst: a run of windows from a high score until it calms down.

    Attributes:
        started_at: Start of the window whose score reached ``enter_score``.
        peak_at: Start of the window with the highest score so far.
        ended_at: Start of the last window of the event, set once it ended
            (after ``quiet_windows`` quiet windows in a row, see
            ``DetectorConfig.quiet_windows``).
        peak_score: Highest score in the event, in standard deviations.
        peak_observed_count: Count of the peak window (posts).
        peak_expected_count: Baseline expectation of the peak window (posts).
        windows: Windows seen since the event started, the current included.

    """

    started_at: datetime
    peak_at: datetime
    ended_at: datetime | None
    peak_score: float
    peak_observed_count: float
    peak_expected_count: float
    windows: int


@dataclass
class DetectorState:
    """What a :class:`~monitor.analysis.bursts.BurstDetector` has learned."""

    level: float = 0.0
    trend: float = 0.0
    dispersion_num: float = 0.0
    dispersion_den: float = 0.0
    daily: list[float] = field(default_factory=lambda: [1.0] * 24)
    daily_visits: list[int] = field(default_factory=lambda: [0] * 24)
    weekly: list[float] = field(default_factory=lambda: [1.0] * 7)
    weekly_visits: list[int] = field(default_factory=lambda: [0] * 7)
    sums: list[list[float]] = field(default_factory=list)
    tails: list[list[float]] = field(default_factory=list)
    windows_seen: int = 0
    window_seconds: float | None = None
    first_start: datetime | None = None
    last_start: datetime | None = None
    event: BurstEvent | None = None
    quiet: int = 0
    record: float = 0.0
    loud_record: float = 0.0
    last_event_start: datetime | None = None
    last_event_peak: float = 0.0
    count_like: bool = True
    value_level: float = 0.0
    value_variance: float = 0.0
    value_daily: list[float] = field(default_factory=lambda: [0.0] * 24)


def snapshot_of(state: DetectorState) -> dict[str, Any]:
    """Return ``state`` as a JSON-able dict.

    Returns:
        Plain floats, ints, lists, strings and ``None``; datetimes are ISO
        8601 strings in UTC.

    """
    data = asdict(state)
    for key in ("first_start", "last_start", "last_event_start"):
        moment = getattr(state, key)
        data[key] = None if moment is None else moment.isoformat()
    event = state.event
    data["event"] = None if event is None else _event_to_dict(event)
    data["version"] = SNAPSHOT_VERSION
    return data


def state_from_snapshot(snapshot: Mapping[str, Any]) -> DetectorState:
    """Rebuild a state from :func:`snapshot_of` output (possibly via JSON).

    Raises:
        InvalidRecordError: If the snapshot is malformed or of another
            version.

    """
    if snapshot.get("version") not in _READABLE_VERSIONS:
        raise InvalidRecordError(
            f"burst snapshot version {snapshot.get('version')!r} is not"
            f" {SNAPSHOT_VERSION}"
        )
    try:
        state = DetectorState(
            level=float(snapshot["level"]),
            trend=float(snapshot["trend"]),
            dispersion_num=float(snapshot["dispersion_num"]),
            dispersion_den=float(snapshot["dispersion_den"]),
            daily=[float(v) for v in snapshot["daily"]],
            daily_visits=[int(v) for v in snapshot["daily_visits"]],
            weekly=[float(v) for v in snapshot["weekly"]],
            weekly_visits=[int(v) for v in snapshot["weekly_visits"]],
            sums=[[float(v) for v in row] for row in snapshot["sums"]],
            tails=[[float(v) for v in row] for row in snapshot["tails"]],
            windows_seen=int(snapshot["windows_seen"]),
            window_seconds=(
                None
                if snapshot["window_seconds"] is None
                else float(snapshot["window_seconds"])
            ),
            first_start=_parse_time(snapshot["first_start"]),
            last_start=_parse_time(snapshot["last_start"]),
            event=(
                None
                if snapshot["event"] is None
                else _event_from_dict(snapshot["event"])
            ),
            quiet=int(snapshot["quiet"]),
            record=float(snapshot["record"]),
            loud_record=float(snapshot["loud_record"]),
            last_event_start=_parse_time(snapshot["last_event_start"]),
            last_event_peak=float(snapshot.get("last_event_peak", 0.0)),
            count_like=bool(snapshot["count_like"]),
            value_level=float(snapshot["value_level"]),
            value_variance=float(snapshot["value_variance"]),
            value_daily=[float(v) for v in snapshot["value_daily"]],
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidRecordError(f"malformed burst snapshot: {exc!r}") from exc
    if len(state.daily) != 24 or len(state.weekly) != 7 or len(state.value_daily) != 24:
        raise InvalidRecordError("malformed burst snapshot: seasonal lengths")
    return state


def _parse_time(text: str | None) -> datetime | None:
    if text is None:
        return None
    return to_utc(datetime.fromisoformat(text), "snapshot time")


def _event_to_dict(event: BurstEvent) -> dict[str, Any]:
    data = asdict(event)
    for key in ("started_at", "peak_at", "ended_at"):
        moment = getattr(event, key)
        data[key] = None if moment is None else moment.isoformat()
    return data


def _event_from_dict(data: Mapping[str, Any]) -> BurstEvent:
    started = _parse_time(data["started_at"])
    peak = _parse_time(data["peak_at"])
    if started is None or peak is None:
        raise ValueError("event without start or peak")
    return BurstEvent(
        started_at=started,
        peak_at=peak,
        ended_at=_parse_time(data["ended_at"]),
        peak_score=float(data["peak_score"]),
        peak_observed_count=float(data["peak_observed_count"]),
        peak_expected_count=float(data["peak_expected_count"]),
        windows=int(data["windows"]),
    )
