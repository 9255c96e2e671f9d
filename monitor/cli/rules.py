"""``monitor rules``: alert rules files."""

from __future__ import annotations

from pathlib import Path

import click

from monitor.cli.context import load_settings
from monitor.cli.output import safe_text


@click.group("rules")
def rules_group() -> None:
    """Alert rules files."""


@rules_group.command("check")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def rules_check(ctx: click.Context, file: Path) -> None:
    """Validate a rules FILE: exit 0 with a summary, or 2 listing every problem.

    Rule windows are checked against the worker's settings (--config,
    MONITOR_BUCKET_SECONDS, MONITOR_WINDOW_SECONDS), as the worker would load
    the file.
    """
    from monitor.config.rules import load_rules
    from monitor.errors import ConfigError

    settings = load_settings(ctx)
    try:
        ruleset = load_rules(
            file,
            bucket_seconds=settings.bucket_seconds,
            detector_window_seconds=settings.window_seconds,
        )
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(safe_text(problem, markup=False))
        raise SystemExit(2) from None
    click.echo(
        f"{file}: OK: {len(ruleset.topics)} topics, {len(ruleset.rules)} rules, "
        f"{len(ruleset.teams)} teams, {len(ruleset.channels)} channels, "
        f"{len(ruleset.silences)} silences, {len(ruleset.maintenance)} "
        "maintenance windows"
    )
