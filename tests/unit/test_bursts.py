from __future__ import annotations

import ast
import json
import math
import pathlib
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.analysis import bursts
from monitor.analysis.bursts import (
    BurstDetector,
    BurstPhase,
    DetectorConfig,
    WindowScore,
)
from monitor.errors import ConfigError, InvalidRecordError, MonitorError

T0 = datetime(2024, 3, 4, tzinfo=timezone.utc)  # a Monday, 00:00 UTC
STEP = timedelta(minutes=5)
PER_DAY = 288


def _times(n: int) -> list[datetime]:
    return [T0 + i * STEP for i in range(n)]


def _run(
    counts: Sequence[float], config: DetectorConfig | None = None
) -> list[WindowScore]:
    detector = BurstDetector(config)
    return [
        detector.update(t, c) for t, c in zip(_times(len(counts)), counts, strict=True)
    ]


def _starts(scores: Sequence[WindowScore]) -> list[int]:
    return [i for i, s in enumerate(scores) if s.phase is BurstPhase.STARTED]


def _daily_rate(n: int, low: float, high: float) -> np.ndarray:
    hours = (np.arange(n) * 5 / 60) % 24
    return low + (high - low) * 0.5 * (1 - np.cos(2 * np.pi * (hours - 3) / 24))


def _poisson(rate: np.ndarray | float, n: int, seed: int) -> list[float]:
    rng = np.random.default_rng(seed)
    return rng.poisson(np.broadcast_to(rate, (n,))).astype(float).tolist()


def test_analysis_module_imports_only_stdlib_numpy_and_monitor() -> None:
    tree = ast.parse(pathlib.Path(bursts.__file__).read_text())
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            roots.add(node.module.split(".")[0])
    assert not roots & {"faust", "aiohttp", "elasticsearch", "aiokafka"}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sparse_series_does_not_alarm_on_four(seed: int) -> None:
    counts = _poisson(0.8, 3 * PER_DAY, seed)
    counts = [min(c, 3.0) for c in counts]
    counts[2 * PER_DAY + 100] = 4.0
    scores = _run(counts)
    assert _starts(scores) == []
    assert not scores[2 * PER_DAY + 100].is_anomalous


def test_sparse_series_alarms_on_a_real_jump() -> None:
    counts = [min(c, 3.0) for c in _poisson(0.8, 3 * PER_DAY, 4)]
    spike = 2 * PER_DAY + 100
    counts[spike] = 40.0
    assert _starts(_run(counts)) == [spike]


@pytest.mark.parametrize("calm_days", [1.5, 2, 4, 10])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_quiet_topic_incident_starts_on_its_first_or_second_window(
    calm_days: float, seed: int
) -> None:
    # The bundled sample incident: a topic quiet at 0-2 posts per window
    # jumps to 7, 14, 31, 57, 83 ... The alert must not wait for the peak,
    # also when the incident falls on a weekday the baseline has not seen.
    calm = [min(c, 2.0) for c in _poisson(0.3, int(calm_days * PER_DAY), seed)]
    incident = [7.0, 14.0, 31.0, 57.0, 83.0, 78.0, 60.0, 94.0, 95.0, 78.0]
    starts = _starts(_run(calm + incident))
    assert len(starts) == 1 and starts[0] - len(calm) in (0, 1)


def test_refractory_period_keeps_a_second_wave_in_the_first_event() -> None:
    counts = _poisson(20.0, 4 * PER_DAY, 12)
    first, second = 2 * PER_DAY, 2 * PER_DAY + 60  # five hours apart
    for k in range(6):
        counts[first + k] += 150.0
        counts[second + k] += 150.0
    assert _starts(_run(counts)) == [first]
    eager = DetectorConfig(refractory_seconds=0.0)
    assert _starts(_run(counts, eager)) == [first, second]


def test_slow_rise_sets_count_records_but_does_not_alarm() -> None:
    # A rise the baseline follows sets count records but is no burst,
    # with or without the ratio-record gate.
    n = 7 * PER_DAY
    counts = _poisson(np.linspace(20, 60, n), n, 5)
    assert len(_starts(_run(counts))) <= 1
    gated = DetectorConfig(novelty_half_life_seconds=3 * 86400.0)
    assert len(_starts(_run(counts, gated))) <= 1


