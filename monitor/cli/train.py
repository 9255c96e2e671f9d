"""``monitor train``: train models from labelled data.

``monitor train sentiment CSV... --out MODEL`` reads ``text,label`` CSVs (1
positive, 0 negative: the files ``monitor evaluate sentiment`` reads),
normalises and segments the texts as the score stage does, keeps
``--holdout`` of them out of training to fit the calibration and measure
the model, and writes ``MODEL.3`` (the classifier) and ``MODEL.json`` (its
metadata: inputs with sizes and sha256, date, options, validation scores).
``MONITOR_SENTIMENT_MODEL=MODEL`` makes the worker score with it.
"""

from __future__ import annotations

import csv
import hashlib
import math
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click

from monitor.cli.output import console, dump_json, out, safe_text
from monitor.errors import MonitorError

#: Texts read at most over all files: bounds memory (a text is segmented and
#: its features kept while training).
MAX_TEXTS = 2_000_000
#: Longest text kept whole, in characters; longer ones are cut (scoring uses
#: the whole text, but one huge row should not dominate training time).
MAX_TEXT_CHARS = 20_000


class TrainingDataError(MonitorError):
    """A training file is unusable; the message names the file and line."""


def read_training_csv(
    path: Path, *, limit: int = MAX_TEXTS
) -> tuple[list[str], list[int]]:
    """Read a ``text,label`` CSV strictly, for training.

    Args:
        path: The file (UTF-8, a BOM allowed; columns in any order).
        limit: Rows read at most.

    Returns:
        Texts (cut to :data:`MAX_TEXT_CHARS`) and labels, in file order.

    Raises:
        TrainingDataError: Naming the file (and line) of a missing column, a
            label other than 0 or 1, an empty text, or too many rows.

    """
    texts: list[str] = []
    labels: list[int] = []
    try:
        with path.open("r", encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            fields = set(reader.fieldnames or ())
            missing = [c for c in ("text", "label") if c not in fields]
            if missing:
                raise TrainingDataError(
                    f"{path} line 1: no {' or '.join(repr(c) for c in missing)} "
                    "column (the header must name 'text' and 'label')"
                )
            for row in reader:
                line = reader.line_num
                label = (row.get("label") or "").strip()
                if label not in ("0", "1"):
                    raise TrainingDataError(
                        f"{path} line {line}: label must be 0 or 1, got {label[:20]!r}"
                    )
                text = row.get("text") or ""
                if not text.strip():
                    raise TrainingDataError(f"{path} line {line}: the text is empty")
                if len(texts) >= limit:
                    raise TrainingDataError(
                        f"{path} line {line}: more than {limit} texts in all"
                    )
                texts.append(text[:MAX_TEXT_CHARS])
                labels.append(int(label))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise TrainingDataError(f"{path}: cannot read ({exc})") from exc
    return texts, labels


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@click.group()
def train() -> None:
    """Train models from labelled data."""


@train.command("sentiment")
@click.argument(
    "csv_files",
    nargs=-1,
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
)
@click.option(
    "--out",
    "out_name",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Model name: writes OUT.3 and OUT.json (set MONITOR_SENTIMENT_MODEL=OUT).",
)
@click.option(
    "--holdout",
    type=click.FloatRange(0.01, 0.5),
    default=0.1,
    show_default=True,
    help="Share of texts kept out of training: fits the calibration, gives the scores.",
)
@click.option(
    "--kind",
    type=click.Choice(["nblr", "naive_bayes"]),
    default="nblr",
    show_default=True,
    help="nblr: NB-weighted logistic regression; "
    "naive_bayes: snownlp's own, retrained.",
)
@click.option(
    "--calibration",
    type=click.Choice(["platt", "isotonic"]),
    default="isotonic",
    show_default=True,
    help="Map from raw log-odds to probability, fitted on the held-out texts.",
)
@click.option("--seed", type=int, default=20240521, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the metadata as JSON.")
def train_sentiment_command(
    csv_files: tuple[Path, ...],
    out_name: Path,
    holdout: float,
    kind: str,
    calibration: str,
    seed: int,
    as_json: bool,
) -> None:
    """Train a sentiment model on text,label CSV files (1 positive, 0 negative)."""
    try:
        meta = train_sentiment(
            list(csv_files),
            out_name,
            holdout=holdout,
            kind=kind,
            calibration=calibration,
            seed=seed,
            quiet=as_json,
        )
    except MonitorError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(dump_json(meta))
        return
    v = meta["validation"]
    out.print(
        f"model {safe_text(meta['id'])}: {meta['training_texts']} texts trained, "
        f"{meta['holdout_texts']} held out: accuracy {v['accuracy']:.4f}, "
        f"ROC AUC {v['roc_auc']:.4f}, calibration error {v['ece']:.4f} "
        f"(raw {v['ece_raw']:.4f})"
    )
    out.print(
        f"wrote {safe_text(meta['files']['model'])} and "
        f"{safe_text(meta['files']['metadata'])}; "
        f"use it with MONITOR_SENTIMENT_MODEL={safe_text(str(out_name))}"
    )


def train_sentiment(
    csv_files: list[Path],
    out_name: Path,
    *,
    holdout: float = 0.1,
    kind: str = "nblr",
    calibration: str = "isotonic",
    seed: int = 20240521,
    quiet: bool = True,
) -> dict[str, Any]:
    """Train, calibrate, measure and save a model; return its metadata.

    Raises:
        MonitorError: A bad file (named, with the line), a bad option, or a
            model that cannot be written.

    """
    from monitor.analysis.evaluation.classification import roc_auc
    from monitor.analysis.sentiment.calibration import (
        expected_calibration_error,
        sigmoid,
    )
    from monitor.analysis.sentiment.trainer import (
        TrainOptions,
        fit_model,
        split_holdout,
    )
    from monitor.analysis.text import normalise_text
    from monitor.config.models import default_scorer, save_trained_model

    options = TrainOptions(
        kind=kind, calibration=calibration, holdout=holdout, seed=seed
    )
    started = time.perf_counter()
    texts: list[str] = []
    labels: list[int] = []
    source: list[int] = []
    inputs: list[dict[str, Any]] = []
    for i, path in enumerate(csv_files):
        file_texts, file_labels = read_training_csv(path, limit=MAX_TEXTS - len(texts))
        for line, text in enumerate(file_texts):
            if not normalise_text(text):
                raise TrainingDataError(
                    f"{path}: text {line + 1} is empty once markup is stripped"
                )
        texts.extend(file_texts)
        labels.extend(file_labels)
        source.extend([i] * len(file_texts))
        inputs.append(
            {
                "path": str(path),
                "bytes": path.stat().st_size,
                "sha256": _sha256(path),
                "texts": len(file_texts),
                "positive": sum(file_labels),
                "negative": len(file_labels) - sum(file_labels),
            }
        )
    if set(labels) != {0, 1}:
        raise TrainingDataError(
            "the files need both positive (1) and negative (0) texts"
        )
    normalised = [normalise_text(t) for t in texts]
    if not quiet:
        console.print(f"segmenting {len(normalised)} texts")
    scorer = default_scorer()
    words = scorer.segment_many(normalised)
    fit_idx, held_idx = split_holdout(labels, holdout, seed)
    if not quiet:
        console.print(f"training on {len(fit_idx)}, calibrating on {len(held_idx)}")
    model = fit_model(
        [normalised[i] for i in fit_idx],
        [words[i] for i in fit_idx],
        [labels[i] for i in fit_idx],
        [normalised[i] for i in held_idx],
        [words[i] for i in held_idx],
        [labels[i] for i in held_idx],
        options,
        scorer.stopwords,
    )
    held_texts = [normalised[i] for i in held_idx]
    held_log_odds = model.log_odds(held_texts, [words[i] for i in held_idx])
    held_labels = [labels[i] for i in held_idx]

    def scores(members: list[int]) -> dict[str, Any]:
        y = [held_labels[k] for k in members]
        p = [model.calibration(held_log_odds[k]) for k in members]
        raw = [sigmoid(held_log_odds[k]) for k in members]
        auc = roc_auc(y, p)
        return {
            "texts": len(y),
            "accuracy": sum((q >= 0.5) == (t == 1) for q, t in zip(p, y, strict=True))
            / len(y),
            "roc_auc": None if math.isnan(auc) else auc,
            "ece": expected_calibration_error(y, p),
            "ece_raw": expected_calibration_error(y, raw),
        }

    validation = scores(list(range(len(held_idx))))
    validation["files"] = {
        inputs[f]["path"]: scores([k for k, i in enumerate(held_idx) if source[i] == f])
        for f in range(len(csv_files))
        if any(source[i] == f for i in held_idx)
    }
    model_file = Path(str(out_name) + ".3")
    meta = save_trained_model(
        out_name,
        model,
        {
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "inputs": inputs,
            "options": options.to_dict(),
            "training_texts": len(fit_idx),
            "holdout_texts": len(held_idx),
            "validation": validation,
            "thresholds_meaning": (
                "sentiment is the calibrated probability that the post is "
                "positive: with MONITOR_NEGATIVE_BELOW=0.3 and "
                "MONITOR_POSITIVE_FROM=0.7, 'negative' means at least 70 % likely "
                "negative and 'positive' at least 70 % likely positive, on posts "
                "like the training data"
            ),
            "files": {"model": str(model_file), "metadata": str(out_name) + ".json"},
            "train_seconds": round(time.perf_counter() - started, 2),
        },
    )
    return meta
