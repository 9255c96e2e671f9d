"""Training a sentiment model from labelled, segmented texts (pure, no I/O).

Two kinds, both on snownlp's words:

* ``naive_bayes``: snownlp's own classifier retrained
  (:func:`~monitor.analysis.sentiment.naive_bayes.train_naive_bayes`);
  saved as snownlp saves it, snownlp itself can load it.
* ``nblr`` (the default): NB-weighted logistic regression on words, word
  bigrams and other features (:mod:`~monitor.analysis.sentiment.linear`,
  :mod:`~monitor.analysis.sentiment.features`).

Either way a share of the training texts (``holdout``) is kept out of
training and fits the calibration
(:mod:`~monitor.analysis.sentiment.calibration`), so that the stored model
says "0.8" of texts that are positive about 80 % of the time.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from monitor.analysis.sentiment.calibration import (
    ISOTONIC,
    Calibration,
    fit_calibration,
)
from monitor.analysis.sentiment.features import FeatureOptions
from monitor.analysis.sentiment.linear import (
    LinearModel,
    LinearOptions,
    TrainingError,
    train_linear,
)
from monitor.analysis.sentiment.naive_bayes import train_naive_bayes
from monitor.analysis.sentiment.snowfast import FastSnowNLP, NaiveBayes
from monitor.analysis.sentiment.tokens import batch_tokens

FloatArray = npt.NDArray[np.float64]

NAIVE_BAYES = "naive_bayes"
NBLR = "nblr"
KINDS = (NAIVE_BAYES, NBLR)

#: The default features, chosen by cross-validation on the dev corpora
#: (benchmarks/cv_sentiment.py).
DEFAULT_FEATURES = FeatureOptions(words=True, word_bigrams=True, char_ngrams=(1, 2, 3))
DEFAULT_LINEAR = LinearOptions()


@dataclass(frozen=True)
class TrainOptions:
    """What to train.

    Attributes:
        kind: ``nblr`` or ``naive_bayes``.
        features: The linear model's features (ignored by naive Bayes).
        linear: The linear model's fitting options.
        calibration: ``platt``, ``isotonic`` or ``identity``.
        holdout: Share of the texts kept out of training to fit the
            calibration and report validation scores (0 < holdout < 1).
        seed: Seed of the holdout split.

    """

    kind: str = NBLR
    features: FeatureOptions = field(default=DEFAULT_FEATURES)
    linear: LinearOptions = field(default=DEFAULT_LINEAR)
    calibration: str = ISOTONIC
    holdout: float = 0.1
    seed: int = 20240521

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise TrainingError(f"unknown model kind {self.kind!r}; known: {KINDS}")
        if not 0.0 < self.holdout < 1.0:
            raise TrainingError(f"holdout must be between 0 and 1, got {self.holdout}")

    def to_dict(self) -> dict[str, Any]:
        """JSON data for the metadata."""
        return {
            "kind": self.kind,
            "features": self.features.to_dict() if self.kind == NBLR else None,
            "linear": vars(self.linear).copy() if self.kind == NBLR else None,
            "calibration": self.calibration,
            "holdout": self.holdout,
            "seed": self.seed,
        }


class WordClassifier(Protocol):
    """What the sentiment model asks of a trained classifier (batched)."""

    def scores(
        self, texts: Sequence[str], words: Sequence[Sequence[str]]
    ) -> tuple[FloatArray, list[float]]:
        """Raw log-odds and uncalibrated P(positive) per text and its words."""
        ...

    def scores_of_texts(
        self, texts: Sequence[str], scorer: FastSnowNLP
    ) -> tuple[FloatArray, list[float]]:
        """:meth:`scores` of texts not yet segmented (``scorer`` segments them)."""
        ...


class LinearClassifier:
    """A :class:`LinearModel` (it knows its feature options)."""

    def __init__(self, model: LinearModel) -> None:
        """Keep the model."""
        self.model = model
        self.features = model.options

    def scores(
        self, texts: Sequence[str], words: Sequence[Sequence[str]]
    ) -> tuple[FloatArray, list[float]]:
        """Bias plus the weights of each text's features, and its sigmoid."""
        z = self.model.log_odds(texts, words)
        return z, Calibration().many(z)

    def scores_of_texts(
        self, texts: Sequence[str], scorer: FastSnowNLP
    ) -> tuple[FloatArray, list[float]]:
        """:meth:`scores`, the words found as arrays (no string per word)."""
        tokens = batch_tokens(scorer.tagger, texts)
        if tokens is None:  # a text holds U+0000
            return self.scores(texts, scorer.segment_many(texts))
        z = self.model.log_odds_tokens(texts, tokens)
        return z, Calibration().many(z)


