from __future__ import annotations

import json
import math
import pathlib
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.analysis.evaluation import nab
from monitor.analysis.evaluation.bursts import evaluate_series
from monitor.cli.datasets import read_nab_series
from monitor.errors import ConfigError, InvalidRecordError

STANDARD = nab.PROFILES["standard"]
LOW_FP = nab.PROFILES["reward_low_FP_rate"]
LOW_FN = nab.PROFILES["reward_low_FN_rate"]


@pytest.mark.parametrize(
    ("name", "tp", "fp", "fn"),
    [
        ("standard", 1.0, 0.11, 1.0),
        ("reward_low_FP_rate", 1.0, 0.22, 1.0),
        ("reward_low_FN_rate", 1.0, 0.11, 2.0),
    ],
)
def test_profiles_carry_nab_weights(name: str, tp: float, fp: float, fn: float) -> None:
    profile = nab.get_profile(name)
    assert (profile.tp_weight, profile.fp_weight, profile.fn_weight) == (tp, fp, fn)


def test_unknown_profile_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="nonsense"):
        nab.get_profile("nonsense")


@pytest.mark.parametrize(
    ("position", "expected"),
    [
        (-1.0, 2 / (1 + math.exp(-5)) - 1),
        (0.0, 0.0),
        (-0.5, 2 / (1 + math.exp(-2.5)) - 1),
        (1.0, 2 / (1 + math.exp(5)) - 1),
        (3.0, 2 / (1 + math.exp(15)) - 1),
        (3.01, -1.0),
        (100.0, -1.0),
    ],
)
def test_scaled_sigmoid_matches_nab_formula(position: float, expected: float) -> None:
    assert nab.scaled_sigmoid(position) == pytest.approx(expected)


@given(
    st.floats(min_value=-10, max_value=3, allow_nan=False),
    st.floats(min_value=0.001, max_value=5, allow_nan=False),
)
def test_scaled_sigmoid_never_rewards_lateness(position: float, delta: float) -> None:
    assert nab.scaled_sigmoid(position) >= nab.scaled_sigmoid(position + delta)
    assert -1.0 <= nab.scaled_sigmoid(position) <= 1.0


@pytest.mark.parametrize(
    ("rows", "expected"),
    [(15833, 750), (5000, 750), (4000, 600), (1000, 150), (7, 1), (0, 0)],
)
def test_probation_is_fifteen_percent_capped_at_750(rows: int, expected: int) -> None:
    assert nab.probation_length(rows) == expected


@pytest.mark.parametrize(
    ("windows", "merged"),
    [
        ([(10, 20), (15, 30)], [(10, 30)]),
        ([(15, 30), (10, 20)], [(10, 30)]),
        ([(10, 20), (20, 25)], [(10, 25)]),
        ([(10, 20), (21, 25)], [(10, 20), (21, 25)]),
        ([(0, 100), (10, 20)], [(0, 100)]),
        ([], []),
    ],
)
def test_overlapping_windows_merge(
    windows: list[tuple[int, int]], merged: list[tuple[int, int]]
) -> None:
    assert nab.merge_windows(windows) == merged


def test_window_ending_before_start_is_rejected() -> None:
    with pytest.raises(InvalidRecordError):
        nab.merge_windows([(5, 4)])


@pytest.mark.parametrize(
    ("rows", "labels", "windows"),
    [
        (1000, [500], [(450, 550)]),
        (1000, [250, 750], [(225, 275), (725, 775)]),
        (1000, [500, 510], [(475, 535)]),
        (1000, [10], [(0, 60)]),
        (1000, [995], [(945, 999)]),
        (1000, [], []),
    ],
)
def test_label_windows_are_centred_and_share_ten_percent(
    rows: int, labels: list[int], windows: list[tuple[int, int]]
) -> None:
    assert nab.label_windows(rows, labels) == windows