@pytest.mark.parametrize("height", [150.0, 400.0])
def test_spike_is_one_event_with_start_peak_and_end(height: float) -> None:
    counts = _poisson(_daily_rate(4 * PER_DAY, 5, 40), 4 * PER_DAY, 7)
    spike = 3 * PER_DAY + 150
    for k, extra in enumerate([height * 0.6, height, height * 0.4]):
        counts[spike + k] += extra
    scores = _run(counts)
    # The smaller first window may not beat the novelty record left by the
    # early, still untrained baseline; the event then starts one window later.
    starts = _starts(scores)
    assert len(starts) == 1 and spike <= starts[0] <= spike + 1
    ended = [s for s in scores if s.phase is BurstPhase.ENDED]
    assert len(ended) == 1
    event = ended[0].event
    assert event is not None
    assert event.started_at == T0 + starts[0] * STEP
    # The score is of a short smoothed sum, so it may peak one window after
    # the largest count.
    assert event.peak_at in (T0 + (spike + 1) * STEP, T0 + (spike + 2) * STEP)
    assert event.ended_at is not None and event.ended_at > event.peak_at
    peak = (event.peak_at - T0) // STEP
    assert event.peak_observed_count == counts[peak]
    assert event.peak_score >= scores[spike].score


def test_step_alarms_once_then_becomes_the_new_baseline() -> None:
    n = 6 * PER_DAY
    rate = np.where(np.arange(n) < 3 * PER_DAY, 10.0, 60.0)
    scores = _run(_poisson(rate, n, 11))
    starts = _starts(scores)
    assert len(starts) == 1
    assert 3 * PER_DAY <= starts[0] <= 3 * PER_DAY + 3
    assert scores[-1].expected_count == pytest.approx(60, rel=0.35)
    assert scores[-1].event is None


@pytest.mark.parametrize("seed", [21, 22])
def test_daily_seasonality_is_learned_not_alarmed(seed: int) -> None:
    n = 7 * PER_DAY
    counts = _poisson(_daily_rate(n, 2, 80), n, seed)
    scores = _run(counts)
    assert _starts(scores) == []
    day = scores[6 * PER_DAY : 7 * PER_DAY]
    peak = max(day, key=lambda s: s.expected_count)
    trough = min(day, key=lambda s: s.expected_count)
    assert peak.expected_count > 10 * trough.expected_count


def test_slow_ramp_is_absorbed_without_alarm() -> None:
    n = 7 * PER_DAY
    rate = np.linspace(20, 60, n)
    scores = _run(_poisson(rate, n, 5))
    # Pure noise alarms about once in 12 days; a ramp the baseline failed to
    # follow would instead hold the detector in one long event.
    assert len(_starts(scores)) <= 1
    assert all(s.event is None or s.event.windows <= 12 for s in scores)
    assert scores[-1].expected_count == pytest.approx(60, rel=0.3)


def test_fast_ramp_is_caught_while_it_rises() -> None:
    n = 4 * PER_DAY
    rate = np.full(n, 20.0)
    ramp = 3 * PER_DAY
    rate[ramp : ramp + 24] = np.linspace(20, 140, 24)
    rate[ramp + 24 : ramp + 60] = 140
    starts = _starts(_run(_poisson(rate, n, 6)))
    assert len(starts) == 1
    assert ramp <= starts[0] < ramp + 24


def test_hysteresis_keeps_a_flickering_burst_as_one_event() -> None:
    counts = _poisson(20.0, 4 * PER_DAY, 8)
    burst = 3 * PER_DAY
    for k in range(24):
        counts[burst + k] = 140.0 if k % 2 == 0 else 60.0
    scores = _run(counts)[burst - 5 :]
    assert _starts(scores) == [5]
    assert sum(s.phase is BurstPhase.ENDED for s in scores) == 1


def _bursts(n: int, at: Sequence[int], heights: Sequence[float]) -> list[float]:
    counts = _poisson(20.0, n, 31)
    for start, height in zip(at, heights, strict=True):
        for k in range(6):
            counts[start + k] += height
    return counts


def test_repeated_identical_bursts_stop_alarming() -> None:
    at = [2 * PER_DAY + 100 * k for k in range(5)]
    counts = _bursts(4 * PER_DAY, at, [150.0] * 5)
    gated = DetectorConfig(novelty_half_life_seconds=3 * 86400.0)
    starts = _starts(_run(counts, gated))
    # Noise can lift the second burst's first window just past the barely
    # faded record; from the third on, repeats are no longer novel.
    assert starts[0] == at[0] and set(starts) <= set(at[:2])
    # By default (no ratio record) the refractory day and the count record
    # alone keep repeats quiet until a day has passed.
    default = _starts(_run(counts))
    assert default[0] == at[0]
    assert all(s - at[0] >= PER_DAY for s in default[1:])
    assert len(default) > len(starts)


