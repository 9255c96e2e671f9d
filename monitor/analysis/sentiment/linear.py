"""A linear sentiment model on snownlp's words: NB-weighted logistic regression.

Training (:func:`train_linear`) follows Wang & Manning's NBSVM, with a
logistic loss: each binary feature is scaled by its naive Bayes log-count
ratio ``r = log((p / |p|) / (q / |q|))`` (``p``, ``q``: smoothed counts of
texts with the feature among positives and negatives), then an L2-regularised
logistic regression is fitted on the scaled features with L-BFGS (numpy only).
The ratio is folded into the weights afterwards, so scoring is a sum of
weights per text: ``log-odds = bias + sum(weight[f] for f present)``.

Features are integer keys, found for a whole batch at once with numpy (see
:mod:`~monitor.analysis.sentiment.features`). In training a word is its index
in the vocabulary, a word bigram the pair of indices, a character n-gram its
code points packed into an int64. In scoring every word is named by a hash of
its code points (:mod:`~monitor.analysis.sentiment.tokens`), so the words of
a batch are found as arrays straight from the segmenter's tags, with no
string per word; the model's vocabulary is hashed the same way when it
loads. Only the rarely useful extras (emoticon codes, emoji, repeated
punctuation) are strings, looked up one by one. Scoring sentiment with a
trained model is then faster than snownlp's own naive Bayes on its words
(``benchmarks/bench_sentiment_model.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from monitor.analysis.sentiment.features import (
    NEGATORS,
    SCOPE_END,
    FeatureOptions,
    char_ngram_keys,
    char_ngrams,
    extra_features,
    negated,
    negation_marks,
    ngram_points,
    word_bigram_keys,
)
from monitor.analysis.sentiment.intindex import IntIndex
from monitor.analysis.sentiment.tokens import (
    Tokens,
    pair_hashes,
    tokens_from_words,
    word_hashes,
)
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
        l2: L2 penalty (the loss is the mean log-loss plus
            ``l2 / 2 * |w|^2``, on NB-scaled features).
        nb_scaling: Scale features by their NB log-count ratio (NB-LR).
        nb_alpha: Smoothing added to the counts of the ratio.
        min_count: Features seen in fewer training texts are dropped.

    """

    l2: float = 3e-4
    nb_scaling: bool = True
    nb_alpha: float = 1.0
    min_count: int = 2


#: Odd 64-bit constants that tag a key with its kind (see :func:`_tagged`).
_KEY_MIX = np.uint64(0x9E3779B97F4A7C15)
_KIND_MIX = np.uint64(0xC2B2AE3D27D4EB4F)
_BIGRAM_KIND = 1  # character n-grams are kind 1 + n
_NEGATED_KIND = 10
_WORD_KIND = 11
#: Code points U+0000..U+10FFFF: the size of the single-character table.
_CODE_POINTS = 0x110000


def _tagged(keys: IntArray, kind: int) -> IntArray:
    """Keys of all kinds in one int64 space: ``key * A + kind * B`` mod 2**64.

    A bijection per kind; two keys of different kinds meet with probability
    about 2**-64 per pair, far below anything a model of millions of
    features can notice.
    """
    tag = np.uint64((kind * int(_KIND_MIX)) % 2**64)
    mixed = keys.astype(np.uint64) * _KEY_MIX + tag
    return mixed.view(np.int64)


