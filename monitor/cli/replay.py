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
    "--speed",
    metavar="N|max",
    default=None,
    help="Pace posts by their published_at at N times real time "
    "('max': as fast as possible). Default: not paced (see --rate).",
)
@click.option(
    "--max-gap",
    type=click.FloatRange(min=0, min_open=True),
    default=60.0,
    show_default=True,
    help="With --speed, the longest wait between two posts (seconds).",
)
@click.option(
    "--shift-to-now",
    is_flag=True,
    help="Move the timestamps so the file plays as live traffic: the first "
    "post is published now (with --speed, each post when it is sent).",
)
@click.option(
    "--show-rejected",
    default=20,
    show_default=True,
    help="How many rejected lines to list.",
)
@click.pass_context
def replay(
    ctx: click.Context,
    file: Path,
    rate: float | None,
    speed: str | None,
    max_gap: float,
    shift_to_now: bool,
    show_rejected: int,
) -> None:
    """Send posts from a JSON Lines or CSV FILE to the posts topic."""
    from monitor.sources.replay import replay_file

    pace = _speed(speed)
    settings = load_settings(ctx)
    configure_logging("warning")
    with resolve_servers(settings, start=False) as resolved:
        summary = run(
            replay_file(
                resolved,
                file,
                rate=rate,
                speed=pace,
                max_gap=max_gap,
                shift_to_now=shift_to_now,
                progress=True,
            )
        )
    out.print(
        f"sent {summary.sent} posts to '{safe_text(resolved.topic_posts)}' "
        f"in {summary.seconds:.1f} s; rejected {len(summary.rejected)}"
    )
    for line, reason in summary.rejected[:show_rejected]:
        out.print(f"  line {line}: {safe_text(reason)}")
    if len(summary.rejected) > show_rejected:
        out.print(f"  ... and {len(summary.rejected) - show_rejected} more")


def _speed(value: str | None) -> float | None:
    """Parse ``--speed``: a number > 0 (at most 1e6) or ``max`` (not paced)."""
    if value is None or value.strip().lower() == "max":
        return None
    try:
        speed = float(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is neither a number nor 'max'", param_hint="--speed"
        ) from None
    if not 0 < speed <= 1e6:
        raise click.BadParameter("must be > 0 and <= 1000000", param_hint="--speed")
    return speed