def test_bigger_burst_after_repeats_still_alarms() -> None:
    at = [2 * PER_DAY + 100 * k for k in range(4)]
    counts = _bursts(4 * PER_DAY, at, [100.0, 100.0, 100.0, 400.0])
    starts = _starts(_run(counts))
    assert at[0] in starts and at[3] in starts and at[2] not in starts


def test_a_far_bigger_burst_within_the_refractory_day_alarms() -> None:
    # Its score beats the first event's peak by louder_ends_refractory.
    at = [2 * PER_DAY, 2 * PER_DAY + 100]
    counts = _bursts(4 * PER_DAY, at, [40.0, 400.0])
    assert _starts(_run(counts)) == at
    strict = DetectorConfig(louder_ends_refractory=None)
    assert _starts(_run(counts, strict)) == at[:1]


def test_a_value_series_that_spikes_routinely_has_wide_noise() -> None:
    rng = np.random.default_rng(8)
    values = rng.normal(10.0, 0.5, 4 * PER_DAY)
    values[PER_DAY::50] += 50.0  # a spike every ~4 hours
    spike = T0 + 4 * PER_DAY * STEP
    surprises = []
    for spread in (3.0, None):
        detector = BurstDetector(DetectorConfig(value_spread_winsor_sd=spread))
        for t, v in zip(_times(len(values)), values.tolist(), strict=True):
            detector.update(t, v)
        surprises.append(detector.surprise(spike, 60.0))
    assert surprises[1] < surprises[0] - 10.0


def test_a_count_series_that_jumps_routinely_has_wide_noise() -> None:
    # A bot posting ~150 at a time every ~4 hours over a Poisson(5) topic:
    # learned from raw residuals, the overdispersion widens and the next
    # jump of that size is far less surprising than with clipped ones.
    counts = _poisson(5.0, 4 * PER_DAY, 12)
    for k in range(PER_DAY, 4 * PER_DAY, 50):
        counts[k] += 150.0
    jump = T0 + 4 * PER_DAY * STEP
    surprises = []
    for spread in (3.0, None):
        detector = BurstDetector(DetectorConfig(count_spread_winsor_sd=spread))
        for t, c in zip(_times(len(counts)), counts, strict=True):
            detector.update(t, c)
        surprises.append(detector.surprise(jump, 155.0))
    assert surprises[1] < surprises[0] - 10.0
    # max_dispersion bounds it: a jump ten times the size is still news.
    assert detector.surprise(jump, 1500.0) >= DetectorConfig().enter_score


def _value_spikes(at: Sequence[int]) -> list[float]:
    rng = np.random.default_rng(5)
    values = rng.normal(40.0, 1.0, 3 * PER_DAY)
    for start in at:
        values[start : start + 3] += 30.0
    return values.tolist()


def test_a_value_series_rests_half_a_day_between_events() -> None:
    # Two spikes 14 hours apart: a measurement has no news cycle, so the
    # second is an event of its own; with a day's rest it is not.
    at = [PER_DAY + 60, PER_DAY + 60 + 14 * 12]
    values = _value_spikes(at)
    assert _starts(_run(values)) == at
    day = DetectorConfig(value_refractory_seconds=None)
    assert _starts(_run(values, day)) == at[:1]
    # Ten hours apart, the second spike is still within the rest.
    close = [PER_DAY + 60, PER_DAY + 60 + 10 * 12]
    assert _starts(_run(_value_spikes(close))) == close[:1]


def test_a_count_series_still_rests_a_day_between_events() -> None:
    # The same 14-hour gap on a count series: one news story's waves.
    at = [2 * PER_DAY, 2 * PER_DAY + 14 * 12]
    counts = _bursts(4 * PER_DAY, at, [150.0, 160.0])
    assert _starts(_run(counts)) == at[:1]


def test_novelty_record_fades_so_a_repeat_alarms_much_later() -> None:
    at = [2 * PER_DAY, 20 * PER_DAY]
    counts = _bursts(21 * PER_DAY, at, [150.0, 150.0])
    assert set(at) <= set(_starts(_run(counts)))


