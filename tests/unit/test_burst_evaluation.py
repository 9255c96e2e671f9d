"""NAB trees of any shape, leave-one-series-out CV, value series, upper bounds."""

from __future__ import annotations

import json
import math
import pathlib
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from monitor.analysis.bursts import BurstDetector, DetectorConfig
from monitor.analysis.evaluation import nab
from monitor.analysis.evaluation.bursts import (
    RawScore,
    evaluate_profiles,
    feed_times,
    firing_onsets,
    normalise_sum,
)
from monitor.analysis.evaluation.crossval import (
    cross_validate,
    leave_one_out,
    objective,
)
from monitor.cli.datasets import read_nab_series
from monitor.errors import InvalidRecordError

T0 = datetime(2024, 3, 4, tzinfo=timezone.utc)
STEP = timedelta(minutes=5)
PER_DAY = 288


def _stamp(row: int) -> str:
    return f"{T0 + row * STEP:%Y-%m-%d %H:%M:%S}"


def _write(path: pathlib.Path, values: list[float], repeat: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["timestamp,value"]
    for row, value in enumerate(values):
        lines.append(f"{_stamp(row - 1 if row == repeat else row)},{value}")
    path.write_text("\n".join(lines) + "\n")


def _tree(root: pathlib.Path) -> None:
    rng = np.random.default_rng(5)
    n = 2000
    counts = rng.poisson(10, n).astype(float)
    counts[1500:1506] = 200
    _write(root / "realTweets" / "Twitter_volume_X.csv", counts.tolist())
    level = (rng.normal(-3.0, 0.2, n)).tolist()  # negative floats
    for row in range(1400, 1410):
        level[row] += 5.0
    _write(root / "realKnownCause" / "deep" / "temp.csv", level, repeat=700)
    _write(root / "artificialNoAnomaly" / "flat.csv", [45.0] * n)
    (root / "published_detector_scores.csv").write_text("detector,score\n")
    windows = {
        "realTweets/Twitter_volume_X.csv": [[_stamp(1450), _stamp(1549)]],
        "realKnownCause/temp.csv": [[_stamp(1350), _stamp(1449)]],
        "artificialNoAnomaly/flat.csv": [],
    }
    (root / "combined_windows.json").write_text(json.dumps(windows))


def test_nested_tree_with_negative_values_repeats_and_no_windows_is_scored(
    tmp_path: pathlib.Path,
) -> None:
    _tree(tmp_path)

    series = read_nab_series(tmp_path)
    reports = evaluate_profiles(series)

    assert [s.name for s in series] == [
        "artificialNoAnomaly/flat.csv",
        "realKnownCause/deep/temp.csv",
        "realTweets/Twitter_volume_X.csv",
    ]
    assert [s.category for s in series] == [
        "artificialNoAnomaly",
        "realKnownCause",
        "realTweets",
    ]
    assert set(reports) == set(nab.PROFILES)
    report = reports["standard"]
    assert report["windows"] == 2
    assert report["files"]["artificialNoAnomaly/flat.csv"] is None
    assert report["categories"]["artificialNoAnomaly"]["score"] is None
    assert report["raw"]["artificialNoAnomaly/flat.csv"]["detections"] == 0
    assert report["files"]["realTweets/Twitter_volume_X.csv"] > 80
    assert report["files"]["realKnownCause/deep/temp.csv"] > 80
    raws = report["raw"].values()
    summed = sum(r["score"] for r in raws), sum(r["null"] for r in raws)
    assert report["score"] == pytest.approx(100 * (summed[0] - summed[1]) / 4)


def test_repeated_timestamps_are_fed_one_second_later() -> None:
    times = [T0, T0 + STEP, T0 + STEP, T0, T0 + 3 * STEP]
    fed = feed_times(times)
    assert fed == [
        T0,
        T0 + STEP,
        T0 + STEP + timedelta(seconds=1),
        T0 + STEP + timedelta(seconds=2),
        T0 + 3 * STEP,
    ]


def test_a_run_of_firings_is_one_detection() -> None:
    assert firing_onsets([False, True, True, False, True, False]) == [1, 4]


def test_non_finite_nab_value_names_the_file_and_line(tmp_path: pathlib.Path) -> None:
    (tmp_path / "a.csv").write_text("timestamp,value\n2024-03-04 00:00:00,nan\n")
    (tmp_path / "combined_windows.json").write_text(json.dumps({"x/a.csv": []}))
    with pytest.raises(InvalidRecordError, match="a.csv line 2"):
        read_nab_series(tmp_path)


# --- cross-validation ---------------------------------------------------------


def _raw(score: float, windows: int) -> RawScore:
    return RawScore(score, -float(windows), float(windows), windows, 0, 0)


def test_leave_one_out_holds_out_each_series_once() -> None:
    folds = leave_one_out(["a", "b", "c"])
    assert folds == [(["b", "c"], "a"), (["a", "c"], "b"), (["a", "b"], "c")]


def test_summed_normalisation_is_not_the_mean_of_fold_scores() -> None:
    one = _raw(1.0, 1)  # 100 on its own
    four = _raw(-4.0, 4)  # 0 on its own
    assert normalise_sum([one]) == 100 and normalise_sum([four]) == 0
    # Summed: (-3 - -5) / (5 - -5); the mean of the two would be 50.
    assert normalise_sum([one, four]) == pytest.approx(20.0)
    assert normalise_sum([_raw(-1.0, 0)]) is None


def test_groups_weigh_equally_in_the_objective() -> None:
    groups = {"t1": "tweets", "o1": "other", "o2": "other", "o3": "other"}
    scores = {
        "t1": _raw(1.0, 1),
        "o1": _raw(-1.0, 1),
        "o2": _raw(-1.0, 1),
        "o3": _raw(-1.0, 1),
    }
    assert objective(scores, groups, sorted(groups)) == pytest.approx(50.0)


def test_each_fold_chooses_without_its_held_out_series() -> None:
    groups = {"a": "g", "b": "g", "c": "g"}
    table = {
        # good on a and b, bad on c
        "first": {"a": _raw(1.0, 1), "b": _raw(1.0, 1), "c": _raw(-1.0, 1)},
        # middling, better than "first" wherever c is among the training series
        "second": {"a": _raw(0.0, 1), "b": _raw(0.0, 1), "c": _raw(0.5, 1)},
    }
    result = cross_validate(table, groups)
    assert result.configurations == 2
    # Without c, "first" wins (100 vs 50); without a or b, "second" (62.5 vs 50).
    assert result.chosen == {"a": "second", "b": "second", "c": "first"}
    assert result.default == "first"  # 66.7 vs 58.3 on all three
    # Held out: 0 + 0 - 1 over three windows; in sample: 1 + 1 - 1.
    assert result.cv_scores == {"g": pytest.approx(100 * 2 / 6)}
    assert result.in_sample_scores == {"g": pytest.approx(100 * 4 / 6)}


def test_held_out_choice_can_differ_and_ties_go_to_the_earlier() -> None:
    groups = {"a": "g", "b": "g"}
    table = {
        "x": {"a": _raw(1.0, 1), "b": _raw(-1.0, 1)},
        "y": {"a": _raw(-1.0, 1), "b": _raw(1.0, 1)},
    }
    result = cross_validate(table, groups)
    assert result.chosen == {"a": "y", "b": "x"}  # each loses its held-out
    assert result.cv_scores == {"g": 0.0}
    assert result.default == "x"  # tie on all series


def test_cross_validation_needs_the_same_series_everywhere() -> None:
    with pytest.raises(InvalidRecordError):
        cross_validate({"x": {"a": _raw(1.0, 1)}}, {"a": "g", "b": "g"})


# --- value series -------------------------------------------------------------


def _alerts(values: list[float], config: DetectorConfig | None = None) -> list[int]:
    detector = BurstDetector(config)
    rows = []
    for row, value in enumerate(values):
        if detector.update(T0 + row * STEP, value).alert_score >= 4.0:
            rows.append(row)
    return rows


def _noise(n: int, seed: int, sd: float = 1.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, sd, n)


def test_value_series_spike_alerts_once() -> None:
    values = (50.0 + _noise(3 * PER_DAY, 1)).tolist()
    values[2 * PER_DAY + 30] += 15.0
    assert _alerts(values) == [2 * PER_DAY + 30]


@pytest.mark.parametrize("seed", [2, 3])
def test_value_series_level_shift_alerts_at_once_then_is_learned(seed: int) -> None:
    values = (-20.0 + _noise(4 * PER_DAY, seed)).tolist()
    shift = 2 * PER_DAY
    values[shift:] = [v + 10.0 for v in values[shift:]]
    alerts = _alerts(values)
    assert alerts[0] == shift
    # A shift at the top of an hour is partly learned by that hour's
    # profile, so the next hour can see it again and score far above the
    # first alert (louder_ends_refractory); it is learned within hours.
    assert len(alerts) <= 2 and alerts[-1] - shift < 24
    strict = DetectorConfig(louder_ends_refractory=None)
    assert _alerts(values, strict) == [shift]


def test_value_series_slow_ramp_alerts_at_most_once() -> None:
    # Three noise sd over four days: the hour-long scale may flag the
    # build-up once the level lags it; it must not keep alerting.
    n = 4 * PER_DAY
    ramp = np.linspace(0.0, 3.0, n)
    assert len(_alerts((10.0 + ramp + _noise(n, 3)).tolist())) <= 1


@pytest.mark.parametrize("seed", [4, 5])
def test_value_series_daily_season_does_not_alert(seed: int) -> None:
    n = 5 * PER_DAY
    hours = (np.arange(n) * 5 / 60) % 24
    season = 20.0 * np.sin(2 * np.pi * hours / 24)
    assert _alerts((0.5 + season + _noise(n, seed)).tolist()) == []


def test_first_fractional_value_chooses_the_value_model_and_stops_gap_filling() -> None:
    detector = BurstDetector()
    detector.update(T0, 3.0)
    detector.update(T0 + STEP, 4.0)
    assert detector.snapshot()["count_like"] is True
    detector.update(T0 + 2 * STEP, 4.5)
    detector.update(T0 + 10 * STEP, 4.0)  # seven missing windows: not zeros
    snapshot = detector.snapshot()
    assert snapshot["count_like"] is False
    assert snapshot["windows_seen"] == 4


# --- the alerting interface ---------------------------------------------------


def _calm_counts(detector: BurstDetector, days: float = 2) -> datetime:
    counts = np.random.default_rng(9).poisson(20, int(days * PER_DAY))
    for row, count in enumerate(counts):
        detector.update(T0 + row * STEP, float(count))
    return T0 + len(counts) * STEP


@pytest.mark.parametrize("threshold", [2.5, 4.0, 6.0])
def test_upper_bound_is_where_the_alert_score_reaches_the_threshold(
    threshold: float,
) -> None:
    detector = BurstDetector()
    start = _calm_counts(detector)
    before = detector.snapshot()

    bound = detector.upper_bound(start, 10**-threshold)

    assert detector.snapshot() == before  # nothing learned
    assert detector.expected(start) < bound < math.inf
    # A count series' bound is the least whole count that alerts (a
    # fractional value would be scored by the value model).
    assert bound == int(bound)
    assert detector.peek(start, bound) >= threshold
    assert detector.peek(start, bound - 1) < threshold
    assert detector.update(start, bound).alert_score >= threshold


def test_upper_bound_grows_with_the_threshold() -> None:
    detector = BurstDetector()
    start = _calm_counts(detector)
    bounds = [detector.upper_bound(start, 10**-t) for t in (2.0, 3.0, 4.0, 5.0)]
    assert bounds == sorted(bounds) and len(set(bounds)) == 4


def test_no_bound_during_warm_up_or_an_ongoing_event() -> None:
    young = BurstDetector()
    young.update(T0, 5.0)
    assert young.upper_bound(T0 + STEP, 1e-4) == math.inf
    detector = BurstDetector()
    start = _calm_counts(detector)
    detector.update(start, 400.0)
    assert detector.event is not None
    assert detector.upper_bound(start + STEP, 1e-4) == math.inf


def test_upper_bound_rejects_a_probability_outside_zero_one() -> None:
    with pytest.raises(ValueError, match="tail_probability"):
        BurstDetector().upper_bound(T0, 1.0)


def test_sparse_keyword_series_alert_score_stays_below_four_on_a_four() -> None:
    rng = np.random.default_rng(11)
    counts = [float(min(c, 3)) for c in rng.poisson(0.8, 3 * PER_DAY)]
    counts[2 * PER_DAY + 100] = 4.0
    assert _alerts(counts) == []


def test_value_series_upper_bound_is_continuous() -> None:
    detector = BurstDetector()
    values = (50.0 + _noise(2 * PER_DAY, 8)).tolist()
    for row, value in enumerate(values):
        detector.update(T0 + row * STEP, value)
    start = T0 + len(values) * STEP
    bound = detector.upper_bound(start, 1e-4)
    assert detector.expected(start) < bound < math.inf
    assert detector.peek(start, bound) >= 4.0
    assert detector.peek(start, bound * (1 - 1e-4)) < 4.0


def test_value_series_drop_alerts_once_but_a_count_drop_never() -> None:
    values = (30.0 + _noise(4 * PER_DAY, 6)).tolist()
    shift = 2 * PER_DAY
    values[shift:] = [v - 10.0 for v in values[shift:]]
    assert _alerts(values) == [shift]
    one_sided = DetectorConfig(two_sided_values=False)
    assert _alerts(values, one_sided) == []
    counts = [float(c) for c in np.random.default_rng(6).poisson(60, 4 * PER_DAY)]
    counts[shift:] = [float(c // 4) for c in counts[shift:]]
    assert _alerts(counts) == []
