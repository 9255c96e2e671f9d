"""``monitor backfill``: history through the detectors before the workers start."""

from __future__ import annotations

from pathlib import Path

import click

from monitor.cli.backtest import feeds_argument, load_rules_or_exit
from monitor.cli.context import configure_logging, load_settings, resolve_servers, run
from monitor.cli.output import out, safe_text


@click.command("backfill")
@feeds_argument
@click.option(
    "--rules",
    "rules_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Rules file (default: MONITOR_RULES): its topics and hot-word rules.",
)
@click.option(
    "--index-posts",
    is_flag=True,
    help="Also index the posts (by id: one already indexed stays as it is).",
)
@click.pass_context
def backfill(
    ctx: click.Context,
    feeds: tuple[Path, ...],
    rules_file: Path | None,
    index_posts: bool,
) -> None:
    """Run FEEDS (history, JSON Lines or CSV) through the detectors.

    Writes the merge state the workers restore (burst and hot-word
    baselines, recent buckets) and the history's count documents, so that
    alerting starts on day one. Nothing is alerted. Run it with the workers
    stopped; it refuses history newer than what the workers have counted.
    """
    from monitor.errors import MonitorError
    from monitor.services.backfill import backfill as run_backfill

    settings = load_settings(ctx)
    path = rules_file or settings.rules
    if path is None:
        raise click.UsageError("give --rules or set MONITOR_RULES")
    ruleset = load_rules_or_exit(Path(path), settings)
    configure_logging("warning")
    with resolve_servers(settings, start=False) as resolved:
        try:
            summary = run(
                run_backfill(resolved, ruleset, feeds, index_posts=index_posts)
            )
        except MonitorError as exc:
            raise click.ClickException(safe_text(exc, markup=False)) from None
    span = (
        f"{summary.first.isoformat()} .. {summary.last.isoformat()}"
        if summary.first and summary.last
        else "no posts"
    )
    out.print(
        f"backfilled {summary.posts} posts ({safe_text(span)}) in "
        f"{summary.seconds:.1f} s: {summary.windows} windows, "
        f"{summary.documents} count/burst documents, {summary.indexed} posts "
        f"indexed, {summary.state_entries} merge-state entries"
    )
    for rejected in summary.rejected[:20]:
        out.print(
            f"  {safe_text(rejected.source)} line {rejected.line}: "
            f"{safe_text(rejected.reason)}"
        )
