"""ROC AUC and the binary classification report."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.analysis.evaluation.classification import binary_report, roc_auc
from monitor.analysis.sentiment.model import LabelThresholds


def _pairwise_auc(labels: list[int], scores: list[float]) -> float:
    """P(score of a positive > score of a negative), ties counting half."""
    positives = [s for label, s in zip(labels, scores, strict=True) if label == 1]
    negatives = [s for label, s in zip(labels, scores, strict=True) if label != 1]
    wins = 0.0
    for p in positives:
        for n in negatives:
            wins += 1.0 if p > n else 0.5 if p == n else 0.0
    return wins / (len(positives) * len(negatives))


# Few distinct score values so that ties are common.
_scores = st.one_of(
    st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.5, 0.75, 1.0]),
    st.floats(min_value=0.0, max_value=1.0),
)


@given(
    st.lists(
        st.tuples(st.sampled_from([0, 1]), _scores), min_size=2, max_size=60
    ).filter(lambda pairs: len({label for label, _ in pairs}) == 2)
)
def test_roc_auc_equals_pairwise_computation(pairs: list[tuple[int, float]]) -> None:
    labels = [label for label, _ in pairs]
    scores = [score for _, score in pairs]
    assert roc_auc(labels, scores) == pytest.approx(
        _pairwise_auc(labels, scores), abs=1e-12
    )


@pytest.mark.parametrize(
    ("labels", "scores", "expected"),
    [
        pytest.param([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9], 1.0, id="perfect"),
        pytest.param([1, 1, 0, 0], [0.1, 0.2, 0.8, 0.9], 0.0, id="inverted"),
        pytest.param([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5], 0.5, id="constant"),
        pytest.param([0, 1, 1], [0.3, 0.3, 0.9], 0.75, id="one-tie"),
        pytest.param([0, 0, 1], [0.2, 0.9, 0.5], 0.5, id="half"),
        pytest.param([1, 0, 1, 0, 1], [0.9, 0.1, 0.4, 0.4, 0.6], 5.5 / 6, id="mixed"),
    ],
)
def test_roc_auc_known_values(
    labels: list[int], scores: list[float], expected: float
) -> None:
    assert roc_auc(labels, scores) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("labels", "scores"),
    [([1, 1], [0.2, 0.8]), ([0, 0, 0], [0.1, 0.5, 0.9]), ([], [])],
    ids=["only-positive", "only-negative", "empty"],
)
def test_roc_auc_is_nan_for_one_class(labels: list[int], scores: list[float]) -> None:
    assert math.isnan(roc_auc(labels, scores))


def test_roc_auc_refuses_lengths_that_differ() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        roc_auc([0, 1], [0.5])


def test_binary_report_on_hand_built_case() -> None:
    # truth:     1    1    1    1    0    0    0    0    0    0
    # score:    .9   .8   .6   .2   .7   .55  .4   .35  .1   .05
    # predict:   1    1    1    0    1    1    0    0    0    0   (threshold 0.5)
    # positive: TP=3 FP=2 FN=1 -> P=3/5 R=3/4 F1=2/3
    # negative: TP=4 FP=1 FN=2 -> P=4/5 R=4/6 F1=8/11
    labels = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    scores = [0.9, 0.8, 0.6, 0.2, 0.7, 0.55, 0.4, 0.35, 0.1, 0.05]
    report = binary_report(labels, scores)
    assert report["n"] == 10
    assert report["accuracy"] == pytest.approx(0.7)
    # 24 positive-negative pairs: .9 and .8 beat all 6 negatives, .6 beats 5
    # (not .7), .2 beats 2 (.1 and .05) -> 19/24.
    assert report["roc_auc"] == pytest.approx(19 / 24)
    assert report["roc_auc"] == pytest.approx(_pairwise_auc(labels, scores))
    positive = report["classes"]["positive"]
    assert positive["precision"] == pytest.approx(3 / 5)
    assert positive["recall"] == pytest.approx(3 / 4)
    assert positive["f1"] == pytest.approx(2 / 3)
    assert positive["support"] == 4
    negative = report["classes"]["negative"]
    assert negative["precision"] == pytest.approx(4 / 5)
    assert negative["recall"] == pytest.approx(4 / 6)
    assert negative["f1"] == pytest.approx(8 / 11)
    assert negative["support"] == 6
    # Default three-way cuts 0.3 / 0.7:
    # true positives' scores .9 .8 .6 .2 -> positive, positive, neutral, negative
    # true negatives' scores .7 .55 .4 .35 .1 .05 -> positive, 3 neutral, 2 negative
    assert report["label_distribution"] == {
        "true_negative": {"negative": 2, "neutral": 3, "positive": 1},
        "true_positive": {"negative": 1, "neutral": 1, "positive": 2},
    }


def test_binary_report_threshold_and_custom_cuts() -> None:
    labels = [1, 0, 1, 0]
    scores = [0.65, 0.6, 0.9, 0.2]
    report = binary_report(
        labels, scores, threshold=0.62, thresholds=LabelThresholds(0.5, 0.8)
    )
    assert report["accuracy"] == 1.0
    assert report["classes"]["positive"] == {
        "precision": 1.0,
        "recall": 1.0,
        "f1": 1.0,
        "support": 2,
    }
    assert report["label_distribution"] == {
        "true_negative": {"negative": 1, "neutral": 1, "positive": 0},
        "true_positive": {"negative": 0, "neutral": 1, "positive": 1},
    }


def test_binary_report_score_at_threshold_predicts_positive() -> None:
    report = binary_report([1, 0], [0.5, 0.49])
    assert report["accuracy"] == 1.0


def test_binary_report_class_never_predicted_has_zero_precision() -> None:
    report = binary_report([1, 0, 1], [0.9, 0.8, 0.7])
    assert report["classes"]["negative"] == {
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
        "support": 1,
    }
    assert report["classes"]["positive"]["precision"] == pytest.approx(2 / 3)


def test_binary_report_of_nothing() -> None:
    report = binary_report([], [])
    assert report["n"] == 0
    assert math.isnan(report["accuracy"])
    assert math.isnan(report["roc_auc"])


def test_binary_report_refuses_lengths_that_differ() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        binary_report([0, 1], [0.5])