def test_windows_map_to_rows_inclusively() -> None:
    start = datetime(2015, 3, 1, tzinfo=timezone.utc)
    times = [start + timedelta(minutes=5 * i) for i in range(100)]
    rows = nab.windows_to_rows(
        times,
        [
            (times[10], times[20]),
            (times[30] + timedelta(minutes=1), times[40] - timedelta(minutes=1)),
        ],
    )
    assert rows == [(10, 20), (31, 39)]


def _score(detections: list[int], profile: nab.CostProfile = STANDARD) -> float:
    windows = [(200, 299), (600, 699)]
    return nab.score_detections(1000, detections, windows, profile, 100).score


@pytest.mark.parametrize("profile", list(nab.PROFILES.values()))
def test_perfect_detector_scores_100_and_null_scores_0(
    profile: nab.CostProfile,
) -> None:
    windows = [(200, 299), (600, 699)]
    perfect = nab.score_detections(1000, [200, 600], windows, profile, 100)
    null = nab.score_detections(1000, [], windows, profile, 100)
    assert nab.normalise(perfect.score, 2, profile) == pytest.approx(100.0)
    assert nab.normalise(null.score, 2, profile) == pytest.approx(0.0)
    assert null.score == -2 * profile.fn_weight


def test_early_detection_beats_late_detection() -> None:
    assert _score([200, 600]) > _score([250, 600]) > _score([295, 600])


def test_only_the_earliest_detection_in_a_window_counts() -> None:
    assert _score([250, 600]) == pytest.approx(_score([250, 260, 270, 600]))
    assert _score([250, 600]) == pytest.approx(_score([270, 250, 600]))


def test_detection_at_window_centre_earns_its_sigmoid() -> None:
    # y = -(299 - 250 + 1) / 100 = -0.5, then scaled by sigma(-1).
    expected = nab.scaled_sigmoid(-0.5) / nab.scaled_sigmoid(-1.0)
    single = nab.score_detections(1000, [250], [(200, 299)], STANDARD, 100)
    assert single.score == pytest.approx(expected)


@pytest.mark.parametrize(
    ("profile", "cost"), [(STANDARD, 0.11), (LOW_FP, 0.22), (LOW_FN, 0.11)]
)
def test_false_positive_before_any_window_costs_full_fp_weight(
    profile: nab.CostProfile, cost: float
) -> None:
    assert _score([150, 200, 600], profile) == pytest.approx(
        _score([200, 600], profile) - cost
    )


def test_false_positive_soon_after_a_window_costs_little() -> None:
    perfect = _score([200, 600])
    just_after = perfect - _score([200, 301, 600])
    far_after = perfect - _score([200, 560, 600])
    assert 0 < just_after < far_after <= 0.11
    # position = (301 - 299) / 99; fp cost is -0.11 * sigma(position).
    assert just_after == pytest.approx(-0.11 * nab.scaled_sigmoid(2 / 99))


def test_false_positive_more_than_three_widths_past_costs_full_weight() -> None:
    windows = [(200, 299)]
    base = nab.score_detections(2000, [200], windows, STANDARD, 100).score
    far = nab.score_detections(2000, [200, 299 + 400], windows, STANDARD, 100).score
    assert base - far == pytest.approx(0.11)


def test_low_fn_profile_doubles_the_cost_of_a_missed_window() -> None:
    assert _score([200], LOW_FN) == pytest.approx(_score([200], STANDARD) - 1.0)


def test_probation_rows_are_not_scored() -> None:
    with_early = nab.score_detections(1000, [5, 50, 200], [(200, 299)], STANDARD, 100)
    without = nab.score_detections(1000, [200], [(200, 299)], STANDARD, 100)
    assert with_early.score == without.score
    assert with_early.false_positive_rows == 0


def test_default_probation_follows_file_length() -> None:
    early = nab.score_detections(1000, [100], [(500, 599)], STANDARD)
    late = nab.score_detections(1000, [160], [(500, 599)], STANDARD)
    assert early.false_positive_rows == 0
    assert late.false_positive_rows == 1


