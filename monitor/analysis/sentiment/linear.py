"""A linear sentiment model on snownlp's words: NB-weighted logistic regression.

Training (:func:`train_linear`) follows Wang & Manning's NBSVM, with a
logistic loss: each binary feature is scaled by its naive Bayes log-count
ratio ``r = log((p / |p|) / (q / |q|))`` (``p``, ``q``: smoothed counts of
texts with the feature among positives and negatives), then an L2-regularised
logistic regression is fitted on the scaled features with L-BFGS (numpy only).
The ratio is folded into the weights afterwards, so scoring is one sum of
weights per text: ``P(positive) = sigmoid(bias + sum(weight[f]))``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from monitor.errors import MonitorError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: L-BFGS stops after this many iterations whatever the gradient.
MAX_ITERATIONS = 500


class TrainingError(MonitorError):
    """The training data cannot make a model (one class only, say)."""


@dataclass(frozen=True)
class LinearOptions:
    """How the linear model is fitted.

    Attributes:
        l2: L2 penalty per text (the loss is the mean log-loss plus
            ``l2 / 2 * |w|^2``).
        nb_scaling: Scale features by their NB log-count ratio (NB-LR).
        nb_alpha: Smoothing added to the counts of the ratio.
        min_count: Features seen in fewer training texts are dropped.

    """

    l2: float = 1e-4
    nb_scaling: bool = True
    nb_alpha: float = 1.0
    min_count: int = 2


class LinearModel:
    """Weights per feature string and a bias; the score is a logistic sum.

    Args:
        weights: Feature string to weight (features not present weigh 0).
        bias: The intercept.

    """

    def __init__(self, weights: dict[str, float], bias: float) -> None:
        """Keep the weights (not copied)."""
        self.weights = weights
        self.bias = bias

    def raw_logit(self, features: Iterable[str]) -> float:
        """Return the log-odds of positive for a text's features."""
        get = self.weights.get
        return self.bias + sum(get(f, 0.0) for f in features)

    def positive_probability(self, features: Iterable[str]) -> float:
        """``sigmoid(raw_logit)``, in [0, 1]."""
        return _sigmoid(self.raw_logit(features))


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


@dataclass(frozen=True)
class _Csr:
    """A binary texts x features matrix: row ids and column ids of the ones."""

    rows: IntArray
    cols: IntArray
    n_rows: int
    n_cols: int

    def dot(self, w: FloatArray, data: FloatArray) -> FloatArray:
        out = np.bincount(self.rows, weights=data * w[self.cols], minlength=self.n_rows)
        return out.astype(np.float64, copy=False)

    def tdot(self, g: FloatArray, data: FloatArray) -> FloatArray:
        out = np.bincount(self.cols, weights=data * g[self.rows], minlength=self.n_cols)
        return out.astype(np.float64, copy=False)


def build_matrix(
    docs: Sequence[Iterable[str]], vocabulary: dict[str, int]
) -> tuple[IntArray, IntArray]:
    """Row and column ids of the features of ``docs`` found in ``vocabulary``."""
    rows: list[int] = []
    cols: list[int] = []
    for i, features in enumerate(docs):
        ids = [vocabulary[f] for f in features if f in vocabulary]
        cols.extend(ids)
        rows.extend([i] * len(ids))
    return np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)


def train_linear(
    docs: Sequence[Iterable[str]],
    labels: Sequence[int],
    options: LinearOptions | None = None,
) -> LinearModel:
    """Fit the NB-LR model on feature sets and labels (1 positive, 0 negative).

    Raises:
        TrainingError: If there are no texts or only one class.

    """
    options = options or LinearOptions()
    y = np.asarray(labels, dtype=np.float64)
    if len(y) == 0 or y.min() == y.max():
        raise TrainingError("training needs both positive and negative texts")
    docs = [list(d) for d in docs]
    counts: dict[str, int] = {}
    for features in docs:
        for f in features:
            counts[f] = counts.get(f, 0) + 1
    names = [f for f, c in counts.items() if c >= options.min_count]
    vocabulary = {f: i for i, f in enumerate(names)}
    rows, cols = build_matrix(docs, vocabulary)
    matrix = _Csr(rows, cols, len(docs), len(names))
    if options.nb_scaling:
        p = np.bincount(cols, weights=y[rows], minlength=len(names)) + options.nb_alpha
        q = (
            np.bincount(cols, weights=1 - y[rows], minlength=len(names))
            + options.nb_alpha
        )
        ratio = np.log(p / p.sum()) - np.log(q / q.sum())
    else:
        ratio = np.ones(len(names))
    data = ratio[cols]
    coef = _fit_logistic(matrix, data, y, options.l2)
    weights = coef[:-1] * ratio
    return LinearModel(
        {f: float(w) for f, w in zip(names, weights.tolist(), strict=True) if w},
        float(coef[-1]),
    )


