"""Evaluating the sentiment scorer on labelled texts.

The texts come in as data (:class:`LabelledTexts`); reading them from files
is the caller's (``monitor evaluate sentiment`` reads ``text,label`` CSVs
with :func:`monitor.cli.datasets.read_labelled_csv`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from monitor.analysis.evaluation.classification import binary_report
from monitor.analysis.sentiment.calibration import ECE_BINS, expected_calibration_error
from monitor.analysis.sentiment.labels import LabelThresholds
from monitor.analysis.sentiment.model import SentimentModel
from monitor.analysis.text import normalise_text
from monitor.errors import InvalidRecordError

#: Texts scored per call: the scorer is batched, as the score stage is.
BATCH = 512


@dataclass(frozen=True)
class LabelledTexts:
    """One labelled data set, e.g. one file.

    Attributes:
        name: Name the report shows for it (a file's basename).
        texts: Raw texts, as posts carry them (normalised when scored).
        labels: True label of each text: 1 positive, 0 negative.

    Raises:
        InvalidRecordError: If there is not one label (0 or 1) per text.

    """

    name: str
    texts: Sequence[str]
    labels: Sequence[int]

    def __post_init__(self) -> None:
        if len(self.texts) != len(self.labels):
            raise InvalidRecordError(
                f"{self.name}: {len(self.texts)} texts but {len(self.labels)} labels"
            )
        if any(label not in (0, 1) for label in self.labels):
            raise InvalidRecordError(f"{self.name}: labels must be 0 or 1")


def evaluate_sentiment(
    datasets: Sequence[LabelledTexts],
    *,
    model: SentimentModel | None = None,
    thresholds: LabelThresholds | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Score every text as the pipeline does (normalise, then snownlp) and report.

    Args:
        datasets: The labelled texts, reported one by one and overall.
        model: The scorer; the default snownlp model if omitted.
        thresholds: Three-way label thresholds; the defaults if omitted.
        on_progress: Called with the number of texts just scored.

    Returns:
        ``{"model", "thresholds", "files": {name: report}, "overall":
        report}`` where each report is :func:`binary_report` of the model's
        probability (calibrated for a trained model) plus ``ece`` (its
        expected calibration error, 15 equal-width bins), ``ece_raw`` (the
        same of the uncalibrated probability) and ``texts_per_second``
        (scoring only).

    """
    model = model or SentimentModel()
    thresholds = thresholds or LabelThresholds()
    files: dict[str, Any] = {}
    all_labels: list[int] = []
    all_scores: list[float] = []
    all_raw: list[float] = []
    total_seconds = 0.0
    for data in datasets:
        texts, labels = data.texts, data.labels
        started = time.perf_counter()
        scores: list[float] = []
        raw: list[float] = []
        for start in range(0, len(texts), BATCH):
            chunk = [normalise_text(text) for text in texts[start : start + BATCH]]
            if isinstance(model, SentimentModel):
                for calibrated, uncalibrated in model.probabilities(chunk):
                    scores.append(calibrated)
                    raw.append(uncalibrated)
            else:  # any scorer with positive_probabilities: no raw one
                scores.extend(model.positive_probabilities(chunk))
                raw = scores
            if on_progress is not None:
                on_progress(len(chunk))
        seconds = time.perf_counter() - started
        total_seconds += seconds
        report = binary_report(labels, scores, thresholds=thresholds)
        report["ece"] = expected_calibration_error(labels, scores)
        report["ece_raw"] = expected_calibration_error(labels, raw)
        report["texts_per_second"] = (
            len(texts) / seconds if seconds > 0 else float("nan")
        )
        files[data.name] = report
        all_labels.extend(labels)
        all_scores.extend(scores)
        all_raw.extend(raw)
    overall = binary_report(all_labels, all_scores, thresholds=thresholds)
    overall["ece"] = expected_calibration_error(all_labels, all_scores)
    overall["ece_raw"] = expected_calibration_error(all_labels, all_raw)
    overall["texts_per_second"] = (
        len(all_labels) / total_seconds if total_seconds > 0 else float("nan")
    )
    return {
        "model": getattr(model, "model_id", type(model).__name__),
        "ece_bins": ECE_BINS,
        "thresholds": {
            "negative_below": thresholds.negative_below,
            "positive_from": thresholds.positive_from,
        },
        "files": files,
        "overall": overall,
    }