@pytest.mark.parametrize("calm_days", [1.5, 3])
@pytest.mark.parametrize("seed", [0, 1])
def test_giant_spike_on_quiet_series_ends_and_a_later_incident_alarms(
    calm_days: float, seed: int
) -> None:
    # A spike of several hundred on a series at 0-2 posts per window used to
    # inflate the tail calibration so far that windows back at baseline
    # still scored above exit_score: the event never ended, and the series
    # could never start another one.
    def calm(n: int, offset: int) -> list[float]:
        return [min(c, 2.0) for c in _poisson(0.3, n, seed + offset)]

    before = calm(int(calm_days * PER_DAY), 0)
    between = calm(2 * PER_DAY, 100)
    first = len(before)
    second = first + 4 + len(between)
    counts = before + [300.0, 600.0, 450.0, 200.0] + between
    counts += [500.0, 1000.0, 800.0, 400.0] + calm(PER_DAY, 200)
    config = DetectorConfig()
    scores = _run(counts, config)

    assert _starts(scores) == [first, second]
    ends = [i for i, s in enumerate(scores) if s.phase is BurstPhase.ENDED]
    assert ends[0] <= first + 3 + config.quiet_windows + 2
    # Once the spike has left the smoothed sums (half-life 3 windows), windows
    # at or below their expected count look calm (a single one may still sit
    # in the tail just after a 2, which the sums carry for a few windows).
    faded = scores[first + 60 : second]
    at_or_below = [s.score for s in faded if s.observed_count <= s.expected_count]
    assert np.median(at_or_below) < 0.5 * config.exit_score


def test_no_event_during_warmup() -> None:
    counts = [10.0] * 50 + [500.0] + [10.0] * 50
    assert _starts(_run(counts)) == []


def test_missing_windows_count_as_zero_where_zero_is_plausible() -> None:
    detector = BurstDetector()
    for i, count in enumerate(_poisson(2.0, PER_DAY, seed=3)):
        detector.update(T0 + i * STEP, count)
    before = detector.expected(T0 + PER_DAY * STEP)
    detector.update(T0 + (PER_DAY + 60) * STEP, 0.0)
    assert detector.expected(T0 + (PER_DAY + 61) * STEP) < 0.7 * before


def test_a_gap_in_a_busy_series_is_missing_not_zero() -> None:
    detector = BurstDetector()
    for i, count in enumerate(_poisson(30.0, PER_DAY, seed=3)):
        detector.update(T0 + i * STEP, count)
    before = detector.expected(T0 + PER_DAY * STEP)
    detector.update(T0 + (PER_DAY + 60) * STEP, 30.0)
    after = detector.expected(T0 + (PER_DAY + 61) * STEP)
    assert after == pytest.approx(before, rel=0.2)


def _speeds(n: int, seed: int) -> list[float]:
    # Whole numbers far less noisy than Poisson: a road's speed reading.
    rng = np.random.default_rng(seed)
    return np.round(rng.normal(60.0, 2.0, n)).tolist()


def test_whole_number_measurement_takes_the_value_model_and_a_drop_alarms() -> None:
    speeds = _speeds(3 * PER_DAY, seed=4) + [20.0] * 6
    scores = _run(speeds)
    assert max(s.alert_score for s in scores[-6:]) >= 4.0
    assert max(s.alert_score for s in scores[PER_DAY + 10 : -6]) < 4.0
    # The same drop in a count of posts is no burst.
    posts = _poisson(60.0, 3 * PER_DAY, seed=4) + [20.0] * 6
    assert max(s.alert_score for s in _run(posts)[-6:]) == 0.0


def test_poisson_counts_stay_counts() -> None:
    detector = BurstDetector()
    for i, count in enumerate(_poisson(8.0, 3 * PER_DAY, seed=5)):
        detector.update(T0 + i * STEP, count)
    assert detector.snapshot()["count_like"] is True


def test_snapshot_is_json_and_restores_identical_behaviour() -> None:
    counts = _poisson(_daily_rate(3 * PER_DAY, 3, 30), 3 * PER_DAY, 9)
    counts[2 * PER_DAY + 40] = 300.0
    times = _times(len(counts))
    whole = BurstDetector()
    expected = [whole.update(t, c) for t, c in zip(times, counts, strict=True)]
    first = BurstDetector()
    cut = 2 * PER_DAY + 41  # inside the event
    for t, c in zip(times[:cut], counts[:cut], strict=True):
        first.update(t, c)
    restored = BurstDetector.restore(json.loads(json.dumps(first.snapshot())))
    assert restored.event is not None
    resumed = [
        restored.update(t, c) for t, c in zip(times[cut:], counts[cut:], strict=True)
    ]
    assert resumed == expected[cut:]


def _leaves(value: object) -> int:
    if isinstance(value, dict):
        return sum(_leaves(v) for v in value.values())
    if isinstance(value, list):
        return sum(_leaves(v) for v in value)
    return 1


