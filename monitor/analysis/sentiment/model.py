"""Sentiment and keywords with snownlp's models, batched and bit-identical.

Scoring goes through :class:`monitor.analysis.sentiment.snowfast.FastSnowNLP`, which
returns exactly ``SnowNLP(text).sentiments`` and ``SnowNLP(text).keywords``
from one segmentation per text, 100-200x faster on batches. Model files are
read by :mod:`monitor.config.models` (``load_sentiment_model(path)``), never
here.
"""

from __future__ import annotations

import threading
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from monitor.analysis.sentiment.calibration import Calibration
from monitor.analysis.sentiment.labels import (  # noqa: F401 - re-exported
    NEGATIVE,
    NEUTRAL,
    POSITIVE,
    InvalidThresholdsError,
    LabelThresholds,
)
from monitor.analysis.sentiment.snowfast import FastSnowNLP, default_scorer
from monitor.analysis.sentiment.trainer import FloatArray, WordClassifier

#: Keywords longer than this many characters are dropped, not truncated: a
#: keyword becomes a count series, an Elasticsearch term and a key of the
#: count state, and a 40,000-character "word" (a run of Latin letters) would
#: blow all three. Real keywords are a few characters long.
MAX_KEYWORD_CHARS = 32

#: The probability given to a text that is empty once normalised. snownlp
#: itself raises ZeroDivisionError on ``""``; an empty text carries no
#: opinion, so it is neutral by definition.
EMPTY_TEXT_PROBABILITY = 0.5


@dataclass(frozen=True)
class TextScore:
    """Sentiment and keywords of one normalised text.

    Attributes:
        positive_probability: 0.0-1.0, the probability of positive: snownlp's
            own for snownlp's model, the calibrated one for a trained model.
        keywords: Most important first; single characters, punctuation and
            tokens over :data:`MAX_KEYWORD_CHARS` characters dropped, Latin
            lower-cased.
        raw_probability: The model's uncalibrated probability (None: the
            same as ``positive_probability``).

    """

    positive_probability: float
    keywords: list[str]
    raw_probability: float | None = None

    @property
    def raw(self) -> float:
        """The model's uncalibrated probability (``positive_probability`` if unset)."""
        if self.raw_probability is None:
            return self.positive_probability
        return self.raw_probability


#: The id of snownlp's own model, as scored posts record it.
DEFAULT_MODEL_ID = "snownlp"