class NaiveBayesClassifier:
    """snownlp's classifier data, scored as ``Sentiment.classify`` scores."""

    def __init__(self, classifier: dict[str, Any], stopwords: frozenset[str]) -> None:
        """Keep the classifier and the stop words it drops."""
        self.data = classifier
        self._bayes = NaiveBayes(classifier)
        self._stop = stopwords

    def scores(
        self, texts: Sequence[str], words: Sequence[Sequence[str]]
    ) -> tuple[FloatArray, list[float]]:
        """Naive Bayes log-odds, and P(positive) as snownlp says it."""
        stop = self._stop
        kept = [[w for w in ws if w not in stop] for ws in words]
        z = np.array([self._bayes.log_odds(ws) for ws in kept], dtype=np.float64)
        return z, [self._bayes.positive_probability(ws) for ws in kept]

    def scores_of_texts(
        self, texts: Sequence[str], scorer: FastSnowNLP
    ) -> tuple[FloatArray, list[float]]:
        """:meth:`scores` of the texts as ``scorer`` segments them."""
        return self.scores(texts, scorer.segment_many(texts))


@dataclass
class TrainedModel:
    """A trained classifier and its calibration.

    Attributes:
        kind: ``nblr`` or ``naive_bayes``.
        classifier: The classifier.
        calibration: Raw to calibrated probability.

    """

    kind: str
    classifier: LinearClassifier | NaiveBayesClassifier
    calibration: Calibration

    def log_odds(
        self, texts: Sequence[str], words: Sequence[Sequence[str]]
    ) -> list[float]:
        """Raw log-odds of positive per normalised text and its words."""
        result: list[float] = self.classifier.scores(texts, words)[0].tolist()
        return result

    def probabilities(
        self, texts: Sequence[str], words: Sequence[Sequence[str]]
    ) -> list[float]:
        """Calibrated P(positive) per normalised text and its words."""
        return self.calibration.many(self.classifier.scores(texts, words)[0])


def split_holdout(
    labels: Sequence[int], share: float, seed: int
) -> tuple[list[int], list[int]]:
    """Return the indices to train on and to hold out, stratified by label.

    Returns:
        ``(train, holdout)``, each sorted; the holdout has ``round(share * n)``
        texts of each class (at least 1 where the class has 2 or more).

    """
    rng = random.Random(seed)
    train: list[int] = []
    held: list[int] = []
    for label in sorted(set(labels)):
        members = [i for i, y in enumerate(labels) if y == label]
        rng.shuffle(members)
        k = round(share * len(members))
        if len(members) >= 2:
            k = min(max(k, 1), len(members) - 1)
        else:
            k = 0
        held.extend(members[:k])
        train.extend(members[k:])
    return sorted(train), sorted(held)


def fit_model(
    texts: Sequence[str],
    words: Sequence[Sequence[str]],
    labels: Sequence[int],
    holdout_texts: Sequence[str],
    holdout_words: Sequence[Sequence[str]],
    holdout_labels: Sequence[int],
    options: TrainOptions,
    stopwords: frozenset[str],
) -> TrainedModel:
    """Train on the first texts, calibrate on the held-out ones.

    Args:
        texts: Normalised training texts.
        words: Their words (snownlp's segmentation).
        labels: 1 positive, 0 negative.
        holdout_texts: Normalised texts kept out of training.
        holdout_words: Their words.
        holdout_labels: Their labels (both classes needed for calibration).
        options: What to train.
        stopwords: snownlp's stop words (naive Bayes drops them).

    Raises:
        TrainingError: If a class is missing from the training or held-out texts.

    """
    if set(holdout_labels) != {0, 1}:
        raise TrainingError("the held-out texts need both classes to calibrate")
    classifier: LinearClassifier | NaiveBayesClassifier
    if options.kind == NAIVE_BAYES:
        classifier = NaiveBayesClassifier(
            train_naive_bayes(words, labels, stopwords), stopwords
        )
    else:
        classifier = LinearClassifier(
            train_linear(texts, words, labels, options.features, options.linear)
        )
    uncalibrated = TrainedModel(options.kind, classifier, Calibration())
    raw = uncalibrated.log_odds(holdout_texts, holdout_words)
    return TrainedModel(
        options.kind,
        classifier,
        fit_calibration(raw, holdout_labels, options.calibration),
    )