def test_a_version_3_snapshot_still_restores() -> None:
    detector = BurstDetector()
    for t, c in zip(_times(50), _poisson(5.0, 50, seed=1), strict=True):
        detector.update(t, c)
    snapshot = detector.snapshot()
    snapshot["version"] = 3
    del snapshot["last_event_peak"]
    restored = BurstDetector.restore(snapshot)
    assert restored.snapshot()["last_event_peak"] == 0.0
    assert restored.expected(T0 + 50 * STEP) == detector.expected(T0 + 50 * STEP)


def test_state_does_not_grow_with_stream_length() -> None:
    detector = BurstDetector()
    counts = _poisson(12.0, 10 * PER_DAY, 10)
    sizes = []
    for i, c in enumerate(counts):
        detector.update(T0 + i * STEP, c)
        if i in (PER_DAY, 10 * PER_DAY - 1):
            sizes.append(_leaves(detector.snapshot()))
    assert sizes[0] == sizes[1] < 140


@pytest.mark.parametrize(
    "snapshot",
    [{}, {"version": 99}, {"version": bursts.SNAPSHOT_VERSION, "level": "x"}],
)
def test_malformed_snapshot_is_rejected(snapshot: dict[str, object]) -> None:
    with pytest.raises(InvalidRecordError):
        BurstDetector.restore(snapshot)


@pytest.mark.parametrize(
    ("moment", "count"),
    [
        (datetime(2024, 3, 4), 1.0),  # noqa: DTZ001 - naive on purpose
        (T0, math.nan),
        (T0, math.inf),
    ],
)
def test_bad_input_raises_invalid_record(moment: datetime, count: float) -> None:
    with pytest.raises(InvalidRecordError):
        BurstDetector().update(moment, count)


def test_out_of_order_window_is_rejected() -> None:
    detector = BurstDetector()
    detector.update(T0 + STEP, 1.0)
    with pytest.raises(InvalidRecordError):
        detector.update(T0, 1.0)
    with pytest.raises(InvalidRecordError):
        detector.update(T0 + STEP, 1.0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"enter_score": 1.0, "exit_score": 2.0},
        {"quiet_windows": 0},
        {"level_half_life_seconds": 0.0},
        {"window_seconds": -5.0},
        {"scale_half_lives_windows": ()},
        {"tail_fraction": 1.5},
        {"min_excess": -1.0},
        {"novelty_half_life_seconds": 0.0},
        {"loudness_half_life_seconds": -1.0},
        {"refractory_seconds": math.nan},
        {"poisson_share": 0.0},
        {"min_zero_probability": 1.0},
        {"louder_ends_refractory": -1.0},
        {"value_spread_winsor_sd": 0.0},
        {"count_spread_winsor_sd": -1.0},
        {"value_refractory_seconds": -1.0},
        {"value_refractory_seconds": math.inf},
    ],
)
def test_invalid_config_is_rejected(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError) as info:
        DetectorConfig(**kwargs)  # type: ignore[arg-type]
    assert isinstance(info.value, MonitorError)
    assert info.value.problems


def test_aware_non_utc_times_are_accepted_and_normalised() -> None:
    beijing = timezone(timedelta(hours=8))
    result = BurstDetector().update(T0.astimezone(beijing), 3.0)
    assert result.window_start == T0
    assert result.window_start.tzinfo == timezone.utc


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=1e6), min_size=1, max_size=200))
def test_scores_are_finite_and_expectations_positive(counts: list[float]) -> None:
    whole = [float(round(c)) for c in counts]
    for score in _run(whole):
        assert math.isfinite(score.score) and score.score >= 0
        assert math.isfinite(score.expected_count) and score.expected_count > 0
    for score in _run(counts):  # fractional values: the value model
        assert 0 <= score.score <= 300 and math.isfinite(score.expected_count)


@pytest.mark.parametrize(
    ("observed", "expected", "distance"),
    [
        (0.0, 0.0, 0.0),
        (7.0, 7.0, 0.0),
        (10_100.0, 10_000.0, 1.0),  # one Poisson standard deviation above
        (9_900.0, 10_000.0, -1.0),
        (4.0, 1.0, 2 * (math.sqrt(4.375) - math.sqrt(1.375))),
    ],
)
def test_anscombe_difference_counts_poisson_standard_deviations(
    observed: float, expected: float, distance: float
) -> None:
    assert bursts.anscombe_difference(observed, expected) == pytest.approx(
        distance, abs=5e-3
    )
