"""Streaming, causal burst detection on per-window counts.

:class:`BurstDetector` follows one series (one keyword or topic). It sees each
closed window's count once, in time order, and never the future. Its baseline
is a robust, seasonal, overdispersed count model:

* expected count ``mu = (level + trend) * daily[hour] * weekly[weekday]``, with
  the level, a damped trend and multiplicative hour-of-day and day-of-week
  factors all learned by exponentially weighted averages whose half-lives are
  given in wall-clock time, so they do not depend on the window length;
* count noise is negative-binomial, ``var = mu + phi * mu**2``, with the
  overdispersion ``phi`` learned online; small counts therefore keep Poisson
  noise and a series at 0-3 posts per window does not alarm on a 4. ``phi``
  learns from raw residuals (``count_spread_winsor_sd``), not the clipped
  ones the level learns from: a series whose counts jump routinely (a bot
  posting 200 at a time, a daily news cycle) has wide noise, and the next
  jump of the same size is less news;
* updates are winsorised (an observation is clipped to a few standard
  deviations of the model before it is learned), so a burst does not inflate
  its own baseline, while a lasting level shift is still absorbed;
* each window's excess is measured in standard deviations of that model on
  a short exponentially weighted sum of counts (square-root, i.e.
  variance-stabilised, scale), which also catches rises spread over a few
  windows;
* that z-score is calibrated per series: a stochastic tracker follows its
  upper ``tail_fraction`` quantile, and the tail probability of a window is
  the model's own unit-variance noise placed so that its upper quantile sits
  on the tracked one, reported as the surprise ``-log10(p)``. The tracked
  quantile absorbs what the noise model gets wrong about the *location* of
  the series' tail (bots, news cycles, a dispersion learned too low), while
  the model, not a handful of past bursts, sets its *scale*: one threshold
  then means about the same rate of surprises on a sparse keyword series and
  a busy topic. (Fitting an exponential tail to the excesses over the
  quantile, ``tail_fit``, lets past bursts inflate the scale that judges the
  next one; cross-validation over 53 NAB series chose not to.) A value
  series (see :meth:`BurstDetector.update`) is scored on its departure in
  either direction (``two_sided_values``), a count only upwards;
* whole numbers are not always posts: a series whose windows vary well
  below Poisson noise (variance under ``poisson_share`` of the mean, at
  several per window, after warm-up) is a measurement such as a speed, and
  takes the value model; and a window never reported is 0 posts only where
  the model finds 0 plausible (``min_zero_probability``), not a gap in a
  busy series or a measurement. Cross-validation over 53 NAB series chose
  both (traffic speeds: drops, and gaps that were read as zeros);
* a news gate keeps repeats quiet: an event only starts on a window whose
  log count ``log(count + 1)`` beats every earlier window's, with that
  running record decaying towards 0 (half-life
  ``loudness_half_life_seconds``): a burst is news when the series has not
  been this loud for weeks. The decay is multiplicative in log scale, so a
  count record of 1000 posts is down to about 130 after two half-lives
  while a record of 3 barely moves. An optional second record of the log
  ratio ``log((count + 1) / (expected + 1))`` (``novelty_half_life_seconds``)
  also requires the window to be unusual for the hour; off by default, as
  cross-validation found it cost more detections than it saved alarms;
* hysteresis turns scores into events: an event starts when the score reaches
  ``enter_score`` on a novel window, at least ``refractory_seconds`` after the
  previous event started, its peak is tracked, and it ends after
  ``quiet_windows`` quiet windows in a row: below ``exit_score``, or less
  than ``min_excess`` above their expected count, which could not start an
  event either (the smoothed sums still carry a large burst for many windows
  after the counts are back). The refractory gap keeps one news story, whose
  volume comes in waves over a day, to one event; a window whose score beats
  the last event's peak by ``louder_ends_refractory`` is a bigger story and
  may start one sooner. A value series, which has no news cycle, rests
  ``value_refractory_seconds`` (12 hours) instead;
* a value series' noise variance learns from its raw residuals
  (``value_spread_winsor_sd``), its level from winsorised ones: a
  measurement that spikes routinely (disk writes, load balancers) has wide
  noise, so its daily spikes stop scoring as if each were the first.

State per series is a fixed number of floats (31 seasonal factors plus a few
scalars per scale), whatever the stream length, and round-trips through
:meth:`BurstDetector.snapshot` / :meth:`BurstDetector.restore` as plain
JSON-able dicts.

The settings live in :mod:`monitor.analysis.bursts_config`, the state and
its snapshot in :mod:`monitor.analysis.bursts_state`, the count helpers
(:func:`to_utc`, :func:`check_count`, :func:`anscombe_difference`, which also
serve :mod:`monitor.analysis.emerging`) in :mod:`monitor.analysis.bursts_noise`;
all are importable from here.
"""