def test_row_counts_add_up_to_scored_rows() -> None:
    result = nab.score_detections(
        1000, [150, 210, 220, 800], [(200, 299)], STANDARD, 100
    )
    assert result.true_positive_rows == 2
    assert result.false_positive_rows == 2
    assert result.false_negative_rows == 98
    total = (
        result.true_positive_rows
        + result.false_positive_rows
        + result.false_negative_rows
        + result.true_negative_rows
    )
    assert total == 900
    assert result.windows_detected == 1


@pytest.mark.parametrize("bad", [[-1], [1000]])
def test_detection_outside_file_is_rejected(bad: list[int]) -> None:
    with pytest.raises(InvalidRecordError):
        nab.score_detections(1000, bad, [(200, 299)], STANDARD)


@given(st.sets(st.integers(min_value=0, max_value=999), max_size=40))
def test_score_is_bounded_by_null_and_perfect_when_no_false_positives(
    detections: set[int],
) -> None:
    windows = [(200, 299), (600, 699)]
    inside = [row for row in detections if 200 <= row <= 299 or 600 <= row <= 699]
    score = nab.score_detections(1000, inside, windows, STANDARD, 100).score
    assert -2.0 <= score <= 2.0 + 1e-9


def test_normalise_with_null_reproduces_nab_subset_formula() -> None:
    # Two files, 3 windows: detector raw scores 1.5 and -0.2, null -3.
    assert nab.normalise_with_null(1.5 - 0.2, -3.0, 3) == pytest.approx(
        100 * (1.3 + 3) / (3 + 3)
    )
    assert nab.normalise(1.3, 3, STANDARD) == pytest.approx(100 * 4.3 / 6)


def test_normalise_over_zero_windows_is_rejected() -> None:
    with pytest.raises(InvalidRecordError):
        nab.normalise(0.0, 0, STANDARD)


def _write_nab_folder(folder: pathlib.Path, spike_row: int) -> None:
    start = datetime(2015, 3, 1, tzinfo=timezone.utc)
    lines = ["timestamp,value"]
    for row in range(2000):
        value = 400 if spike_row <= row < spike_row + 6 else 10 + (row * 7919) % 5
        stamp = (start + timedelta(minutes=5 * row)).strftime("%Y-%m-%d %H:%M:%S")
        lines.append(f"{stamp},{value}")
    (folder / "Twitter_volume_X.csv").write_text("\n".join(lines) + "\n")
    (folder / "unlabelled.csv").write_text("timestamp,value\n")
    first = start + timedelta(minutes=5 * (spike_row - 50))
    last = start + timedelta(minutes=5 * (spike_row + 49))
    windows = {
        "realTweets/Twitter_volume_X.csv": [
            [f"{first:%Y-%m-%d %H:%M:%S}.000000", f"{last:%Y-%m-%d %H:%M:%S}.000000"]
        ]
    }
    (folder / "combined_windows.json").write_text(json.dumps(windows))


def test_nab_folder_with_a_clear_burst_scores_near_perfectly(
    tmp_path: pathlib.Path,
) -> None:
    _write_nab_folder(tmp_path, spike_row=1500)
    result = evaluate_series(read_nab_series(tmp_path), "standard")
    assert {"profile", "score", "files", "windows", "categories"} <= set(result)
    assert result["profile"] == "standard"
    assert result["windows"] == 1
    assert list(result["files"]) == ["Twitter_volume_X.csv"]
    # Detected at the label, mid-window: sigma(-0.5)/sigma(-1) ~ 0.86 -> ~93.
    assert result["score"] > 90


def test_nab_folder_without_windows_file_is_an_error(tmp_path: pathlib.Path) -> None:
    with pytest.raises(InvalidRecordError):
        read_nab_series(tmp_path)
