"""``monitor demo``: the main job on the embedded servers with the sample feed."""

from __future__ import annotations

from pathlib import Path

import click

from monitor.cli.context import configure_logging, load_settings
from monitor.cli.output import out


@click.command()
@click.option(
    "--feed",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Posts to replay (default: the bundled samples/feed.jsonl).",
)
@click.option(
    "--topics",
    "topics_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Watched topics (default: the rules file's topics).",
)
@click.option(
    "--rules",
    "rules_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Alert rules (default: the bundled examples/rules.yaml).",
)
@click.option(
    "--rate",
    type=float,
    default=300.0,
    show_default=True,
    help="Replay speed, posts per second.",
)
@click.option(
    "--exit-when-done",
    is_flag=True,
    help="Stop once the feed is indexed instead of waiting for Ctrl-C.",
)
@click.pass_context
def demo(
    ctx: click.Context,
    feed: Path | None,
    topics_file: Path | None,
    rules_file: Path | None,
    rate: float,
    exit_when_done: bool,
) -> None:
    """Run the main job on the embedded default: servers, worker, the sample feed.

    Tickets are raised by the bundled rules and delivered to local stand-ins
    of the six on-call channels, which print what they receive.
    """
    from monitor.local.demo import run_demo

    root = Path(__file__).resolve().parents[2]
    feed = feed or root / "samples" / "feed.jsonl"
    rules_file = rules_file or root / "examples" / "rules.yaml"
    for path in (feed, rules_file, topics_file):
        if path is not None and not path.is_file():
            raise click.UsageError(
                f"{path} not found (run from the repository, or pass it)"
            )
    settings = load_settings(ctx, topics_file=topics_file, rules=rules_file)
    configure_logging("warning")
    run_demo(settings, feed, rate=rate, exit_when_done=exit_when_done, console=out)
