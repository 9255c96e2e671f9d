"""From a model's raw probability to a calibrated one (pure, no I/O).

A calibration is fitted on labelled texts the model was not trained on. Its
input is the model's raw log-odds of positive (not the probability: snownlp's
naive Bayes saturates at exactly 0.0 or 1.0 on long texts, its log-odds do
not). Platt scaling fits ``sigmoid(a * log_odds + b)``; isotonic regression
fits a non-decreasing step map (pool adjacent violators), interpolated
linearly between its steps; ``identity`` is ``sigmoid(log_odds)``. All are
monotonic, so they never reorder texts: the AUC is unchanged, and a
threshold on the calibrated probability means what it says ("positive from
0.7" = "at least 70 % likely positive" on data like the calibration data).

:func:`expected_calibration_error` measures the fit: 15 equal-width bins of
the predicted positive probability, the gap between the mean prediction and
the share of positives in each bin, weighted by the bin's size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from monitor.errors import MonitorError

#: Probabilities are clipped to [EPS, 1 - EPS] before :func:`logit`.
EPS = 1e-12
#: Log-odds are clipped to +-MAX_LOG_ODDS before calibration (float noise
#: beyond, and isotonic knots stay finite).
MAX_LOG_ODDS = 700.0
#: Bins of :func:`expected_calibration_error`.
ECE_BINS = 15
PLATT = "platt"
ISOTONIC = "isotonic"
IDENTITY = "identity"


class InvalidCalibrationError(MonitorError):
    """A stored calibration is malformed."""


def logit(p: float) -> float:
    """``log(p / (1 - p))`` with ``p`` clipped to [EPS, 1 - EPS]."""
    p = min(max(p, EPS), 1 - EPS)
    return math.log(p / (1 - p))


def sigmoid(z: float) -> float:
    """``1 / (1 + exp(-z))`` without overflow."""
    if z >= 0:
        return 1 / (1 + math.exp(-z))
    e = math.exp(z)
    return e / (1 + e)


@dataclass(frozen=True)
class Calibration:
    """A monotonic map from raw log-odds to calibrated positive probability.

    Attributes:
        method: ``platt``, ``isotonic`` or ``identity``.
        a: Platt slope on the raw log-odds.
        b: Platt intercept.
        xs: Isotonic knots (raw log-odds, increasing).
        ys: Calibrated probabilities at the knots (non-decreasing).

    """

    method: str = IDENTITY
    a: float = 1.0
    b: float = 0.0
    xs: tuple[float, ...] = field(default=())
    ys: tuple[float, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.method not in (PLATT, ISOTONIC, IDENTITY):
            raise InvalidCalibrationError(f"unknown calibration method {self.method!r}")
        if self.method == ISOTONIC:
            if not self.xs or len(self.xs) != len(self.ys):
                raise InvalidCalibrationError("isotonic calibration needs knots")
            if any(b < a for a, b in zip(self.xs, self.xs[1:], strict=False)) or any(
                b < a for a, b in zip(self.ys, self.ys[1:], strict=False)
            ):
                raise InvalidCalibrationError("isotonic knots must not decrease")
        if self.method == PLATT and not (
            math.isfinite(self.a) and math.isfinite(self.b) and self.a >= 0
        ):
            raise InvalidCalibrationError("Platt slope must be finite and >= 0")

    def __call__(self, log_odds: float) -> float:
        """Return the calibrated probability of raw log-odds of positive."""
        z = min(max(log_odds, -MAX_LOG_ODDS), MAX_LOG_ODDS)
        if self.method == PLATT:
            return sigmoid(self.a * z + self.b)
        if self.method == ISOTONIC:
            return float(np.interp(z, self.xs, self.ys))
        return sigmoid(z)

    def many(self, log_odds: npt.NDArray[np.float64]) -> list[float]:
        """Return :meth:`__call__` of each of many log-odds (vectorised)."""
        z = np.clip(log_odds, -MAX_LOG_ODDS, MAX_LOG_ODDS)
        if self.method == ISOTONIC:
            out = np.interp(z, self.xs, self.ys)
        else:
            if self.method == PLATT:
                z = self.a * z + self.b
            # the scalar sigmoid's expression, for the same floats
            e = np.exp(-np.abs(z))
            out = np.where(z >= 0, 1 / (1 + e), e / (1 + e))
        result: list[float] = out.tolist()
        return result

    def to_dict(self) -> dict[str, Any]:
        """JSON data for the model's metadata."""
        if self.method == PLATT:
            return {"method": PLATT, "a": self.a, "b": self.b}
        if self.method == ISOTONIC:
            return {"method": ISOTONIC, "xs": list(self.xs), "ys": list(self.ys)}
        return {"method": IDENTITY}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        """Return the calibration of :meth:`to_dict`'s data.

        Raises:
            InvalidCalibrationError: If the data is not a calibration.

        """
        try:
            method = data["method"]
            if method == PLATT:
                return cls(PLATT, a=float(data["a"]), b=float(data["b"]))
            if method == ISOTONIC:
                return cls(
                    ISOTONIC,
                    xs=tuple(float(x) for x in data["xs"]),
                    ys=tuple(float(y) for y in data["ys"]),
                )
            return cls(method)
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidCalibrationError(f"malformed calibration ({exc!r})") from exc


