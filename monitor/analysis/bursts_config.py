"""Settings of the burst detector (:class:`~monitor.analysis.bursts.BurstDetector`).

The defaults are the configuration that leave-one-series-out cross-validation
chose over 53 NAB series (``benchmarks/cv_bursts.py``, ``SHIPPED``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from monitor.errors import ConfigError

_HOUR = 3600.0
_DAY = 86400.0

MEASUREMENT_MIN_LEVEL = 5.0
"""A count series is only judged under-dispersed (see
:attr:`DetectorConfig.poisson_share`) at this many posts per window or
more: below it, Poisson noise is too coarse to tell."""


@dataclass(frozen=True)
class DetectorConfig:
    """Settings of :class:`BurstDetector`; the defaults are the tested ones.

    Attributes:
        window_seconds: Window length in seconds, or ``None`` to infer it from
            the gap between the first two updates.
        level_half_life_seconds: Half-life of the deseasonalised level (> 0).
        trend_half_life_seconds: Half-life of the trend estimate (> 0).
        trend_damping_seconds: Time over which an unconfirmed trend decays by
            half (> 0); keeps a burst from being extrapolated.
        daily_half_life_days: Half-life of each hour-of-day factor, counted in
            days of visits to that hour (> 0).
        weekly_half_life_weeks: Half-life of each day-of-week factor, counted in
            weeks of visits to that day (> 0).
        dispersion_half_life_seconds: Half-life of the overdispersion
            estimate (> 0).
        initial_dispersion: Prior ``phi`` of ``var = mu + phi * mu**2`` (>= 0).
        max_dispersion: Upper bound of ``phi`` (>= initial_dispersion).
        winsor_sd: Observations are clipped to ``mu +- winsor_sd`` standard
            deviations before they are learned (> 0).
        scale_half_lives_windows: Half-lives, in windows, of the exponentially
            weighted sums that are scored; 0 scores the single window. Each
            scale has its own tail calibration; the best one counts, less a
            Bonferroni ``log10(len)``. Longer scales catch slow rises.
        min_expected: Floor of the expected count per window (> 0), so an
            all-zero history still has Poisson noise.
        enter_score: Surprise (``-log10`` of the calibrated tail probability
            of a window) that starts an event if the window is also novel;
            4 is about once in 10,000 windows, and the ``burst`` rule's
            shipped threshold (a rule's threshold above it only sees an
            event's first windows: see ``WindowScore.alert_score``).
        exit_score: Surprise below which an event winds down (< enter_score).
        tail_fraction: Share of windows above the tracked tail threshold (0-1)
            in the peaks-over-threshold calibration.
        tail_quantile_step: Step of the stochastic tail-quantile tracker, in
            standard deviations (> 0).
        tail_memory: Exceedances over which the mean tail excess is averaged
            (>= 1); larger forgets past bursts more slowly.
        tail_clip: An exceedance is clipped to this many mean excesses before
            it is learned (> 0), so one giant burst cannot mute the series.
        min_tail_excess: Floor of the mean tail excess (> 0).
        quiet_windows: Consecutive quiet windows that end an event (>= 1);
            a window is quiet if its score is below ``exit_score`` or its
            count is not above the expected count by ``min_excess`` or more.
        min_excess: An event only starts if the count exceeds the expected
            count by at least this many posts (>= 0).
        warmup_seconds: Time after the first window during which the baseline
            learns but no event can start (>= 0).
        max_gap_windows: Missing windows (no count reported) up to this many are
            filled with zeros; a longer gap fills only this many (>= 0).
        novelty_half_life_seconds: Half-life of the record log ratio to the
            baseline that a window must beat to start an event (> 0), or
            ``None`` to drop this gate.
        loudness_half_life_seconds: Half-life of the record log count that a
            window must also beat to start an event (> 0), or ``None`` to drop
            this gate.
        refractory_seconds: Least time between the starts of two events
            (>= 0); 0 lets a new event start as soon as the last one ended.
        tail_fit: Where an exponential tail is fitted to the excesses over
            the tracked quantile (``tail_memory``, ``tail_clip``,
            ``min_tail_excess``): ``"none"`` (the model's noise sets the
            tail's scale everywhere), ``"values"`` (value series only) or
            ``"all"``.
        two_sided_values: A value series (see :meth:`BurstDetector.update`)
            is scored on its departure from the expectation in either
            direction (a measurement falling away is as anomalous as one
            rising); counts are always scored upwards only (a burst).
        relative_quantile_step: The tail-quantile tracker steps in
            proportion to the tracked quantile (a badly mis-scaled model is
            corrected in hundreds of windows, not thousands).
        poisson_share: A count series whose learned noise variance falls
            below this share of its mean (Poisson noise has variance equal
            to the mean) at ``MEASUREMENT_MIN_LEVEL`` or more per window
            after warm-up is a whole-number measurement (a speed, a
            reading), not a count of independent posts: it takes the value
            model for good. ``None`` keeps every whole-number series a
            count. In (0, 1].
        min_zero_probability: A window never reported is filled with 0
            posts only where the count model gives 0 at least this
            probability; elsewhere (a busy series, a measurement) it is
            missing and skipped. ``None`` fills every gap. In (0, 1).
        louder_ends_refractory: A window whose score beats the last event's
            peak score by this much may start an event within
            ``refractory_seconds`` of it (a bigger story, not a wave of the
            last one); ``None`` keeps the refractory gap absolute. >= 0.
        value_spread_winsor_sd: A value series' residuals are clipped to
            this many standard deviations before they are learned into its
            noise variance (its level always uses ``winsor_sd``); ``None``
            learns the variance from raw residuals, so a measurement that
            spikes routinely has wide noise and its next spike is no news.
            > 0.
        count_spread_winsor_sd: A count series' residuals are clipped to
            this many standard deviations before they are learned into its
            overdispersion (its level and seasonal factors always use
            ``winsor_sd``); ``None`` learns it from raw residuals, so a
            series whose counts jump routinely (bots, a news cycle) has
            wide noise and its next jump of the same size is less news.
            ``max_dispersion`` bounds what it learns. > 0.
        value_refractory_seconds: ``refractory_seconds`` for a value
            series (a measurement has no news cycle whose waves return for
            a day); ``None`` uses ``refractory_seconds``. >= 0.

    """

    window_seconds: float | None = None
    level_half_life_seconds: float = 12 * _HOUR
    trend_half_life_seconds: float = 6 * _HOUR
    trend_damping_seconds: float = 3 * _HOUR
    daily_half_life_days: float = 3.0
    weekly_half_life_weeks: float = 2.0
    dispersion_half_life_seconds: float = 2 * _DAY
    initial_dispersion: float = 0.1
    max_dispersion: float = 16.0
    winsor_sd: float = 3.0
    scale_half_lives_windows: tuple[float, ...] = (3.0, 12.0)
    min_expected: float = 0.05
    enter_score: float = 4.0
    exit_score: float = 1.0
    quiet_windows: int = 3
    min_excess: float = 3.0
    warmup_seconds: float = _DAY
    max_gap_windows: int = 288
    tail_fraction: float = 0.05
    tail_quantile_step: float = 0.02
    tail_memory: float = 200.0
    tail_clip: float = 5.0
    min_tail_excess: float = 0.3
    novelty_half_life_seconds: float | None = None
    loudness_half_life_seconds: float | None = 28 * _DAY
    refractory_seconds: float = _DAY
    two_sided_values: bool = True
    tail_fit: Literal["none", "values", "all"] = "none"
    relative_quantile_step: bool = True
    poisson_share: float | None = 0.8
    min_zero_probability: float | None = 1e-3
    louder_ends_refractory: float | None = 4.0
    value_spread_winsor_sd: float | None = None
    count_spread_winsor_sd: float | None = None
    value_refractory_seconds: float | None = 12 * _HOUR

    def __post_init__(self) -> None:
        problems = []
        positive = (
            "level_half_life_seconds",
            "trend_half_life_seconds",
            "trend_damping_seconds",
            "daily_half_life_days",
            "weekly_half_life_weeks",
            "dispersion_half_life_seconds",
            "winsor_sd",
            "min_expected",
        )
        for name in positive:
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value)) or (
                value <= 0
            ):
                problems.append(f"{name}: must be a finite number > 0, got {value!r}")
        for name in ("novelty_half_life_seconds", "loudness_half_life_seconds"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                problems.append(f"{name}: must be None or > 0, got {value!r}")
        if self.window_seconds is not None and not (
            math.isfinite(self.window_seconds) and self.window_seconds > 0
        ):
            problems.append(
                f"window_seconds: must be None or > 0, got {self.window_seconds!r}"
            )
        for name in (
            "initial_dispersion",
            "min_excess",
            "warmup_seconds",
            "refractory_seconds",
        ):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                problems.append(f"{name}: must be a finite number >= 0, got {value!r}")
        if self.tail_fit not in ("none", "values", "all"):
            problems.append(
                f"tail_fit: must be 'none', 'values' or 'all', got {self.tail_fit!r}"
            )
        if self.max_dispersion < self.initial_dispersion:
            problems.append("max_dispersion: must be >= initial_dispersion")
        if not self.exit_score < self.enter_score:
            problems.append(
                f"exit_score: must be below enter_score ({self.enter_score}),"
                f" got {self.exit_score}"
            )
        if not self.scale_half_lives_windows or any(
            not (math.isfinite(h) and h >= 0) for h in self.scale_half_lives_windows
        ):
            problems.append("scale_half_lives_windows: need one or more values >= 0")
        if not 0 < self.tail_fraction < 1:
            problems.append(
                f"tail_fraction: must be in (0, 1), got {self.tail_fraction}"
            )
        for name in ("tail_quantile_step", "tail_clip", "min_tail_excess"):
            if not getattr(self, name) > 0:
                problems.append(f"{name}: must be > 0, got {getattr(self, name)!r}")
        if not self.tail_memory >= 1:
            problems.append(f"tail_memory: must be >= 1, got {self.tail_memory!r}")
        if self.poisson_share is not None and not 0 < self.poisson_share <= 1:
            problems.append(
                f"poisson_share: must be None or in (0, 1], got {self.poisson_share!r}"
            )
        least = self.min_zero_probability
        if least is not None and not 0 < least < 1:
            problems.append(
                f"min_zero_probability: must be None or in (0, 1), got {least!r}"
            )
        margin = self.louder_ends_refractory
        if margin is not None and not (math.isfinite(margin) and margin >= 0):
            problems.append(
                f"louder_ends_refractory: must be None or >= 0, got {margin!r}"
            )
        for name in ("value_spread_winsor_sd", "count_spread_winsor_sd"):
            spread = getattr(self, name)
            if spread is not None and not spread > 0:
                problems.append(f"{name}: must be None or > 0, got {spread!r}")
        gap = self.value_refractory_seconds
        if gap is not None and not (math.isfinite(gap) and gap >= 0):
            problems.append(
                f"value_refractory_seconds: must be None or >= 0, got {gap!r}"
            )
        if self.quiet_windows < 1:
            problems.append(f"quiet_windows: must be >= 1, got {self.quiet_windows}")
        if self.max_gap_windows < 0:
            problems.append(
                f"max_gap_windows: must be >= 0, got {self.max_gap_windows}"
            )
        if problems:
            raise ConfigError(problems)
