"""Training snownlp's naive Bayes sentiment classifier (pure, no I/O).

:func:`train_naive_bayes` builds exactly what
``snownlp.sentiment.Sentiment().train(neg_docs, pos_docs)`` builds from the
same words (``snownlp.classification.bayes.Bayes`` with ``AddOneProb``
counts), as the plain data ``Bayes.save`` marshals. Saved as snownlp saves
it, snownlp's ``Sentiment().load`` reads it and classifies bit-identically.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from monitor.analysis.sentiment.linear import TrainingError


def train_naive_bayes(
    docs: Sequence[Iterable[str]], labels: Sequence[int], stopwords: frozenset[str]
) -> dict[str, Any]:
    """Snownlp's classifier data trained on segmented texts.

    Args:
        docs: Each text's words (``FastSnowNLP.segment``), stop words included:
            they are dropped here, as ``Sentiment.handle`` drops them.
        labels: 1 positive, 0 negative, one per text.
        stopwords: snownlp's stop words.

    Returns:
        ``{"total": float, "d": {"neg": {...}, "pos": {...}}}``, the dict
        ``Bayes.save`` marshals (negatives first, as ``Sentiment.train``
        adds them first).

    Raises:
        TrainingError: If a class has no texts, or lengths differ.

    """
    if len(docs) != len(labels):
        raise TrainingError(f"{len(docs)} texts but {len(labels)} labels")
    if set(labels) != {0, 1}:
        raise TrainingError("training needs both positive and negative texts")
    classes: dict[str, dict[str, Any]] = {}
    # Sentiment.train adds every negative text, then every positive one.
    for wanted, name in ((0, "neg"), (1, "pos")):
        counts: dict[str, int] = {}
        total = 0.0
        for words, label in zip(docs, labels, strict=True):
            if label != wanted:
                continue
            for word in words:
                if word in stopwords:
                    continue
                # AddOneProb.add(word, 1)
                total += 1
                if word not in counts:
                    counts[word] = 1
                    total += 1
                counts[word] += 1
        classes[name] = {"d": counts, "total": total, "none": 1}
    return {
        "total": sum(c["total"] for c in classes.values()),
        "d": classes,
    }