class LinearModel:
    """Weights of word, bigram, character n-gram and extra features, and a bias.

    Args:
        options: The features the weights are for.
        words: The vocabulary, in index order.
        word_weights: One weight per vocabulary word.
        bigrams: Keys ``index(a) << 32 | index(b)`` (sorted) and weights.
        chars: Per n-gram length, packed keys (sorted) and weights.
        extras: Weights of extra string features.
        bias: The intercept.

    """

    def __init__(
        self,
        options: FeatureOptions,
        words: Sequence[str],
        word_weights: FloatArray,
        bigrams: tuple[IntArray, FloatArray],
        chars: Mapping[int, tuple[IntArray, FloatArray]],
        extras: Mapping[str, float],
        bias: float,
        negated: tuple[IntArray, FloatArray] | None = None,
    ) -> None:
        """Keep the weights (not copied)."""
        self.options = options
        self.words = list(words)
        self.word_index = {w: i for i, w in enumerate(self.words)}
        self.word_weights = np.asarray(word_weights, dtype=np.float64)
        self.bigrams = bigrams
        self.chars = dict(chars)
        self.extras = dict(extras)
        self.bias = float(bias)
        self.negated = negated or (np.zeros(0, np.int64), np.zeros(0))
        self._build_index()

    def _build_index(self) -> None:
        """One hash index over every keyed feature, tagged by kind.

        Words are keyed by their hash (:mod:`~monitor.analysis.sentiment.tokens`),
        so scoring never makes a string per word: a bigram ``(i, j)`` of
        vocabulary indices becomes the pair of their hashes, a negated word
        its hash. Single characters get a direct table by code point.
        """
        opts = self.options
        vocabulary = word_hashes(self.words)
        first, second = self.bigrams[0] >> 32, self.bigrams[0] & 0xFFFFFFFF
        hashed = sorted((n, kw) for n, kw in self.chars.items() if n != 1)
        parts = [
            _tagged(vocabulary.view(np.int64), _WORD_KIND),
            _tagged(pair_hashes(vocabulary[first], vocabulary[second]), _BIGRAM_KIND),
            _tagged(vocabulary[self.negated[0]].view(np.int64), _NEGATED_KIND),
        ] + [_tagged(k, 1 + n) for n, (k, _) in hashed]
        weights = [
            self.word_weights if opts.words else np.zeros(len(self.words)),
            self.bigrams[1],
            self.negated[1],
        ] + [w for _, (_, w) in hashed]
        tagged = np.concatenate(parts)
        # Distinct words have distinct hashes but for a 2**-64 chance; if
        # two ever met, the first keeps the key (np.unique's first index).
        keys, first_at = np.unique(tagged, return_index=True)
        self._index = IntIndex(keys)
        unigram_keys, unigram_weights = self.chars.get(
            1, (np.zeros(0, np.int64), np.zeros(0))
        )
        self._unigram: npt.NDArray[np.int32] | None = None
        if 1 in self.chars:
            self._unigram = np.full(_CODE_POINTS, -1, dtype=np.int32)
            self._unigram[unigram_keys] = len(keys) + np.arange(len(unigram_keys))
        self._weights = np.concatenate(
            [np.concatenate(weights)[first_at], unigram_weights]
        )
        self._negators = word_hashes(sorted(NEGATORS))
        self._scope_ends = word_hashes(sorted(SCOPE_END))

    @property
    def feature_count(self) -> int:
        """How many features carry a weight."""
        return (
            len(self.words)
            + len(self.bigrams[0])
            + len(self.negated[0])
            + sum(len(k) for k, _ in self.chars.values())
            + len(self.extras)
        )

    def log_odds(
        self, texts: Sequence[str], words: Sequence[Sequence[str]]
    ) -> FloatArray:
        """Log-odds of positive per normalised text and its words (batched)."""
        return self.log_odds_tokens(texts, tokens_from_words(words))

    def log_odds_tokens(self, texts: Sequence[str], tokens: Tokens) -> FloatArray:
        """Log-odds of positive per normalised text and its words as arrays.

        Args:
            texts: The texts (for the extra string features).
            tokens: Their words (see :mod:`~monitor.analysis.sentiment.tokens`).

        """
        n = len(texts)
        out = np.full(n, self.bias)
        doc, number = self._present(tokens)
        if len(doc):
            out += np.bincount(doc, weights=self._weights[number], minlength=n)
        if self.extras:
            get = self.extras.get
            for i, text in enumerate(texts):
                out[i] += sum(
                    get(f, 0.0) for f in extra_features(text, (), self.options)
                )
        return out

    def _present(self, tokens: Tokens) -> tuple[IntArray, IntArray]:
        """(text, feature number) of each known feature of each text, once."""
        opts = self.options
        hashes, word_doc = tokens.word_hash, tokens.word_doc
        docs: list[IntArray] = []
        queries: list[IntArray] = []
        if opts.words:
            docs.append(word_doc)
            queries.append(_tagged(hashes.view(np.int64), _WORD_KIND))
        if opts.word_bigrams and len(hashes) > 1:
            same = word_doc[:-1] == word_doc[1:]
            docs.append(word_doc[:-1][same])
            pairs = pair_hashes(hashes[:-1][same], hashes[1:][same])
            queries.append(_tagged(pairs, _BIGRAM_KIND))
        if opts.negation_scope:
            marked = negation_marks(
                np.isin(hashes, self._negators),
                np.isin(hashes, self._scope_ends),
                word_doc,
                opts.negation_scope,
            )
            docs.append(word_doc[marked])
            queries.append(_tagged(hashes[marked].view(np.int64), _NEGATED_KIND))
        found_doc: list[IntArray] = []
        found_number: list[IntArray] = []
        points, point_doc = ngram_points(tokens.points, tokens.doc)
        for size in opts.char_ngrams:
            cdoc, ckeys = char_ngrams(points, point_doc, size)
            if size == 1 and self._unigram is not None:
                number = self._unigram[ckeys]
                known = number >= 0
                found_doc.append(cdoc[known])
                found_number.append(number[known].astype(np.int64))
                continue
            docs.append(cdoc)
            queries.append(_tagged(ckeys, 1 + size))
        if queries:
            hit, at = self._index.find(np.concatenate(queries))
            found_doc.append(np.concatenate(docs)[hit])
            found_number.append(at)
        if not found_doc:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        # Presence, not counts: sort (doc, number) pairs and drop repeats
        # (np.unique's hash path is several times slower on these arrays).
        width = len(self._weights)
        present = np.sort(
            np.concatenate(found_doc) * width + np.concatenate(found_number)
        )
        keep = np.ones(len(present), dtype=bool)
        keep[1:] = present[1:] != present[:-1]
        present = present[keep]
        return present // width, present % width

    def to_data(self) -> dict[str, Any]:
        """Plain data (str, float, bytes, lists, dicts) for marshal."""
        return {
            "kind": "nblr",
            "bias": self.bias,
            "words": self.words,
            "word_weights": self.word_weights.astype("<f8").tobytes(),
            "bigram_keys": self.bigrams[0].astype("<i8").tobytes(),
            "bigram_weights": self.bigrams[1].astype("<f8").tobytes(),
            "chars": {
                n: (k.astype("<i8").tobytes(), w.astype("<f8").tobytes())
                for n, (k, w) in self.chars.items()
            },
            "extras": self.extras,
            "negated_keys": self.negated[0].astype("<i8").tobytes(),
            "negated_weights": self.negated[1].astype("<f8").tobytes(),
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any], options: FeatureOptions) -> LinearModel:
        """Return the model of :meth:`to_data`'s data.

        Raises:
            ValueError: If the data is not a linear model's, or does not
                have the n-gram lengths ``options`` asks for.

        """
        try:
            words = list(data["words"])
            weights = np.frombuffer(data["word_weights"], "<f8").astype(np.float64)
            chars = {
                int(n): (
                    np.frombuffer(k, "<i8").astype(np.int64),
                    np.frombuffer(w, "<f8").astype(np.float64),
                )
                for n, (k, w) in data["chars"].items()
            }
            bigrams = (
                np.frombuffer(data["bigram_keys"], "<i8").astype(np.int64),
                np.frombuffer(data["bigram_weights"], "<f8").astype(np.float64),
            )
            extras = {str(f): float(w) for f, w in data["extras"].items()}
            negated_kind = (
                np.frombuffer(data.get("negated_keys", b""), "<i8").astype(np.int64),
                np.frombuffer(data.get("negated_weights", b""), "<f8").astype(
                    np.float64
                ),
            )
            bias = float(data["bias"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"not a linear model's data ({exc!r})") from exc
        if len(words) != len(weights) or len(bigrams[0]) != len(bigrams[1]):
            raise ValueError("weights and features differ in number")
        if any(
            n not in chars or len(chars[n][0]) != len(chars[n][1])
            for n in options.char_ngrams
        ):
            raise ValueError("character n-gram weights missing or mismatched")
        if len(negated_kind[0]) != len(negated_kind[1]):
            raise ValueError("negated word weights mismatched")
        return cls(options, words, weights, bigrams, chars, extras, bias, negated_kind)


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


def _kind_columns(
    doc: IntArray, keys: IntArray, n_docs: int, min_count: int
) -> tuple[IntArray, IntArray, IntArray]:
    """Distinct (doc, key) pairs whose key is in >= min_count docs.

    Returns:
        ``(kept keys sorted, docs of the pairs, column of each pair in kept)``.

    """
    if not len(keys):
        empty = np.zeros(0, np.int64)
        return empty, empty, empty
    pairs = np.unique(np.stack([keys, doc], axis=1), axis=0)
    uniq, inverse, counts = np.unique(
        pairs[:, 0], return_inverse=True, return_counts=True
    )
    kept = counts >= min_count
    column = np.cumsum(kept) - 1
    mask = kept[inverse]
    return uniq[kept], pairs[mask, 1], column[inverse[mask]]


def train_linear(
    texts: Sequence[str],
    words: Sequence[Sequence[str]],
    labels: Sequence[int],
    features: FeatureOptions,
    options: LinearOptions | None = None,
) -> LinearModel:
    """Fit the NB-LR model on normalised texts, their words and labels.

    Raises:
        TrainingError: If there are no texts or only one class.

    """
    options = options or LinearOptions()
    y = np.asarray(labels, dtype=np.float64)
    n = len(y)
    if n == 0 or y.min() == y.max():
        raise TrainingError("training needs both positive and negative texts")
    # Vocabulary: words in >= min_count texts (a bigram is never more common
    # than its words, so no kept bigram needs a dropped word).
    df: dict[str, int] = {}
    for ws in words:
        for w in set(ws):
            df[w] = df.get(w, 0) + 1
    vocabulary = sorted(w for w, c in df.items() if c >= options.min_count)
    model = LinearModel(
        features,
        vocabulary,
        np.zeros(len(vocabulary)),
        (np.zeros(0, np.int64), np.zeros(0)),
        {},
        {},
        0.0,
    )
    index = model.word_index.get
    lengths = np.fromiter((len(ws) for ws in words), np.int64, n)
    ids = np.fromiter(
        (index(w, -1) for ws in words for w in ws), np.int64, int(lengths.sum())
    )
    doc = np.repeat(np.arange(n, dtype=np.int64), lengths)
    blocks: list[tuple[str, int | None, IntArray, IntArray, IntArray]] = []
    width = 0
    if features.words:
        known = ids >= 0
        kept, d, col = _kind_columns(doc[known], ids[known], n, 1)
        blocks.append(("words", None, kept, d, col + width))
        width += len(vocabulary)
    if features.word_bigrams:
        bdoc, bkeys = word_bigram_keys(doc, ids)
        kept, d, col = _kind_columns(bdoc, bkeys, n, options.min_count)
        blocks.append(("bigrams", None, kept, d, col + width))
        width += len(kept)
    if features.negation_scope:
        flat = [w for ws in words for w in ws]
        marked = negated(flat, doc, features.negation_scope) & (ids >= 0)
        kept, d, col = _kind_columns(doc[marked], ids[marked], n, options.min_count)
        blocks.append(("negated", None, kept, d, col + width))
        width += len(kept)
    for size, (cdoc, ckeys) in char_ngram_keys(words, features.char_ngrams).items():
        kept, d, col = _kind_columns(cdoc, ckeys, n, options.min_count)
        blocks.append(("chars", size, kept, d, col + width))
        width += len(kept)
    extra_names: list[str] = []
    if features.has_extras:
        counts: dict[str, int] = {}
        per_doc = [
            extra_features(t, ws, features) for t, ws in zip(texts, words, strict=True)
        ]
        for fs in per_doc:
            for f in fs:
                counts[f] = counts.get(f, 0) + 1
        extra_names = sorted(f for f, c in counts.items() if c >= options.min_count)
        extra_index = {f: i for i, f in enumerate(extra_names)}
        pairs = [
            (i, extra_index[f])
            for i, fs in enumerate(per_doc)
            for f in fs
            if f in extra_index
        ]
        d = np.asarray([p[0] for p in pairs], np.int64)
        col = np.asarray([p[1] for p in pairs], np.int64)
        blocks.append(("extras", None, np.zeros(0, np.int64), d, col + width))
        width += len(extra_names)
    rows = np.concatenate([b[3] for b in blocks]) if blocks else np.zeros(0, np.int64)
    cols = np.concatenate([b[4] for b in blocks]) if blocks else np.zeros(0, np.int64)
    matrix = _Csr(rows, cols, n, width)
    if options.nb_scaling:
        p = np.bincount(cols, weights=y[rows], minlength=width) + options.nb_alpha
        q = np.bincount(cols, weights=1 - y[rows], minlength=width) + options.nb_alpha
        ratio = np.log(p / p.sum()) - np.log(q / q.sum())
    else:
        ratio = np.ones(width)
    coef = _fit_logistic(matrix, ratio[cols], y, options.l2)
    weights = coef[:-1] * ratio
    start = 0
    word_weights = np.zeros(len(vocabulary))
    bigrams = (np.zeros(0, np.int64), np.zeros(0))
    chars: dict[int, tuple[IntArray, FloatArray]] = {}
    negated_kind = (np.zeros(0, np.int64), np.zeros(0))
    extras: dict[str, float] = {}
    for name, ngram, kept, _, _ in blocks:
        count = (
            len(vocabulary)
            if name == "words"
            else len(extra_names)
            if name == "extras"
            else len(kept)
        )
        part = weights[start : start + count]
        start += count
        if name == "words":
            word_weights = part.copy()
        elif name == "bigrams":
            bigrams = (kept, part.copy())
        elif name == "negated":
            negated_kind = (kept, part.copy())
        elif name == "chars":
            assert ngram is not None
            chars[ngram] = (kept, part.copy())
        else:
            extras = {
                f: float(w) for f, w in zip(extra_names, part.tolist(), strict=True)
            }
    return LinearModel(
        features,
        vocabulary,
        word_weights,
        bigrams,
        chars,
        extras,
        float(coef[-1]),
        negated_kind,
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


def sigmoid_many(z: FloatArray) -> FloatArray:
    """Elementwise ``1 / (1 + exp(-z))``."""
    out: FloatArray = 0.5 * (1 + np.tanh(0.5 * z))
    return out
