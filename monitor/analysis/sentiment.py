"""Sentiment scoring with snownlp, and the three-way label."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from pathlib import Path

from snownlp import SnowNLP
from snownlp import sentiment as snownlp_sentiment

from monitor.analysis.labels import (  # noqa: F401 - re-exported
    NEGATIVE,
    NEUTRAL,
    POSITIVE,
    InvalidThresholdsError,
    LabelThresholds,
)

#: The probability given to a text that is empty once normalised. snownlp
#: itself raises ZeroDivisionError on ``""``; an empty text carries no
#: opinion, so it is neutral by definition.
EMPTY_TEXT_PROBABILITY = 0.5


@dataclass(frozen=True)
class TextAnalysis:
    """What the score stage learns from one normalised text.

    Attributes:
        positive_probability: 0.0-1.0, snownlp's probability of positive.
        keywords: Most important first; punctuation and single characters
            dropped.
        topics: Watched topics matched, sorted.

    """

    positive_probability: float
    keywords: list[str]
    topics: list[str]


class SentimentModel:
    """snownlp's naive Bayes sentiment model, the default or one trained by you.

    With no ``model_path`` the score equals ``SnowNLP(text).sentiments``.
    A path names a model saved by ``snownlp.sentiment.Sentiment().save()``.
    """

    def __init__(self, model_path: Path | None = None) -> None:
        if model_path is None:
            self._classifier = snownlp_sentiment.classifier
        else:
            self._classifier = snownlp_sentiment.Sentiment()
            self._classifier.load(str(model_path))

    def positive_probability(self, text: str) -> float:
        """Return the probability (0.0-1.0) that a normalised text is positive.

        ``""`` yields :data:`EMPTY_TEXT_PROBABILITY` instead of snownlp's
        ZeroDivisionError.
        """
        if not text:
            return EMPTY_TEXT_PROBABILITY
        return float(self._classifier.classify(text))


def extract_keywords(text: str, limit: int) -> list[str]:
    """Return up to ``limit`` keywords of a normalised text, most important first.

    Uses snownlp's TextRank over its segmentation and stop-word list, then
    drops what is no use for counting: single characters and tokens made of
    punctuation or symbols only. Latin letters are lower-cased.
    """
    if not text or limit <= 0:
        return []
    candidates = SnowNLP(text).keywords(limit * 2)
    keywords: list[str] = []
    for word in candidates:
        word = word.strip().lower()
        if len(word) < 2 or not any(_is_word_char(char) for char in word):
            continue
        if word not in keywords:
            keywords.append(word)
        if len(keywords) == limit:
            break
    return keywords


def _is_word_char(char: str) -> bool:
    return unicodedata.category(char)[0] in ("L", "N")
