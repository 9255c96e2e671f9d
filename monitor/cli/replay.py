"""``monitor replay``: send a file of posts to the posts topic."""

from __future__ import annotations

from pathlib import Path

import click

from monitor.cli.context import (
    configure_logging,
    load_settings,
    resolve_servers,
    run,
)
from monitor.cli.output import out, safe_text


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Posts per second (default: as fast as the broker takes them).",
)
@click.option(
    "--show-rejected",
    default=20,
    show_default=True,
    help="How many rejected lines to list.",
)
@click.pass_context
def replay(
    ctx: click.Context, file: Path, rate: float | None, show_rejected: int
) -> None:
    """Send posts from a JSON Lines or CSV FILE to the posts topic."""
    from monitor.sources.replay import replay_file

    settings = load_settings(ctx)
    configure_logging("warning")
    with resolve_servers(settings, start=False) as resolved:
        summary = run(replay_file(resolved, file, rate=rate, progress=True))
    out.print(
        f"sent {summary.sent} posts to '{safe_text(resolved.topic_posts)}' "
        f"in {summary.seconds:.1f} s; rejected {len(summary.rejected)}"
    )
    for line, reason in summary.rejected[:show_rejected]:
        out.print(f"  line {line}: {safe_text(reason)}")
    if len(summary.rejected) > show_rejected:
        out.print(f"  ... and {len(summary.rejected) - show_rejected} more")
