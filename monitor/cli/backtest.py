"""``monitor backtest``: the incidents a rules file would have opened on history.

Runs :func:`monitor.stages.backtest.backtest` (score, buckets, detectors,
rules, ticket policy; no servers, no notifications) and prints the incidents,
per-rule fire counts and, with ``--compare``, how a second rules file
differs on the same posts.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich import box
from rich.table import Table

from monitor.cli.context import load_settings
from monitor.cli.output import console, dump_json, out, safe_text

if TYPE_CHECKING:
    from monitor.config.rules import RuleSet
    from monitor.settings import Settings

#: Longest evidence excerpt printed per incident (characters).
EXCERPT_CHARS = 60
#: Rejected lines listed at most.
SHOW_REJECTED = 20


#: FEED... of the commands that read history files (backtest, backfill).
feeds_argument = click.argument(
    "feeds",
    nargs=-1,
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
)


@click.command("backtest")
@feeds_argument
@click.option(
    "--rules",
    "rules_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Rules file (topics, rules, teams, ticket policy) to backtest.",
)
@click.option(
    "--compare",
    "compare_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="A second rules file: run the same posts with it and print the differences.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=None,
    help="Posts counted per batch: smaller names crossing posts more exactly "
    "but runs slower (default: BATCH_SIZE of monitor.stages.backtest).",
)
@click.pass_context
def backtest(
    ctx: click.Context,
    feeds: tuple[Path, ...],
    rules_file: Path,
    compare_file: Path | None,
    as_json: bool,
    batch_size: int | None,
) -> None:
    """Replay FEEDS (JSON Lines or CSV) through the rules, in event time.

    Scores, counts, detects and applies the ticket policy exactly as the
    worker would, in one process: no Kafka, no Elasticsearch, no notices
    sent. Prints the incidents that would open (at the crossing post's event
    time), their signals, team, owner and first evidence, and how often each
    rule fired. Bucket, window, grace, dedup and label settings come from
    --config and MONITOR_* as for the worker.
    """
    from monitor.errors import MonitorError
    from monitor.stages import backtest as engine

    settings = load_settings(ctx)
    ruleset = load_rules_or_exit(rules_file, settings)
    other = load_rules_or_exit(compare_file, settings) if compare_file else None
    size = batch_size or engine.BATCH_SIZE
    try:
        result = engine.backtest(feeds, ruleset, settings, batch_size=size)
        second = (
            engine.backtest(feeds, other, settings, batch_size=size)
            if other is not None
            else None
        )
    except MonitorError as exc:
        raise click.ClickException(safe_text(exc, markup=False)) from None
    report = result.to_json()
    if second is None:
        if as_json:
            click.echo(dump_json(report))
        else:
            _print_result(report, rules_file, feeds)
        return
    theirs = second.to_json()
    diff = engine.compare(report, theirs)
    if as_json:
        click.echo(dump_json({"a": report, "b": theirs, "diff": diff}))
        return
    assert compare_file is not None
    _print_diff(report, theirs, diff, rules_file, compare_file)


def load_rules_or_exit(path: Path, settings: Settings) -> RuleSet:
    """Read a rules file as the worker would; exit 2 listing every problem."""
    from monitor.config.rules import load_rules
    from monitor.errors import ConfigError

    try:
        return load_rules(
            path,
            bucket_seconds=settings.bucket_seconds,
            detector_window_seconds=settings.window_seconds,
        )
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(safe_text(problem, markup=False), err=True)
        raise SystemExit(2) from None


def _time(value: str | None) -> str:
    """``2026-11-20T13:08:17+08:00`` -> ``11-20 13:08:17``."""
    if not value:
        return ""
    return f"{value[5:10]} {value[11:19]}"


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:g}"


def _excerpt(incident: dict[str, Any]) -> str:
    evidence = incident["evidence"]
    if not evidence:
        return ""
    text = " ".join(str(evidence[0]["excerpt"]).split())
    if len(text) > EXCERPT_CHARS:
        text = text[: EXCERPT_CHARS - 1] + "…"
    return safe_text(text)


def incident_header(incident: dict[str, Any]) -> str:
    """Priority, topic, opening time, team, owner and notices of an incident."""
    return (
        f"[bold]{incident['priority']} {safe_text(incident['topic'])}[/bold]  "
        f"opened {_time(incident['opened_at'])} (event time)  "
        f"{safe_text(incident['team'])} / {safe_text(incident['owner'] or '-')}  "
        f"{incident['notices']} notices"
    )


def incident_table(incident: dict[str, Any]) -> Table:
    """Return a table of an incident's signals; its first evidence is the caption."""
    caption = f"“{_excerpt(incident)}”" if incident["evidence"] else None
    table = Table(
        caption=caption, caption_justify="left", box=box.SIMPLE_HEAD, pad_edge=False
    )
    table.add_column("signal")
    table.add_column("kind")
    for name in ("fired", "last", "threshold", "baseline"):
        table.add_column(name, justify="right")
    for signal in incident["signals"]:
        name = signal["rule"] + (f" ({signal['keyword']})" if signal["keyword"] else "")
        if signal["retracted"]:
            name += " (withdrawn)"
        elif signal["provisional"]:
            name += " (provisional)"
        table.add_row(
            safe_text(name),
            safe_text(signal["kind"]),
            _time(signal["first_fired"])[6:],
            _number(signal["last_value"]),
            _number(signal["threshold"]),
            _number(signal["baseline"]),
        )
    return table


