"""``monitor evaluate``: measure the product's analysis on labelled data."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import click
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from monitor.cli.context import load_settings
from monitor.cli.output import console, dump_json, out, safe_text
from monitor.errors import MonitorError


@click.group()
def evaluate() -> None:
    """Measure the product's analysis on labelled data."""


@evaluate.command("sentiment")
@click.argument(
    "csv_files",
    nargs=-1,
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
)
@click.option(
    "--model",
    "model_name",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Sentiment model (MODEL for MODEL.3 [+ MODEL.json]); "
    "default: MONITOR_SENTIMENT_MODEL, else snownlp's own.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def evaluate_sentiment_command(
    ctx: click.Context,
    csv_files: tuple[Path, ...],
    model_name: Path | None,
    as_json: bool,
) -> None:
    """Score text,label CSV files (1 positive, 0 negative) and report quality.

    Reports accuracy at 0.5, ROC AUC, per-class F1, the three-way labels and
    the expected calibration error (15 bins) of the model's probability,
    per file and overall.
    """
    from monitor.analysis.evaluation.sentiment import evaluate_sentiment
    from monitor.cli.datasets import read_labelled_csv
    from monitor.config.models import load_sentiment_model

    settings = load_settings(ctx)
    try:
        datasets = [read_labelled_csv(path) for path in csv_files]
    except MonitorError as exc:
        raise click.ClickException(str(exc)) from None
    total = sum(len(data.texts) for data in datasets)
    with Progress(
        TextColumn("scoring"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=as_json,
    ) as progress:
        task = progress.add_task("score", total=total)
        try:
            report = evaluate_sentiment(
                datasets,
                model=load_sentiment_model(model_name or settings.sentiment_model),
                thresholds=settings.label_thresholds,
                on_progress=lambda n: progress.advance(task, n),
            )
        except MonitorError as exc:
            raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(dump_json(_finite(report)))
        return
    table = Table(
        title=f"sentiment ({safe_text(report['model'])}): binary at 0.5, AUC, "
        "calibration error, per-class F1, three-way labels"
    )
    for column in (
        "file",
        "n",
        "accuracy",
        "ROC AUC",
        "ECE",
        "F1 neg",
        "F1 pos",
        "true neg → neg/neu/pos",
        "true pos → neg/neu/pos",
        "texts/s",
    ):
        # File names stay whole: the numbers give way first on a narrow terminal.
        table.add_column(
            column,
            justify="right",
            no_wrap=column == "file",
            min_width=min(max(map(len, [*report["files"], "overall"])), 40)
            if column == "file"
            else None,
        )
    rows = list(report["files"].items()) + [("overall", report["overall"])]
    for name, r in rows:
        dist = r["label_distribution"]
        table.add_row(
            safe_text(name),
            str(r["n"]),
            f"{r['accuracy']:.4f}",
            f"{r['roc_auc']:.4f}",
            f"{r['ece']:.4f}",
            f"{r['classes']['negative']['f1']:.4f}",
            f"{r['classes']['positive']['f1']:.4f}",
            "/".join(str(v) for v in dist["true_negative"].values()),
            "/".join(str(v) for v in dist["true_positive"].values()),
            f"{r['texts_per_second']:.0f}",
        )
    out.print(table)


@evaluate.command("bursts")
@click.argument(
    "directory", type=click.Path(exists=True, file_okay=False, path_type=Path)
)
@click.option(
    "--profile",
    type=click.Choice(["standard", "reward_low_FP_rate", "reward_low_FN_rate", "all"]),
    default="standard",
    show_default=True,
    help="NAB cost profile; all: the three, from one run of the detector.",
)
@click.option(
    "--threshold",
    type=float,
    default=None,
    help="Burst score that fires (default: the burst rule's shipped threshold).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def evaluate_bursts_command(
    directory: Path, profile: str, threshold: float | None, as_json: bool
) -> None:
    """Run the burst detector over a NAB-format tree and print the NAB score.

    The tree may be flat or nested in category folders; values may be any
    finite floats (negative ones too); rows with repeated or earlier
    timestamps are fed one second after the previous row (NAB scores rows,
    so a detection stays on its row); files without label windows count
    their false alarms. Scores are per file, per category and overall (NAB's
    normalisation of the summed raw scores). With ``--profile all`` the
    JSON is ``{"threshold", "profiles": {name: report}}``.
    """
    from monitor.analysis.evaluation import nab
    from monitor.analysis.evaluation.bursts import RULE_THRESHOLD, evaluate_profiles
    from monitor.cli.datasets import read_nab_series

    names = list(nab.PROFILES) if profile == "all" else [profile]
    try:
        series = read_nab_series(directory)
        reports = evaluate_profiles(
            series,
            names,
            threshold=RULE_THRESHOLD if threshold is None else threshold,
        )
    except MonitorError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        if profile == "all":
            first = reports[names[0]]
            document: dict[str, Any] = {
                "threshold": first["threshold"],
                "profiles": reports,
            }
        else:
            document = reports[profile]
        click.echo(json.dumps(_finite(document), indent=2))
        return
    for name in names:
        out.print(_bursts_table(reports[name], name))


def _bursts_table(report: dict[str, Any], profile: str) -> Table:
    """One profile's NAB report as a table: files, categories, overall."""
    table = Table(
        title=f"NAB score ({profile} profile, normalised 0-100,"
        f" threshold {report['threshold']:g})"
    )
    for column in ("file", "windows", "detections", "false alarms", "score"):
        table.add_column(column, justify="left" if column == "file" else "right")
    for name, score in report["files"].items():
        raw = report["raw"][name]
        table.add_row(
            safe_text(name),
            str(raw["windows"]),
            str(raw["detections"]),
            str(raw["false_positives"]),
            "—" if score is None else f"{score:.2f}",
        )
    for category, item in report["categories"].items():
        if category:
            score = item["score"]
            table.add_row(
                safe_text(f"[{category}]"),
                str(item["windows"]),
                "",
                "",
                "—" if score is None else f"{score:.2f}",
            )
    overall = report["score"]
    table.add_row(
        "overall",
        str(report["windows"]),
        "",
        "",
        "—" if overall is None else f"{overall:.2f}",
    )
    return table


def _finite(value: Any) -> Any:
    """Replace NaN/inf (not JSON) with None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value
