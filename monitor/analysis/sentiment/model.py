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
from collections.abc import Sequence
from dataclasses import dataclass

from monitor.analysis.sentiment.labels import (  # noqa: F401 - re-exported
    NEGATIVE,
    NEUTRAL,
    POSITIVE,
    InvalidThresholdsError,
    LabelThresholds,
)
from monitor.analysis.sentiment.snowfast import FastSnowNLP, default_scorer

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
        positive_probability: 0.0-1.0, snownlp's probability of positive.
        keywords: Most important first; single characters, punctuation and
            tokens over :data:`MAX_KEYWORD_CHARS` characters dropped, Latin
            lower-cased.

    """

    positive_probability: float
    keywords: list[str]


class SentimentModel:
    """snownlp's naive Bayes sentiment model, the default or one you trained.

    With no ``scorer`` it is snownlp's own (the shared
    :func:`~monitor.analysis.sentiment.snowfast.default_scorer`) and the
    probability equals ``SnowNLP(text).sentiments``. A model file, say the
    one ``MONITOR_SENTIMENT_MODEL`` names, is read by
    :func:`monitor.config.models.load_sentiment_model`, which builds this.

    Args:
        scorer: The scorer of the models to use; None for snownlp's own.

    Raises:
        TypeError: If ``scorer`` is not a :class:`FastSnowNLP` (a path, say:
            load it with ``monitor.config.models.load_sentiment_model``).

    """

    def __init__(self, scorer: FastSnowNLP | None = None) -> None:
        """Use ``scorer``, or the shared scorer of snownlp's own models."""
        if scorer is not None and not isinstance(scorer, FastSnowNLP):
            raise TypeError(
                f"SentimentModel takes a FastSnowNLP, not {type(scorer).__name__}; "
                "read a model file with monitor.config.models.load_sentiment_model"
            )
        # The default models are read-only and large: one copy per process.
        self._fast = default_scorer() if scorer is None else scorer

    def positive_probability(self, text: str) -> float:
        """Return the probability (0.0-1.0) that a normalised text is positive.

        ``""`` yields :data:`EMPTY_TEXT_PROBABILITY` instead of snownlp's
        ZeroDivisionError.
        """
        return self.positive_probabilities([text])[0]

    def positive_probabilities(self, texts: Sequence[str]) -> list[float]:
        """Batched :meth:`positive_probability` (much faster per text)."""
        scores = [EMPTY_TEXT_PROBABILITY] * len(texts)
        present = [i for i, text in enumerate(texts) if text]
        for i, score in zip(
            present, self._fast.sentiments([texts[i] for i in present]), strict=True
        ):
            scores[i] = score
        return scores

    def score_many(self, texts: Sequence[str], keyword_limit: int) -> list[TextScore]:
        """Sentiment and up to ``keyword_limit`` keywords per normalised text.

        One segmentation per text serves both; an empty text scores
        :data:`EMPTY_TEXT_PROBABILITY` with no keywords.
        """
        results = [TextScore(EMPTY_TEXT_PROBABILITY, []) for _ in texts]
        present = [i for i, text in enumerate(texts) if text]
        # Ask snownlp's TextRank for twice the limit: some are filtered out.
        analyses = self._fast.analyse_many(
            [texts[i] for i in present], keyword_limit=max(keyword_limit, 0) * 2
        )
        for i, analysis in zip(present, analyses, strict=True):
            results[i] = TextScore(
                analysis.positive_probability,
                filter_keywords(analysis.keywords, keyword_limit),
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
    for word in candidates:
        word = word.strip().lower()
        if not 2 <= len(word) <= MAX_KEYWORD_CHARS or not any(
            _is_word_char(char) for char in word
        ):
            continue
        if word not in keywords:
            keywords.append(word)
        if len(keywords) == limit:
            break
    return keywords


def _is_word_char(char: str) -> bool:
    return unicodedata.category(char)[0] in ("L", "N")