def rules_table(report: dict[str, Any]) -> Table:
    """Per-rule fire counts."""
    table = Table(title="rule firings")
    table.add_column("topic / rule")
    table.add_column("fires", justify="right")
    for name, fires in report["rules"].items():
        table.add_row(safe_text(name), str(fires))
    return table


def _summary(report: dict[str, Any]) -> str:
    return (
        f"{report['posts']} posts, {len(report['rejected'])} rejected, "
        f"{report['late']} late, {report['duplicates']} duplicates; "
        f"{len(report['incidents'])} incidents; {report['seconds']:.1f} s "
        f"(batches of {report['batch_size']})"
    )


def _print_rejected(report: dict[str, Any]) -> None:
    rejected = report["rejected"]
    for item in rejected[:SHOW_REJECTED]:
        console.print(
            f"  rejected {safe_text(item['source'])} line {item['line']}: "
            f"{safe_text(item['reason'])}"
        )
    if len(rejected) > SHOW_REJECTED:
        console.print(f"  ... and {len(rejected) - SHOW_REJECTED} more")


def _print_result(report: dict[str, Any], rules: Path, feeds: tuple[Path, ...]) -> None:
    names = ", ".join(str(feed) for feed in feeds)
    out.print(safe_text(f"incidents {rules} would open on {names}:"))
    for incident in report["incidents"]:
        out.print(incident_header(incident))
        out.print(incident_table(incident))
    if not report["incidents"]:
        out.print("  none")
    out.print(rules_table(report))
    out.print(safe_text(_summary(report)))
    _print_rejected(report)


def _brief(incident: dict[str, Any]) -> str:
    signals = ", ".join(signal["rule"] for signal in incident["signals"])
    return (
        f"{incident['id']} {incident['topic']} {incident['priority']} opened "
        f"{_time(incident['opened_at'])}: {signals}"
    )


def _print_diff(
    a: dict[str, Any],
    b: dict[str, Any],
    diff: dict[str, Any],
    rules_a: Path,
    rules_b: Path,
) -> None:
    out.print(safe_text(f"a: {rules_a}: {_summary(a)}"))
    out.print(safe_text(f"b: {rules_b}: {_summary(b)}"))
    if not any(diff.values()):
        out.print("no differences")
        return
    for side in ("a", "b"):
        for incident in diff[f"only_{side}"]:
            out.print(safe_text(f"only in {side}: {_brief(incident)}"))
    for change in diff["changed"]:
        parts = []
        for name in ("opened_at", "priority"):
            if name in change:
                before, after = change[name]
                if name == "opened_at":
                    before, after = _time(before), _time(after)
                parts.append(f"{name} {before} -> {after}")
        if "signals" in change:
            signals = change["signals"]
            parts += [f"-{rule}" for rule in signals["only_a"]]
            parts += [f"+{rule}" for rule in signals["only_b"]]
        out.print(
            safe_text(f"changed: {change['topic']} ({change['a']} / {change['b']}): ")
            + safe_text("; ".join(parts))
        )
    if diff["rules"]:
        table = Table(title="rule firings that differ")
        for name in ("topic / rule", "a", "b", "delta"):
            table.add_column(
                name, justify="left" if name == "topic / rule" else "right"
            )
        for name, counts in diff["rules"].items():
            table.add_row(
                safe_text(name),
                str(counts["a"]),
                str(counts["b"]),
                f"{counts['delta']:+d}",
            )
        out.print(table)