def _fit_logistic(
    matrix: _Csr, data: FloatArray, y: FloatArray, l2: float
) -> FloatArray:
    """Minimise mean log-loss + l2/2 |w|^2 (bias unpenalised); returns [w..., b]."""
    n = len(y)
    sign = 2 * y - 1

    def loss_grad(theta: FloatArray) -> tuple[float, FloatArray]:
        w, b = theta[:-1], theta[-1]
        z = matrix.dot(w, data) + b
        m = sign * z
        loss = float(np.logaddexp(0, -m).sum() / n + l2 / 2 * w @ w)
        # d/dz of log(1 + exp(-s z)) = -s * sigmoid(-s z)
        g = -sign * _expit(-m) / n
        grad = np.empty_like(theta)
        grad[:-1] = matrix.tdot(g, data) + l2 * w
        grad[-1] = g.sum()
        return loss, grad

    return lbfgs(loss_grad, np.zeros(matrix.n_cols + 1))


def _expit(x: FloatArray) -> FloatArray:
    out: FloatArray = 0.5 * (1 + np.tanh(0.5 * x))
    return out


def lbfgs(
    loss_grad: Callable[[FloatArray], tuple[float, FloatArray]],
    x0: FloatArray,
    *,
    memory: int = 10,
    max_iterations: int = MAX_ITERATIONS,
    tolerance: float = 1e-6,
) -> FloatArray:
    """Minimise a smooth function with L-BFGS and a backtracking line search.

    Args:
        loss_grad: Returns the value and the gradient at a point.
        x0: Where to start.
        memory: Correction pairs kept.
        max_iterations: Iterations at most.
        tolerance: Stop when the gradient's max-norm falls below this, or the
            value improves by less than ``tolerance * 1e-3`` relatively.

    Returns:
        The point reached.

    """
    x = x0.copy()
    f, g = loss_grad(x)
    s_list: list[FloatArray] = []
    y_list: list[FloatArray] = []
    for _ in range(max_iterations):
        if np.abs(g).max() < tolerance:
            break
        q = g.copy()
        alphas = []
        for s, yv in zip(reversed(s_list), reversed(y_list), strict=True):
            a = (s @ q) / (yv @ s)
            alphas.append(a)
            q -= a * yv
        if s_list:
            q *= (s_list[-1] @ y_list[-1]) / (y_list[-1] @ y_list[-1])
        for (s, yv), a in zip(
            zip(s_list, y_list, strict=True), reversed(alphas), strict=True
        ):
            beta = (yv @ q) / (yv @ s)
            q += s * (a - beta)
        direction = -q
        slope = g @ direction
        if slope >= 0:  # not a descent direction: restart from the gradient
            s_list.clear()
            y_list.clear()
            direction = -g
            slope = g @ direction
        step = 1.0 if s_list else min(1.0, 1.0 / max(float(np.abs(g).sum()), 1e-12))
        while True:
            x_new = x + step * direction
            f_new, g_new = loss_grad(x_new)
            if f_new <= f + 1e-4 * step * slope or step < 1e-12:
                break
            step *= 0.5
        s_vec = x_new - x
        y_vec = g_new - g
        if s_vec @ y_vec > 1e-12:
            s_list.append(s_vec)
            y_list.append(y_vec)
            if len(s_list) > memory:
                s_list.pop(0)
                y_list.pop(0)
        improved = f - f_new
        x, f, g = x_new, f_new, g_new
        if 0 <= improved < tolerance * 1e-3 * max(abs(f), 1.0):
            break
    return x
