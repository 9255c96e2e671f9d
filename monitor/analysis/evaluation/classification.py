"""Quality figures for a binary sentiment classifier (pure, no I/O)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from monitor.analysis.sentiment.labels import (
    NEGATIVE,
    NEUTRAL,
    POSITIVE,
    LabelThresholds,
)


def roc_auc(labels: Sequence[int], scores: Sequence[float]) -> float:
    """Area under the ROC curve, with ties counted as half (Mann-Whitney U).

    Args:
        labels: 1 for positive, 0 for negative.
        scores: Higher means more positive.

    Returns:
        AUC in 0.0-1.0; ``nan`` when one class is absent.

    """
    if len(labels) != len(scores):
        raise ValueError("labels and scores differ in length")
    positives = sum(1 for label in labels if label == 1)
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    rank_sum = 0.0
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        mean_rank = (i + j) / 2 + 1  # ranks are 1-based; ties share the mean
        rank_sum += mean_rank * sum(1 for k in order[i : j + 1] if labels[k] == 1)
        i = j + 1
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def binary_report(
    labels: Sequence[int],
    scores: Sequence[float],
    *,
    threshold: float = 0.5,
    thresholds: LabelThresholds | None = None,
) -> dict[str, Any]:
    """Accuracy, AUC, per-class precision/recall/F1 and the label distribution.

    A score at or above ``threshold`` predicts positive (1).

    Args:
        labels: 1 for positive, 0 for negative.
        scores: Positive probabilities, 0.0-1.0.
        threshold: Cut point of the binary prediction.
        thresholds: Three-way label thresholds; the distribution of labels
            they give is reported per true class.

    Returns:
        A JSON-able dict with ``n``, ``accuracy``, ``roc_auc``, ``classes``
        (``negative``/``positive`` each with precision, recall, f1, support)
        and ``label_distribution``.

    """
    if len(labels) != len(scores):
        raise ValueError("labels and scores differ in length")
    predicted = [1 if score >= threshold else 0 for score in scores]
    correct = sum(
        1 for truth, guess in zip(labels, predicted, strict=True) if truth == guess
    )
    classes = {}
    for name, value in (("negative", 0), ("positive", 1)):
        tp = sum(
            1
            for t, p in zip(labels, predicted, strict=True)
            if t == value and p == value
        )
        fp = sum(
            1
            for t, p in zip(labels, predicted, strict=True)
            if t != value and p == value
        )
        fn = sum(
            1
            for t, p in zip(labels, predicted, strict=True)
            if t == value and p != value
        )
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = (
            2 * precision * recall / (precision + recall) if precision + recall else 0.0
        )
        classes[name] = {
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "support": tp + fn,
        }
    cuts = thresholds or LabelThresholds()
    distribution: dict[str, dict[str, int]] = {}
    for name, value in (("negative", 0), ("positive", 1)):
        counts = Counter(
            cuts.label(s) for t, s in zip(labels, scores, strict=True) if t == value
        )
        distribution[f"true_{name}"] = {
            label: counts.get(label, 0) for label in (NEGATIVE, NEUTRAL, POSITIVE)
        }
    return {
        "n": len(labels),
        "accuracy": correct / len(labels) if labels else float("nan"),
        "roc_auc": roc_auc(labels, scores),
        "classes": classes,
        "label_distribution": distribution,
    }