def fit_platt(log_odds: Sequence[float], labels: Sequence[int]) -> Calibration:
    """Fit ``sigmoid(a * log_odds + b)`` by Newton's method on the log-loss.

    Uses Platt's smoothed targets (``(n+ + 1) / (n+ + 2)`` and
    ``1 / (n- + 2)``), which keep ``a`` finite on separable data, and his
    start (``a = 0``, ``b`` the smoothed prior log-odds) with a backtracking
    line search, on log-odds scaled to unit spread (naive Bayes log-odds
    reach the hundreds).
    """
    x = np.clip(np.asarray(log_odds, dtype=np.float64), -MAX_LOG_ODDS, MAX_LOG_ODDS)
    y = np.asarray(labels, dtype=np.float64)
    n_pos = float(y.sum())
    n_neg = len(y) - n_pos
    t = np.where(y == 1, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))
    scale = float(x.std()) or 1.0
    xs = x / scale

    def loss(ab: np.ndarray) -> float:
        z = ab[0] * xs + ab[1]
        return float((np.logaddexp(0, z) - t * z).sum())

    ab = np.array([0.0, math.log((n_pos + 1) / (n_neg + 1))])
    current = loss(ab)
    for _ in range(100):
        z = ab[0] * xs + ab[1]
        p = 0.5 * (1 + np.tanh(0.5 * z))
        w = p * (1 - p) + 1e-12
        g = np.array([((p - t) * xs).sum(), (p - t).sum()])
        h = np.array([[(w * xs * xs).sum(), (w * xs).sum()], [(w * xs).sum(), w.sum()]])
        h += 1e-9 * np.eye(2)
        delta = np.linalg.solve(h, g)
        step = 1.0
        while step > 1e-10:
            trial = ab - step * delta
            value = loss(trial)
            if value <= current + 1e-4 * step * float(g @ -delta):
                break
            step /= 2
        else:
            break
        ab, previous, current = trial, current, value
        if previous - current < 1e-12 * max(abs(current), 1.0):
            break
    return Calibration(PLATT, a=max(float(ab[0]) / scale, 0.0), b=float(ab[1]))


def fit_isotonic(log_odds: Sequence[float], labels: Sequence[int]) -> Calibration:
    """Fit a non-decreasing map by pool-adjacent-violators.

    Knots are the mean log-odds of each pooled block; the map is
    interpolated linearly between them and flat beyond them.
    """
    raw = np.clip(np.asarray(log_odds, dtype=np.float64), -MAX_LOG_ODDS, MAX_LOG_ODDS)
    order = np.argsort(raw, kind="stable")
    xs = raw[order]
    ys = np.asarray(labels, dtype=np.float64)[order]
    # Blocks as (sum of y, sum of x, count).
    blocks: list[list[float]] = []
    for x, y in zip(xs.tolist(), ys.tolist(), strict=True):
        blocks.append([y, x, 1.0])
        while len(blocks) > 1 and (
            blocks[-2][0] / blocks[-2][2] >= blocks[-1][0] / blocks[-1][2]
        ):
            y2, x2, n2 = blocks.pop()
            blocks[-1][0] += y2
            blocks[-1][1] += x2
            blocks[-1][2] += n2
    knots_x = [bx / n for _, bx, n in blocks]
    knots_y = [by / n for by, _, n in blocks]
    # Shrink away from exactly 0 and 1: a handful of texts is no certainty.
    total = len(xs)
    knots_y = [min(max(v, 0.5 / total), 1 - 0.5 / total) for v in knots_y]
    return Calibration(ISOTONIC, xs=tuple(knots_x), ys=tuple(knots_y))


def fit_calibration(
    log_odds: Sequence[float], labels: Sequence[int], method: str = PLATT
) -> Calibration:
    """Fit the named calibration method (``platt``, ``isotonic``, ``identity``)."""
    if method == PLATT:
        return fit_platt(log_odds, labels)
    if method == ISOTONIC:
        return fit_isotonic(log_odds, labels)
    if method == IDENTITY:
        return Calibration()
    raise InvalidCalibrationError(f"unknown calibration method {method!r}")


def expected_calibration_error(
    labels: Sequence[int], probabilities: Sequence[float], bins: int = ECE_BINS
) -> float:
    """Return the expected calibration error of positive probabilities.

    ``sum over bins of (n_bin / n) * |mean(p in bin) - share of positives in
    bin|``, with ``bins`` equal-width bins on [0, 1] (1.0 in the last bin).

    Returns:
        The error in [0, 1]; ``nan`` for no texts.

    """
    if len(labels) != len(probabilities):
        raise ValueError("labels and probabilities differ in length")
    if not labels:
        return float("nan")
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    index = np.minimum((p * bins).astype(np.int64), bins - 1)
    count = np.bincount(index, minlength=bins)
    gap = np.abs(
        np.bincount(index, weights=p, minlength=bins)
        - np.bincount(index, weights=y, minlength=bins)
    )
    return float(gap.sum() / count.sum())
