"""``monitor sources``: the sources file (webhooks, HTTP polling, RSS feeds)."""

from __future__ import annotations

from pathlib import Path

import click

from monitor.cli.output import safe_text


@click.group("sources")
def sources_group() -> None:
    """Check and run the sources of posts: webhooks, HTTP polling, RSS."""


@sources_group.command("check")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def sources_check(file: Path) -> None:
    """Validate a sources FILE: exit 0 with a summary, or 2 listing every problem.

    Secret references (``${SOURCE_*}``) are resolved from the environment, as
    the worker would; a missing variable is a problem naming it.
    """
    from monitor.errors import ConfigError
    from monitor.sources.config import load_sources

    try:
        config = load_sources(file)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(safe_text(problem, markup=False))
        raise SystemExit(2) from None
    for name in config.webhooks:
        click.echo(safe_text(f"  webhook   {name}: POST /ingest/{name}", markup=False))
    for name, poller in config.pollers.items():
        every = f"{poller.interval:g}s"
        click.echo(safe_text(f"  {poller.kind:<9} {name}: every {every}", markup=False))
    click.echo(
        f"{file}: OK: {len(config.webhooks)} webhooks, {len(config.pollers)} pollers"
    )
