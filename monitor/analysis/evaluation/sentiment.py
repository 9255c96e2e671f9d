"""Evaluating the sentiment scorer on labelled CSV files (``text,label``)."""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from monitor.analysis.evaluation.classification import binary_report
from monitor.analysis.sentiment.labels import LabelThresholds
from monitor.analysis.sentiment.model import SentimentModel
from monitor.analysis.text import normalise_text
from monitor.errors import InvalidRecordError

#: Texts scored per call: the scorer is batched, as the score stage is.
BATCH = 512


def read_labelled_csv(path: Path) -> tuple[list[str], list[int]]:
    """Read a ``text,label`` CSV (label 1 positive, 0 negative).

    Raises:
        InvalidRecordError: Naming the file and line of a bad row.

    """
    texts: list[str] = []
    labels: list[int] = []
    with path.open("r", encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"text", "label"} <= set(reader.fieldnames):
            raise InvalidRecordError(
                f"{path}: the header must have 'text' and 'label' columns"
            )
        for row in reader:
            label = (row.get("label") or "").strip()
            if label not in ("0", "1"):
                raise InvalidRecordError(
                    f"{path} line {reader.line_num}: "
                    f"label must be 0 or 1, got {label!r}"
                )
            texts.append(row.get("text") or "")
            labels.append(int(label))
    return texts, labels


def evaluate_sentiment(
    paths: Sequence[Path],
    *,
    model: SentimentModel | None = None,
    thresholds: LabelThresholds | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Score every text as the pipeline does (normalise, then snownlp) and report.

    Returns:
        ``{"files": {name: report}, "overall": report}`` where each report is
        :func:`binary_report` plus ``texts_per_second`` (scoring only).

    """
    model = model or SentimentModel()
    thresholds = thresholds or LabelThresholds()
    files: dict[str, Any] = {}
    all_labels: list[int] = []
    all_scores: list[float] = []
    total_seconds = 0.0
    for path in paths:
        texts, labels = read_labelled_csv(path)
        started = time.perf_counter()
        scores: list[float] = []
        for start in range(0, len(texts), BATCH):
            chunk = [normalise_text(text) for text in texts[start : start + BATCH]]
            scores.extend(model.positive_probabilities(chunk))
            if on_progress is not None:
                on_progress(len(chunk))
        seconds = time.perf_counter() - started
        total_seconds += seconds
        report = binary_report(labels, scores, thresholds=thresholds)
        report["texts_per_second"] = (
            len(texts) / seconds if seconds > 0 else float("nan")
        )
        files[path.name] = report
        all_labels.extend(labels)
        all_scores.extend(scores)
    overall = binary_report(all_labels, all_scores, thresholds=thresholds)
    overall["texts_per_second"] = (
        len(all_labels) / total_seconds if total_seconds > 0 else float("nan")
    )
    return {
        "thresholds": {
            "negative_below": thresholds.negative_below,
            "positive_from": thresholds.positive_from,
        },
        "files": files,
        "overall": overall,
    }