from __future__ import annotations

import enum
import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from monitor.analysis.bursts_config import MEASUREMENT_MIN_LEVEL, DetectorConfig
from monitor.analysis.bursts_noise import (
    anscombe_difference,
    check_count,
    check_value,
    ewma_alpha,
    gauss_surprise,
    is_count,
    to_utc,
)
from monitor.analysis.bursts_state import (
    SNAPSHOT_VERSION,
    BurstEvent,
    DetectorState,
    snapshot_of,
    state_from_snapshot,
)
from monitor.errors import InvalidRecordError

__all__ = [
    "SNAPSHOT_VERSION",
    "BurstDetector",
    "BurstEvent",
    "BurstPhase",
    "DetectorConfig",
    "WindowScore",
    "anscombe_difference",
    "check_count",
    "check_value",
    "to_utc",
]

_DAY = 86400.0
_WEEK = 7 * _DAY
_LN10 = math.log(10.0)
# Upper 5 % quantile of N(0, 1) and its mean excess: the tail prior.
_GAUSS_Q95 = 1.645
_GAUSS_EXCESS = 0.42
# A value series' window is news only this many standard deviations above
# its expectation (the count model's min_excess in posts has no unit here).
_VALUE_MIN_EXCESS_SD = 1.0
# Scores are capped here: -log10 of about the smallest positive double.
_MAX_SCORE = 300.0


class BurstPhase(enum.Enum):
    """What happened to the current burst event in a window."""

    STARTED = "started"
    PEAKED = "peaked"
    ENDED = "ended"


@dataclass(frozen=True)
class WindowScore:
    """The detector's verdict on one closed window.

    Attributes:
        window_start: Start of the window (timezone-aware).
        observed_count: Count in the window (posts, >= 0).
        expected_count: Baseline expectation before seeing the count (> 0).
        score: Surprise, ``-log10`` of the calibrated probability of a window
            at least this far above baseline (>= 0; 3 is one in a thousand).
            Computed during warm-up too.
        is_anomalous: True if ``score >= enter_score`` after warm-up and the
            window beats the decaying record log ratio and log count (see
            ``DetectorConfig.novelty_half_life_seconds``); an event may still
            not start within ``refractory_seconds`` of the previous one.
        event: The ongoing or just-ended event, if any.
        phase: What happened to ``event`` in this window, if anything.
        alert_score: ``score`` if the window is news, else 0: after warm-up,
            no event ongoing or started within ``refractory_seconds``, the
            window beats the novelty records and is at least ``min_excess``
            above its expectation (one standard deviation for a value
            series). The score alerting compares with a rule's threshold;
            :meth:`BurstDetector.upper_bound` inverts it.

    """

    window_start: datetime
    observed_count: float
    expected_count: float
    score: float
    is_anomalous: bool
    event: BurstEvent | None = None
    phase: BurstPhase | None = None
    alert_score: float = 0.0


@dataclass(frozen=True)
class _View:
    """One window scored against the current state, before learning."""

    count_like: bool
    mu: float
    sd: float
    sums: list[list[float]]
    score: float
    warm: bool
    novel: bool
    keep_record: bool
    record: float
    loud_record: float
    alert_score: float