class SentimentModel:
    """snownlp's naive Bayes sentiment model, the default or one you trained.

    With no ``scorer`` it is snownlp's own (the shared
    :func:`~monitor.analysis.sentiment.snowfast.default_scorer`) and the
    probability equals ``SnowNLP(text).sentiments``. A model file, say the
    one ``MONITOR_SENTIMENT_MODEL`` names, is read by
    :func:`monitor.config.models.load_sentiment_model`, which builds this.

    A trained model (``monitor train sentiment``) adds a ``classifier`` on
    the scorer's words and a ``calibration`` of its log-odds: the
    probability is then the calibrated one, and the raw one is kept beside
    it (:meth:`probabilities`, :attr:`TextScore.raw_probability`).

    Args:
        scorer: The scorer of the models to use; None for snownlp's own.
        classifier: A trained classifier on the scorer's words; None to use
            the scorer's own naive Bayes, uncalibrated.
        calibration: Maps the classifier's log-odds to the probability
            (only with ``classifier``).
        model_id: Names the model in scored posts (``snownlp`` for the default).
        metadata: What the model file says of itself (training data, options,
            validation scores); empty for snownlp's own.

    Raises:
        TypeError: If ``scorer`` is not a :class:`FastSnowNLP` (a path, say:
            load it with ``monitor.config.models.load_sentiment_model``).

    """

    def __init__(
        self,
        scorer: FastSnowNLP | None = None,
        *,
        classifier: WordClassifier | None = None,
        calibration: Calibration | None = None,
        model_id: str = DEFAULT_MODEL_ID,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        """Use ``scorer``, or the shared scorer of snownlp's own models."""
        if scorer is not None and not isinstance(scorer, FastSnowNLP):
            raise TypeError(
                f"SentimentModel takes a FastSnowNLP, not {type(scorer).__name__}; "
                "read a model file with monitor.config.models.load_sentiment_model"
            )
        # The default models are read-only and large: one copy per process.
        self._fast = default_scorer() if scorer is None else scorer
        self.classifier = classifier
        self.calibration = calibration or Calibration()
        self.model_id = model_id
        self.metadata: Mapping[str, Any] = metadata or {}

    def describe(self) -> str:
        """Return one line naming the model and what its metadata says of it."""
        if not self.metadata:
            if self.model_id == DEFAULT_MODEL_ID:
                return "snownlp (snownlp's own model, uncalibrated)"
            return f"{self.model_id} (a snownlp model file, uncalibrated)"
        meta = self.metadata
        validation = meta.get("validation") or {}
        inputs = meta.get("inputs") or []
        parts = [
            str(meta.get("kind")),
            f"trained {meta.get('created_at')}",
            f"on {meta.get('training_texts')} texts from {len(inputs)} file(s)",
            f"calibration {self.calibration.method}",
        ]
        if "accuracy" in validation and "ece" in validation:
            parts.append(
                f"holdout accuracy {validation['accuracy']:.3f}, "
                f"calibration error {validation['ece']:.3f}"
            )
        return f"{self.model_id} ({', '.join(parts)})"

    def _trained(
        self, texts: Sequence[str], words: Sequence[Sequence[str]]
    ) -> list[tuple[float, float]]:
        """(calibrated, raw) of texts and their words, with the trained classifier."""
        assert self.classifier is not None
        return self._calibrated(*self.classifier.scores(texts, words))

    def _calibrated(
        self, log_odds: FloatArray, raw: Sequence[float]
    ) -> list[tuple[float, float]]:
        """(calibrated, raw) probability pairs of a classifier's log-odds."""
        return list(zip(self.calibration.many(log_odds), raw, strict=True))

    def probabilities(self, texts: Sequence[str]) -> list[tuple[float, float]]:
        """``(probability, raw probability)`` per normalised text.

        The two are equal for a model without a trained classifier; ``""``
        yields :data:`EMPTY_TEXT_PROBABILITY` twice.
        """
        scores = [(EMPTY_TEXT_PROBABILITY, EMPTY_TEXT_PROBABILITY)] * len(texts)
        present = [i for i, text in enumerate(texts) if text]
        chosen = [texts[i] for i in present]
        if self.classifier is None:
            found = [(p, p) for p in self._fast.sentiments(chosen)]
        else:
            found = self._calibrated(
                *self.classifier.scores_of_texts(chosen, self._fast)
            )
        for i, pair in zip(present, found, strict=True):
            scores[i] = pair
        return scores

    def positive_probability(self, text: str) -> float:
        """Return the probability (0.0-1.0) that a normalised text is positive.

        ``""`` yields :data:`EMPTY_TEXT_PROBABILITY` instead of snownlp's
        ZeroDivisionError.
        """
        return self.positive_probabilities([text])[0]

    def positive_probabilities(self, texts: Sequence[str]) -> list[float]:
        """Batched :meth:`positive_probability` (much faster per text)."""
        return [p for p, _ in self.probabilities(texts)]

    def score_many(self, texts: Sequence[str], keyword_limit: int) -> list[TextScore]:
        """Sentiment and up to ``keyword_limit`` keywords per normalised text.

        One segmentation per text serves both; an empty text scores
        :data:`EMPTY_TEXT_PROBABILITY` with no keywords.
        """
        results = [
            TextScore(EMPTY_TEXT_PROBABILITY, [], EMPTY_TEXT_PROBABILITY) for _ in texts
        ]
        present = [i for i, text in enumerate(texts) if text]
        # Ask snownlp's TextRank for twice the limit: some are filtered out.
        analyses = self._fast.analyse_many(
            [texts[i] for i in present],
            keyword_limit=max(keyword_limit, 0) * 2,
            classify=self.classifier is None,
        )
        if self.classifier is None:
            pairs = [(a.positive_probability, a.positive_probability) for a in analyses]
        else:
            pairs = self._trained(
                [texts[i] for i in present], [a.words for a in analyses]
            )
        for i, analysis, (p, raw) in zip(present, analyses, pairs, strict=True):
            results[i] = TextScore(
                p, filter_keywords(analysis.keywords, keyword_limit), raw
            )
        return results


_default: SentimentModel | None = None
_default_lock = threading.Lock()


def default_model() -> SentimentModel:
    """Return the shared default :class:`SentimentModel`, loading it once."""
    global _default
    with _default_lock:
        if _default is None:
            _default = SentimentModel()
        return _default


def extract_keywords(text: str, limit: int) -> list[str]:
    """Return up to ``limit`` keywords of a normalised text, most important first.

    snownlp's TextRank over its segmentation and stop-word list, then
    :func:`filter_keywords`. Uses the shared default model.
    """
    if not text or limit <= 0:
        return []
    return default_model().score_many([text], limit)[0].keywords


def filter_keywords(candidates: Sequence[str], limit: int) -> list[str]:
    """Keep the keywords of use for counting, at most ``limit`` of them.

    Drops single characters, tokens longer than :data:`MAX_KEYWORD_CHARS`
    (dropped rather than cut: a cut token is not a word of the text) and
    tokens of punctuation or symbols only, lower-cases Latin letters and
    drops repeats.
    """
    keywords: list[str] = []
    if limit <= 0:
        return keywords
    forms = _KEYWORD_FORMS
    for word in candidates:
        form = forms.get(word)
        if form is None:
            form = _keyword_form(word)
            if len(word) <= _KEYWORD_FORM_CHARS:
                if len(forms) >= _KEYWORD_FORM_CACHE:
                    forms.clear()
                forms[word] = form
        if not form:
            continue
        if form not in keywords:
            keywords.append(form)
        if len(keywords) == limit:
            break
    return keywords


# Candidate -> _keyword_form(candidate), for candidates of at most
# _KEYWORD_FORM_CHARS characters: the same words come up post after post.
# Bounded: it starts over past _KEYWORD_FORM_CACHE entries.
_KEYWORD_FORMS: dict[str, str] = {}
_KEYWORD_FORM_CACHE = 1 << 16
_KEYWORD_FORM_CHARS = 2 * MAX_KEYWORD_CHARS


def _keyword_form(word: str) -> str:
    """Return the keyword ``word`` counts as, or ``""`` if it is not one."""
    word = word.strip().lower()
    if not 2 <= len(word) <= MAX_KEYWORD_CHARS or not any(
        _is_word_char(char) for char in word
    ):
        return ""
    return word


def _is_word_char(char: str) -> bool:
    return unicodedata.category(char)[0] in ("L", "N")