class BurstDetector:
    """Causal burst detector for one series of per-window counts.

    Feed every closed window in time order with :meth:`update`. Windows that
    were never reported (no posts, so no count) are filled with zeros.
    """

    def __init__(self, config: DetectorConfig | None = None) -> None:
        """Start with an empty baseline.

        Args:
            config: Settings; ``DetectorConfig()`` if omitted.

        """
        self.config = config or DetectorConfig()
        self._state = DetectorState(window_seconds=self.config.window_seconds)
        scales = len(self.config.scale_half_lives_windows)
        self._state.sums = [[0.0, 0.0, 0.0] for _ in range(scales)]
        self._state.tails = [[_GAUSS_Q95, _GAUSS_EXCESS, 0.0] for _ in range(scales)]
        # Standard-normal quantile with tail_fraction above it: where the
        # body below the tracked tail quantile is anchored.
        self._body_quantile = statistics.NormalDist().inv_cdf(
            1.0 - self.config.tail_fraction
        )

    @property
    def event(self) -> BurstEvent | None:
        """The ongoing burst event, or ``None`` when the series is calm."""
        return self._state.event

    def expected(self, window_start: datetime) -> float:
        """Return the baseline value expected for a window.

        Args:
            window_start: Start of the window, timezone-aware.

        Returns:
            Posts (> 0) for a count series; for a value series (see
            :meth:`update`), the expected value, of any sign.

        Raises:
            InvalidRecordError: If ``window_start`` is naive.

        """
        start = to_utc(window_start, "window_start")
        if self._state.count_like:
            return self._expected(start)
        return self._value_expected(start)

    def update(self, window_start: datetime, count: float) -> WindowScore:
        """Score one closed window, then learn from it.

        The data chooses the noise model. While every value is a whole
        number >= 0 the series is a count (posts) and gets the
        negative-binomial count model, and windows never reported count as
        0 posts where the model finds 0 plausible (``min_zero_probability``;
        elsewhere they are skipped). The first negative or fractional
        value, or whole numbers varying well below Poisson noise after
        warm-up (``poisson_share``: a speed, a reading), turn it into a
        value series for good (a measurement such as a weighted volume, a
        latency or a price): Gaussian noise around an additive level and
        hour-of-day profile learned alongside all along, and missing
        windows are skipped rather than filled, since a missing
        measurement is not a zero.

        Args:
            window_start: Start of the window, timezone-aware, later than the
                previous window's start.
            count: The window's value: posts, or any finite number.

        Returns:
            The window's score, with the burst event it started, peaked in or
            ended, if any.

        Raises:
            InvalidRecordError: If the time is naive or not after the previous
                window, or the value is not finite.

        """
        start = to_utc(window_start, "window_start")
        observed = check_value(count)
        state = self._state
        if state.last_start is not None:
            gap = (start - state.last_start).total_seconds()
            if gap <= 0:
                raise InvalidRecordError(
                    f"window_start {start.isoformat()} is not after the previous"
                    f" window {state.last_start.isoformat()}"
                )
            if state.window_seconds is None:
                state.window_seconds = gap
            if state.count_like:
                missing = round(gap / state.window_seconds) - 1
                missing = min(missing, self.config.max_gap_windows)
                for k in range(missing, 0, -1):
                    filler = start - timedelta(seconds=k * state.window_seconds)
                    if self._zero_plausible(filler):
                        self._step(filler, 0.0)
        return self._step(start, observed)

    def peek(self, window_start: datetime, value: float) -> float:
        """Return the ``alert_score`` a window would get, without learning.

        Args:
            window_start: Start of the next window, timezone-aware, after the
                last one scored.
            value: A candidate value for it (e.g. an open window's running
                count).

        Returns:
            What :meth:`update` would report as ``alert_score`` (>= 0).

        Raises:
            InvalidRecordError: If the time is naive or the value not finite.

        """
        start = to_utc(window_start, "window_start")
        return self._view(start, check_value(value)).alert_score

    def surprise(self, window_start: datetime, value: float) -> float:
        """Return the ``score`` (ungated) a window would get, without learning.

        As :meth:`peek`, but the score before the news gate: what the
        ``burst`` rule compares with its threshold. It grows with ``value``.
        """
        start = to_utc(window_start, "window_start")
        return self._view(start, check_value(value)).score

    def upper_bound(self, window_start: datetime, tail_probability: float) -> float:
        """Return the least value whose ``alert_score`` reaches ``-log10(p)``.

        The inverse of :meth:`peek` for the next window: alerting on an open
        window can compare its running value with this bound and fire as
        soon as it is crossed, knowing the closed window will score at least
        that much (the score grows with the value). Nothing is learned.

        Args:
            window_start: Start of the next window, timezone-aware.
            tail_probability: ``p`` in (0, 1); a rule threshold ``t`` is
                ``p = 10 ** -t``.

        Returns:
            The bound: for a count series the least whole count, else within
            1e-6 relative; ``math.inf`` if no value can alert now (warm-up,
            an ongoing event, the refractory period).

        Raises:
            InvalidRecordError: If the time is naive.
            ValueError: If ``tail_probability`` is not in (0, 1).

        """
        if not 0.0 < tail_probability < 1.0:
            raise ValueError(
                f"tail_probability must be in (0, 1), got {tail_probability}"
            )
        start = to_utc(window_start, "window_start")
        target = -math.log10(tail_probability)
        # A count series is searched over whole counts: a fractional
        # candidate would be scored by the value model.
        counts = self._state.count_like
        low = self.expected(start)
        if counts:
            low = float(math.floor(low))
        width = max(abs(low), 1.0)
        high = low + width
        while self._view(start, high).alert_score < target:
            width *= 2.0
            high = low + width
            if width > 1e15 * max(abs(low), 1.0):
                return math.inf
        for _ in range(200):
            if counts and high - low <= 1.0:
                break
            if high - low <= 1e-6 * max(abs(high), 1e-9):
                break
            middle = 0.5 * (low + high)
            if counts:
                middle = float(math.floor(middle))
            if self._view(start, middle).alert_score >= target:
                high = middle
            else:
                low = middle
        return high

    # -- internals ---------------------------------------------------------

    def _factor(self, factors: list[float], visits: list[int], slot: int) -> float:
        # A never-visited hour or weekday reads as the mean of the visited
        # ones (see _seed_seasonal), without storing it.
        if visits[slot] == 0:
            seen = [f for f, v in zip(factors, visits, strict=True) if v]
            if seen:
                return sum(seen) / len(seen)
        return factors[slot]

    def _expected(self, start: datetime) -> float:
        state = self._state
        base = max(state.level + state.trend, 0.0)
        seasonal = self._factor(
            state.daily, state.daily_visits, start.hour
        ) * self._factor(state.weekly, state.weekly_visits, start.weekday())
        return max(base * seasonal, self.config.min_expected)

    def _value_expected(self, start: datetime) -> float:
        state = self._state
        return state.value_level + state.value_daily[start.hour]

    def _value_variance(self) -> float:
        # A constant series has no noise at all; a floor relative to its
        # level keeps the z-scores finite there.
        state = self._state
        floor = (1e-6 * max(abs(state.value_level), 1e-9)) ** 2
        return max(state.value_variance, floor)

    def _dispersion(self) -> float:
        state = self._state
        cfg = self.config
        if state.dispersion_den <= 0:
            return cfg.initial_dispersion
        phi = state.dispersion_num / state.dispersion_den
        return min(max(phi, 0.0), cfg.max_dispersion)

    def _view(self, start: datetime, observed: float) -> _View:
        """Score ``observed`` in the window at ``start``; change nothing."""
        cfg = self.config
        state = self._state
        step = state.window_seconds or 300.0
        count_like = state.count_like and is_count(observed)
        if count_like:
            mu = (
                self._expected(start)
                if state.windows_seen
                else max(observed, cfg.min_expected)
            )
            phi = self._dispersion()
            variance = mu + phi * mu * mu
        else:
            mu = self._value_expected(start) if state.windows_seen else observed
            variance = self._value_variance()
        sd = math.sqrt(variance)
        switched = count_like != state.count_like
        sums: list[list[float]] = []
        tails = self._prior_tails() if switched else state.tails
        surprises = []
        for k, half_life in enumerate(cfg.scale_half_lives_windows):
            decay = 0.0 if half_life == 0 else 2.0 ** (-1.0 / half_life)
            old = [0.0, 0.0, 0.0] if switched else state.sums[k]
            if count_like:
                new = [
                    decay * old[0] + observed,
                    decay * old[1] + mu,
                    decay * decay * old[2] + variance,
                ]
                root = anscombe_difference(new[0], new[1])
                z = root / math.sqrt(max(new[2] / new[1], 1e-12))
            else:
                new = [
                    decay * old[0] + (observed - mu),
                    decay * old[1] + 1.0,
                    decay * decay * old[2] + variance,
                ]
                z = self._value_z(new[0] / math.sqrt(new[2]))
            sums.append(new)
            surprises.append(self._surprise(tails[k], z, count_like))
        score = min(max(max(surprises) - math.log10(len(surprises)), 0.0), _MAX_SCORE)
        age = 0.0 if state.first_start is None else (start - state.first_start)
        seconds = 0.0 if isinstance(age, float) else age.total_seconds()
        warm = seconds >= cfg.warmup_seconds
        # The record is kept from half-way through the warm-up: earlier, an
        # untrained baseline's ratios would set it far too high; later, the
        # first windows after warm-up would all count as novel.
        keep_record = seconds >= cfg.warmup_seconds / 2
        record, loud_record, novel = self._records(observed, mu, sd, step, count_like)
        novel = keep_record and novel
        if count_like:
            excess = observed - mu >= cfg.min_excess
        else:
            excess = self._value_z(observed - mu) >= _VALUE_MIN_EXCESS_SD * sd
        rested = self._rested(start, score)
        news = warm and novel and excess and rested and state.event is None
        return _View(
            count_like=count_like,
            mu=mu,
            sd=sd,
            sums=sums,
            score=score,
            warm=warm,
            novel=novel,
            keep_record=keep_record,
            record=record,
            loud_record=loud_record,
            alert_score=score if news else 0.0,
        )

    def _rested(self, start: datetime, score: float) -> bool:
        # The refractory gap keeps one story's waves to one event; a window
        # that beats the last event's peak by a margin is a new story.
        cfg = self.config
        state = self._state
        last = state.last_event_start
        gap = cfg.refractory_seconds
        if not state.count_like and cfg.value_refractory_seconds is not None:
            # A measurement has no news cycle whose waves come back for a day.
            gap = cfg.value_refractory_seconds
        if last is None or (start - last).total_seconds() >= gap:
            return True
        margin = cfg.louder_ends_refractory
        return margin is not None and score >= state.last_event_peak + margin

    def _value_z(self, departure: float) -> float:
        # A value series' departure counts in both directions if configured.
        return abs(departure) if self.config.two_sided_values else departure

    def _prior_tails(self) -> list[list[float]]:
        return [
            [_GAUSS_Q95, _GAUSS_EXCESS, 0.0]
            for _ in self.config.scale_half_lives_windows
        ]

    def _step(self, start: datetime, observed: float) -> WindowScore:
        cfg = self.config
        state = self._state
        if state.windows_seen == 0:
            state.level = max(observed, 0.0)
            state.value_level = observed
            state.first_start = start
        step = state.window_seconds or 300.0
        view = self._view(start, observed)
        if view.count_like != state.count_like:
            # The data chose the value model: its calibration starts afresh.
            state.count_like = False
            state.tails = self._prior_tails()
        self._seed_seasonal(start)
        for k, new in enumerate(view.sums):
            state.sums[k] = new
        # Learn the calibration of every scale from this window's z-scores.
        for k, new in enumerate(view.sums):
            if view.count_like:
                root = anscombe_difference(new[0], new[1])
                z = root / math.sqrt(max(new[2] / new[1], 1e-12))
            else:
                z = self._value_z(new[0] / math.sqrt(new[2]))
            self._learn_tail(state.tails[k], z)
        if view.keep_record:
            state.record = view.record
            state.loud_record = view.loud_record
        anomalous = view.warm and view.novel and view.score >= cfg.enter_score
        score_out = self._advance_event(
            start, observed, view.mu, view.score, anomalous, view.sd, view.count_like
        )
        score_out = WindowScore(
            window_start=score_out.window_start,
            observed_count=score_out.observed_count,
            expected_count=score_out.expected_count,
            score=score_out.score,
            is_anomalous=score_out.is_anomalous,
            event=score_out.event,
            phase=score_out.phase,
            alert_score=view.alert_score,
        )
        self._learn_value(start, observed, step)
        if observed >= 0:
            mu = self._expected(start)
            phi = self._dispersion()
            self._learn(start, observed, mu, math.sqrt(mu + phi * mu * mu), step)
        if state.count_like and self._under_dispersed(start):
            # The data chose the value model: a whole-number measurement.
            state.count_like = False
            state.tails = self._prior_tails()
            state.sums = [[0.0, 0.0, 0.0] for _ in state.sums]
        state.windows_seen += 1
        state.last_start = start
        return score_out

    def _zero_plausible(self, start: datetime) -> bool:
        # A window never reported holds no posts, if no posts is a count
        # the model finds plausible there; otherwise (a busy series, or a
        # whole-number measurement such as a speed) the window is missing
        # and is skipped like a value series' missing measurement.
        least = self.config.min_zero_probability
        if least is None or not self._state.windows_seen:
            return True
        mu = self._expected(start)
        phi = self._dispersion()
        if phi * mu < 1e-9:
            log_zero = -mu
        else:
            log_zero = -math.log1p(phi * mu) / phi
        return log_zero >= math.log(least)

    def _under_dispersed(self, start: datetime) -> bool:
        # Posts arrive independently, so their counts vary at least as much
        # as Poisson noise (variance >= mean). Whole numbers that vary much
        # less around a level of several per window (a speed, a reading)
        # are a measurement. Decided once, after warm-up, on the learned
        # excess variance: E[(x - mu)**2 - mu] = dispersion_num, with
        # dispersion_den = E[mu**2].
        cfg = self.config
        state = self._state
        if cfg.poisson_share is None or state.first_start is None:
            return False
        if (start - state.first_start).total_seconds() < cfg.warmup_seconds:
            return False
        typical = math.sqrt(max(state.dispersion_den, 0.0))
        if typical < MEASUREMENT_MIN_LEVEL:
            return False
        return 1.0 + state.dispersion_num / typical < cfg.poisson_share

    def _seed_seasonal(self, start: datetime) -> None:
        # The factors are not normalised, so the level carries the inverse of
        # the visited factors' scale. A never-visited hour or weekday starts
        # at the mean of the visited ones instead of 1.0: otherwise, on a
        # sparse series whose learned factors sit far below 1, the first
        # window of a new weekday would expect many times the usual count
        # and hide a burst that starts there.
        state = self._state
        for factors, visits, slot in (
            (state.daily, state.daily_visits, start.hour),
            (state.weekly, state.weekly_visits, start.weekday()),
        ):
            factors[slot] = self._factor(factors, visits, slot)

    def _records(
        self, observed: float, mu: float, sd: float, step: float, count_like: bool
    ) -> tuple[float, float, bool]:
        # Novelty: the log ratio and the log count must each beat every
        # earlier window's, as remembered by records that fade towards 0.
        # The +1 keeps sparse series from treating 0 -> 1 as a huge ratio.
        # A value series has no ratio or log count: its single-window
        # z-score plays the ratio's part and there is no loudness record.
        # Returns the new records and whether the window is novel.
        cfg = self.config
        state = self._state
        novel = True
        record = state.record
        loud_record = state.loud_record
        if cfg.novelty_half_life_seconds is not None:
            if count_like:
                ratio = math.log((observed + 1.0) / (mu + 1.0))
            else:
                ratio = self._value_z((observed - mu) / sd)
            faded = state.record * 2.0 ** (-step / cfg.novelty_half_life_seconds)
            record = max(faded, ratio)
            novel = ratio >= faded
        if cfg.loudness_half_life_seconds is not None and count_like:
            loud = math.log(observed + 1.0)
            faded = state.loud_record * 2.0 ** (-step / cfg.loudness_half_life_seconds)
            loud_record = max(faded, loud)
            novel = novel and loud >= faded
        return record, loud_record, novel

    def _surprise(self, tail: list[float], z: float, count_like: bool) -> float:
        cfg = self.config
        u, e, _ = tail
        fit = cfg.tail_fit == "all" or (cfg.tail_fit == "values" and not count_like)
        if z > u and fit:
            return -math.log10(cfg.tail_fraction) + (z - u) / (e * _LN10)
        # The exponential is fitted to excesses over u and says nothing
        # about the body: extrapolated below u with a large mean excess
        # (after a giant burst), it kept every window, even one at
        # baseline, near -log10(tail_fraction) and above exit_score, so
        # events never ended. The body uses the model's unit-variance
        # noise instead, shifted so its upper quantile is u; continuous
        # at u, and near 0 for a window at baseline.
        shifted = z - u + self._body_quantile
        return max(0.0, gauss_surprise(shifted))

    def _learn_tail(self, tail: list[float], z: float) -> None:
        # Peaks over threshold: track the upper quantile and the mean excess.
        cfg = self.config
        u, e, n = tail
        rate = cfg.tail_quantile_step
        if cfg.relative_quantile_step:
            # Steps in proportion to the quantile itself: a model whose noise
            # is badly mis-scaled (z-scores in the tens) is corrected in a
            # few hundred windows rather than thousands.
            rate *= max(1.0, abs(u) / _GAUSS_Q95)
        if z > u:
            tail[0] = u + rate * (1.0 - cfg.tail_fraction)
            tail[2] = n + 1
            a = max(1.0 / tail[2], 1.0 / cfg.tail_memory)
            excess = min(z - u, cfg.tail_clip * e)
            tail[1] = max(e + a * (excess - e), cfg.min_tail_excess)
        else:
            tail[0] = u - rate * cfg.tail_fraction

    def _advance_event(
        self,
        start: datetime,
        observed: float,
        mu: float,
        score: float,
        anomalous: bool,
        sd: float,
        count_like: bool,
    ) -> WindowScore:
        cfg = self.config
        state = self._state
        event = state.event
        phase: BurstPhase | None = None
        if event is None:
            rested = self._rested(start, score)
            excess = (
                observed - mu >= cfg.min_excess
                if count_like
                else self._value_z(observed - mu) >= _VALUE_MIN_EXCESS_SD * sd
            )
            if anomalous and rested and excess:
                event = BurstEvent(start, start, None, score, observed, mu, 1)
                state.event = event
                state.quiet = 0
                state.last_event_start = start
                state.last_event_peak = score
                phase = BurstPhase.STARTED
        else:
            event = BurstEvent(
                event.started_at,
                event.peak_at,
                None,
                event.peak_score,
                event.peak_observed_count,
                event.peak_expected_count,
                event.windows + 1,
            )
            if score > event.peak_score:
                event = BurstEvent(
                    event.started_at, start, None, score, observed, mu, event.windows
                )
                phase = BurstPhase.PEAKED
            # The smoothed sums carry a large burst for many windows after the
            # counts are back, so a window too close to its expectation to
            # start an event is quiet whatever its score.
            if count_like:
                gap = observed - mu
                least = cfg.min_excess
            else:
                gap = self._value_z(observed - mu)
                least = _VALUE_MIN_EXCESS_SD * sd
            calm = score < cfg.exit_score or gap <= 0 or gap < least
            state.quiet = state.quiet + 1 if calm else 0
            if state.quiet >= cfg.quiet_windows:
                event = BurstEvent(
                    event.started_at,
                    event.peak_at,
                    start,
                    event.peak_score,
                    event.peak_observed_count,
                    event.peak_expected_count,
                    event.windows,
                )
                state.event = None
                state.quiet = 0
                phase = BurstPhase.ENDED
            else:
                state.event = event
            state.last_event_peak = event.peak_score
        return WindowScore(
            window_start=start,
            observed_count=observed,
            expected_count=mu,
            score=score,
            is_anomalous=anomalous,
            event=event,
            phase=phase,
        )

    def _learn(
        self, start: datetime, observed: float, mu: float, sd: float, step: float
    ) -> None:
        cfg = self.config
        state = self._state
        n = state.windows_seen + 1
        clipped = min(max(observed, mu - cfg.winsor_sd * sd), mu + cfg.winsor_sd * sd)
        clipped = max(clipped, 0.0)

        hour, weekday = start.hour, start.weekday()
        seasonal = state.daily[hour] * state.weekly[weekday]
        deseasonalised = clipped / seasonal
        previous = state.level
        a_level = max(ewma_alpha(step, cfg.level_half_life_seconds), 1.0 / n)
        predicted = max(state.level + state.trend, 0.0)
        state.level = predicted + a_level * (deseasonalised - predicted)
        a_trend = ewma_alpha(step, cfg.trend_half_life_seconds)
        damping = 2.0 ** (-step / cfg.trend_damping_seconds)
        state.trend = damping * (
            state.trend + a_trend * ((state.level - previous) - state.trend)
        )

        base = max(state.level, cfg.min_expected)
        visits = state.daily_visits[hour] + 1
        state.daily_visits[hour] = visits
        a_daily = max(ewma_alpha(step / _DAY, cfg.daily_half_life_days), 1.0 / visits)
        ratio = clipped / (base * state.weekly[weekday])
        state.daily[hour] += a_daily * (min(ratio, 10.0) - state.daily[hour])
        state.daily[hour] = max(state.daily[hour], 0.05)

        visits = state.weekly_visits[weekday] + 1
        state.weekly_visits[weekday] = visits
        a_weekly = max(
            ewma_alpha(step / _WEEK, cfg.weekly_half_life_weeks), 1.0 / visits
        )
        ratio = clipped / (base * state.daily[hour])
        state.weekly[weekday] += a_weekly * (min(ratio, 10.0) - state.weekly[weekday])
        state.weekly[weekday] = max(state.weekly[weekday], 0.05)

        a_disp = ewma_alpha(step, cfg.dispersion_half_life_seconds)
        # The overdispersion may learn from wider residuals than the level:
        # a series whose counts jump routinely (bots, news cycles) has wide
        # noise, so its next jump is less surprising (count_spread_winsor_sd).
        spread = cfg.count_spread_winsor_sd
        wide = observed
        if spread is not None:
            wide = min(max(observed, mu - spread * sd), mu + spread * sd)
        excess = (wide - mu) ** 2 - mu
        state.dispersion_num += a_disp * (excess - state.dispersion_num)
        state.dispersion_den += a_disp * (mu * mu - state.dispersion_den)

    def _learn_value(self, start: datetime, observed: float, step: float) -> None:
        # The value model: additive level and hour-of-day profile, Gaussian
        # noise, learned on winsorised values like the count model.
        cfg = self.config
        state = self._state
        n = state.windows_seen + 1
        hour = start.hour
        mu = state.value_level + state.value_daily[hour]
        residual = observed - mu
        # The noise variance may learn from wider residuals than the level:
        # a series that spikes often has wide noise, and its next spike is
        # less surprising (value_spread_winsor_sd).
        spread = residual
        if n > 2:
            sd = math.sqrt(self._value_variance())
            bound = cfg.winsor_sd * sd
            residual = min(max(residual, -bound), bound)
            if cfg.value_spread_winsor_sd is not None:
                wide = cfg.value_spread_winsor_sd * sd
                spread = min(max(spread, -wide), wide)
        clipped = mu + residual
        a_level = max(ewma_alpha(step, cfg.level_half_life_seconds), 1.0 / n)
        state.value_level += a_level * (
            clipped - state.value_daily[hour] - state.value_level
        )
        a_daily = max(
            ewma_alpha(step / _DAY, cfg.daily_half_life_days),
            1.0 / (state.daily_visits[hour] + 1),
        )
        state.value_daily[hour] += a_daily * (
            clipped - state.value_level - state.value_daily[hour]
        )
        a_var = max(ewma_alpha(step, cfg.dispersion_half_life_seconds), 1.0 / n)
        state.value_variance += a_var * (spread * spread - state.value_variance)

    # -- persistence ---------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Return the detector's state as a JSON-able dict (no config).

        Returns:
            Plain floats, ints, lists, strings and ``None``; datetimes are ISO
            8601 strings in UTC.

        """
        return snapshot_of(self._state)

    @classmethod
    def restore(
        cls, snapshot: Mapping[str, Any], config: DetectorConfig | None = None
    ) -> BurstDetector:
        """Rebuild a detector from :meth:`snapshot` output.

        Args:
            snapshot: A dict produced by :meth:`snapshot` (possibly via JSON).
            config: Settings to run with; ``DetectorConfig()`` if omitted.

        Returns:
            A detector that continues exactly where the snapshot left off.

        Raises:
            InvalidRecordError: If the snapshot is malformed or of another
                version.

        """
        detector = cls(config)
        detector._state = state_from_snapshot(snapshot)
        return detector
